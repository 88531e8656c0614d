// The script editor: generate options, then a live progress bar and log.

import { V1, ApiError, get, post, request } from "./api.js";
import { $, formatTime, h, randomKey, say, splitTags, toast } from "./dom.js";
import { TERMINAL, followJob } from "./follow.js";
import { register } from "./router.js";

const SAMPLE_SCRIPT = `Welcome to T2M.
This short video was made from a plain text script.

Every paragraph becomes a scene.
Short sentences read best on screen.

Upload pictures or music, and they appear in your videos.

Thanks for watching!`;

const STAGE_NAMES = {
  queued: "Queued",
  parse: "Reading the script",
  parsing: "Reading the script",
  narrate: "Recording the narration",
  storyboard: "Planning scenes",
  render: "Rendering",
  rendering: "Rendering",
  thumbnails: "Making thumbnails",
  completed: "Done",
};

let follower = null;
let currentJob = null;

function describe(job) {
  const stage = STAGE_NAMES[job.current_stage] || job.current_stage || STAGE_NAMES[job.status] || job.status;
  if (job.status === "completed") return "Completed: 100 %. The video is ready.";
  if (job.status === "failed") return `Failed: ${job.error || "see the log"}`;
  if (job.status === "cancelled") return "Cancelled.";
  return `${job.progress} % · ${stage}`;
}

function showJob(job) {
  currentJob = job;
  const percent = Math.max(0, Math.min(100, Math.round(job.progress || 0)));
  const bar = $("#gen-progress");
  bar.value = percent;
  bar.dataset.status = job.status;
  $("#gen-percent").textContent = `${percent} %`;
  $("#gen-progress-text").textContent = describe(job);
  $("#gen-cancel").hidden = TERMINAL.has(job.status);
  const watch = $("#gen-watch");
  if (job.status === "completed" && job.output_file_id) {
    watch.href = `#/item/${encodeURIComponent(job.output_file_id)}`;
    watch.hidden = false;
  } else {
    watch.hidden = true;
  }
}

function addLog(entry) {
  const level = (entry.level || "INFO").toUpperCase();
  $("#gen-log").append(
    h("li", { class: `log-${level.toLowerCase()}` },
      h("time", { datetime: entry.timestamp || "" }, formatTime(entry.timestamp)),
      h("span", { class: "level" }, level),
      h("span", { class: "message" }, entry.message || ""),
    ),
  );
}

function follow(jobId) {
  if (follower) follower.stop();
  $("#gen-log").replaceChildren();
  $("#gen-run").hidden = false;
  const bar = $("#gen-progress");
  follower = followJob(jobId, {
    onUpdate(job) {
      showJob(job);
      bar.dataset.mode = follower?.mode() || "";
    },
    onLog: addLog,
    onEnd(job) {
      showJob(job);
      bar.dataset.mode = follower?.mode() || "";
      bar.dataset.ended = "true";
      if (job.status === "completed") toast("Your video is ready.");
    },
  });
}

function readOptions(form) {
  const value = (name) => form.elements.namedItem(name).value.trim();
  const options = {
    script: form.elements.namedItem("script").value,
    quality: value("quality"),
    aspect: value("aspect"),
    subtitles: value("subtitles"),
    tags: splitTags(value("tags")),
  };
  const voice = value("voice");
  if (voice === "none") options.narration = "none";
  else if (voice) options.voice = voice;
  if (value("title")) options.title = value("title");
  if (value("duration")) options.duration = Number(value("duration"));
  return options;
}

async function submit(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const error = $("#gen-error");
  const button = $("#gen-submit");
  say(error, "");
  button.disabled = true;
  try {
    // One key per press: a retried request (flaky network) returns the same job.
    const job = await post(`${V1}/videos/generate`, readOptions(form), {
      headers: { "Idempotency-Key": randomKey() },
    });
    $("#gen-progress").dataset.ended = "false";
    showJob({ ...job, progress: job.progress || 0 });
    follow(job.id);
    $("#gen-run").scrollIntoView({ behavior: "smooth", block: "nearest" });
  } catch (err) {
    say(error, err instanceof ApiError ? err.describe() : "The server could not be reached.");
  } finally {
    button.disabled = false;
  }
}

async function cancel() {
  if (!currentJob) return;
  const button = $("#gen-cancel");
  button.disabled = true;
  try {
    await post(`${V1}/jobs/${encodeURIComponent(currentJob.id)}/cancel`, {});
    toast("Cancelling the job…");
  } catch (err) {
    toast(err instanceof ApiError ? err.message : "Could not cancel the job.");
  } finally {
    button.disabled = false;
  }
}

let voicesLoaded = false;
let sampleUrl = null;

async function loadVoices() {
  if (voicesLoaded) return;
  try {
    const { items } = await get(`${V1}/voices`);
    const select = $("#gen-voice");
    for (const voice of items) {
      const label = `${voice.id} (${voice.languages.join(", ")}, ${voice.quality})`;
      select.append(h("option", { value: voice.id }, label));
    }
    voicesLoaded = true;
  } catch {
    // The picker keeps "Automatic": a video still gets a voice by language.
  }
}

function voiceChanged() {
  const voice = $("#gen-voice").value;
  $("#gen-voice-play").disabled = !voice || voice === "none";
}

async function playSample() {
  const voice = $("#gen-voice").value;
  const button = $("#gen-voice-play");
  const help = $("#gen-voice-help");
  button.disabled = true;
  say(help, "Loading the sample…");
  try {
    const response = await request("GET", `${V1}/voices/${encodeURIComponent(voice)}/sample`, { raw: true });
    if (sampleUrl) URL.revokeObjectURL(sampleUrl);
    sampleUrl = URL.createObjectURL(await response.blob());
    const audio = $("#gen-voice-sample");
    audio.src = sampleUrl;
    audio.dataset.voice = voice;
    audio.hidden = false;
    audio.controls = true;
    say(help, `Sample of ${voice}.`);
    await audio.play().catch(() => {});
  } catch (err) {
    say(help, err instanceof ApiError ? err.describe() : "The sample could not be loaded.");
  } finally {
    voiceChanged();
  }
}

export function init() {
  $("#generate-form").addEventListener("submit", submit);
  $("#gen-voice").addEventListener("change", voiceChanged);
  $("#gen-voice-play").addEventListener("click", playSample);
  $("#gen-sample").addEventListener("click", () => {
    const script = $("#gen-script");
    script.value = SAMPLE_SCRIPT;
    if (!$("#gen-name").value) $("#gen-name").value = "Welcome to T2M";
    script.focus();
  });
  $("#gen-cancel").addEventListener("click", cancel);
  // Following continues while other views are open; the bar is where it was.
  register("generate", { title: "Generate", enter: loadVoices });
}
