// Follow a job live: Server-Sent Events when the server offers them, else
// polling GET /jobs/{id} every second. Either way the caller sees the same
// updates and one final call with a terminal status.

import { V1, get, post } from "./api.js";
import { sameOrigin } from "./dom.js";

export const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const POLL_MS = 1000;

/**
 * followJob(jobId, {onUpdate(job), onLog(entry), onEnd(job)}) → {stop(), mode()}
 * `job` carries id, status, progress, current_stage, error, output_file_id.
 */
export function followJob(jobId, { onUpdate = () => {}, onLog = () => {}, onEnd = () => {} }) {
  const job = { id: jobId, status: "queued", progress: 0, current_stage: null };
  let stopped = false;
  let ended = false;
  let source = null;
  let timer = 0;
  let mode = "starting";
  // Lines come from the log endpoint and from the stream; a line can arrive
  // by both (the stream may repeat what a fetch already returned): show it once.
  let logsFetched = 0;
  const logKeys = new Set();

  function emitLog(entry) {
    const when = Date.parse(entry.timestamp || "");
    const key = `${Number.isNaN(when) ? entry.timestamp : when}|${entry.level}|${entry.message}`;
    if (logKeys.has(key)) return;
    logKeys.add(key);
    onLog(entry);
  }

  function merge(fields) {
    for (const [name, value] of Object.entries(fields || {})) {
      if (value !== undefined) job[name] = value;
    }
    if (fields?.result?.file_id) job.output_file_id = fields.result.file_id;
    if (job.status === "completed") job.progress = 100;
    // Progress never goes backwards on screen, whatever order events arrive in.
    job.progress = Math.max(job.progress || 0, job.maxProgress || 0);
    job.maxProgress = job.progress;
    onUpdate({ ...job });
  }

  function finish() {
    if (ended) return;
    ended = true;
    if (source) source.close();
    clearTimeout(timer);
    onEnd({ ...job });
  }

  async function pollLogs() {
    try {
      const data = await get(`${V1}/jobs/${encodeURIComponent(jobId)}/logs`, {
        query: { offset: logsFetched, limit: 200 },
      });
      logsFetched += data.logs.length;
      for (const entry of data.logs) emitLog(entry);
    } catch {
      // Logs are a nicety; progress is what matters.
    }
  }

  async function poll() {
    mode = "polling";
    if (stopped || ended) return;
    try {
      merge(await get(`${V1}/jobs/${encodeURIComponent(jobId)}`));
      await pollLogs();
    } catch (error) {
      if (error.status === 404) {
        merge({ status: "failed", error: "The job no longer exists" });
        finish();
        return;
      }
      // A network blip: keep polling.
    }
    if (TERMINAL.has(job.status)) finish();
    else if (!stopped) timer = setTimeout(poll, POLL_MS);
  }

  function listen(url) {
    mode = "sse";
    source = new EventSource(sameOrigin(url));
    const on = (name, handler) =>
      source.addEventListener(name, (event) => {
        if (stopped || ended) return;
        try {
          handler(JSON.parse(event.data));
        } catch (error) {
          console.warn("bad event", name, error);
        }
      });
    on("snapshot", (data) => {
      merge(data);
      // The snapshot has no log: fetch the lines written before it.
      pollLogs();
    });
    on("status", (data) => merge(data));
    on("progress", (data) => merge(data));
    on("stage", (data) => merge({ current_stage: data.stage, progress: data.progress }));
    on("log", emitLog);
    on("end", (data) => {
      merge(data);
      finish();
    });
    source.addEventListener("error", () => {
      // EventSource would reconnect by itself, but its token is short-lived:
      // fall back to polling, which also catches a terminal state we missed.
      if (stopped || ended) return;
      source.close();
      source = null;
      poll();
    });
  }

  (async () => {
    try {
      const data = await post(`${V1}/jobs/${encodeURIComponent(jobId)}/events/token`, {});
      if (stopped) return;
      if (!data?.url) throw new Error("no event URL");
      listen(data.url);
    } catch {
      if (!stopped) poll();
    }
  })();

  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      if (source) source.close();
    },
    mode: () => mode,
  };
}
