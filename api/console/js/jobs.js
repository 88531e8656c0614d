// The job list: status and progress, the log of each job, cancel.

import { V1, ApiError, get, post } from "./api.js";
import { $, formatDate, formatTime, h, toast } from "./dom.js";
import { TERMINAL } from "./follow.js";
import { register } from "./router.js";

const REFRESH_MS = 3000;
let timer = 0;
let active = false;
const openLogs = new Set();

async function loadLogs(jobId, box) {
  try {
    const data = await get(`${V1}/jobs/${encodeURIComponent(jobId)}/logs`, { query: { limit: 200 } });
    box.replaceChildren(...(data.logs.length ? data.logs : [{ level: "INFO", message: "No log lines yet." }]).map((entry) =>
      h("li", { class: `log-${(entry.level || "info").toLowerCase()}` },
        h("time", { datetime: entry.timestamp || "" }, formatTime(entry.timestamp)),
        h("span", { class: "level" }, entry.level || ""),
        h("span", { class: "message" }, entry.message || ""),
      )));
  } catch (err) {
    box.replaceChildren(h("li", {}, `Could not load the log: ${err.message}`));
  }
}

async function cancel(job, button) {
  button.disabled = true;
  try {
    await post(`${V1}/jobs/${encodeURIComponent(job.id)}/cancel`, {});
    toast("Job cancelled.");
  } catch (err) {
    toast(err instanceof ApiError ? err.message : "Could not cancel the job.");
  }
  load();
}

function row(job) {
  const title = job.parameters?.title || "Untitled video";
  const logId = `log-${job.id}`;
  const logBox = h("ol", { class: "log", id: logId, "aria-label": `Log of ${title}`, hidden: !openLogs.has(job.id) });
  const logButton = h("button", {
    type: "button",
    class: "small ghost",
    "aria-expanded": String(openLogs.has(job.id)),
    "aria-controls": logId,
    onclick: () => {
      const opening = logBox.hidden;
      logBox.hidden = !opening;
      logButton.setAttribute("aria-expanded", String(opening));
      if (opening) {
        openLogs.add(job.id);
        loadLogs(job.id, logBox);
      } else {
        openLogs.delete(job.id);
      }
    },
  }, "Log");
  if (openLogs.has(job.id)) loadLogs(job.id, logBox);
  const fileId = job.result?.file_id;
  const cancelButton = TERMINAL.has(job.status)
    ? null
    : h("button", { type: "button", class: "small danger", "aria-label": `Cancel ${title}` }, "Cancel");
  if (cancelButton) cancelButton.addEventListener("click", () => cancel(job, cancelButton));
  const percent = Math.round(job.status === "completed" ? 100 : job.progress || 0);
  return h("li", { class: "job", "data-job-id": job.id, "data-status": job.status },
    h("div", { class: "job-head" },
      h("span", { class: "job-title" }, title),
      h("span", { class: `badge status-${job.status}` }, job.status),
    ),
    h("div", { class: "progress-line" },
      h("progress", { max: 100, value: percent, "data-status": job.status, "aria-label": `Progress of ${title}` }),
      h("span", { class: "percent" }, `${percent} %`),
    ),
    h("p", { class: "job-meta muted" },
      [job.current_stage && job.status !== "completed" ? `Stage: ${job.current_stage}` : null,
        `Created ${formatDate(job.created_at)}`,
        job.duration ? `took ${job.duration.toFixed(1)} s` : null,
        job.parameters?.quality || null].filter(Boolean).join(" · "),
    ),
    job.error ? h("p", { class: "error" }, job.error) : null,
    h("div", { class: "actions" },
      logButton,
      fileId ? h("a", { class: "button small", href: `#/item/${encodeURIComponent(fileId)}` }, "Watch") : null,
      cancelButton,
    ),
    logBox,
  );
}

async function load() {
  clearTimeout(timer);
  const status = $("#jobs-status-text");
  try {
    const data = await get(`${V1}/jobs`, { query: { status: $("#jobs-status").value, items_per_page: 25 } });
    if (!active) return;
    $("#jobs-list").replaceChildren(...data.items.map(row));
    const total = data.pagination.total_items;
    status.textContent = total ? `${total} job${total === 1 ? "" : "s"}` : "No jobs yet: generate a video.";
    if (data.items.some((job) => !TERMINAL.has(job.status))) timer = setTimeout(load, REFRESH_MS);
  } catch (err) {
    status.textContent = `Could not load the jobs: ${err.message}`;
  }
}

export function init() {
  $("#jobs-refresh").addEventListener("click", load);
  $("#jobs-status").addEventListener("change", load);
  register("jobs", {
    title: "Jobs",
    enter() {
      active = true;
      return load();
    },
    leave() {
      active = false;
      clearTimeout(timer);
    },
  });
}
