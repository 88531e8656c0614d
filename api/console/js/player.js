// One item: a streaming player (Range seeking, rendition choice) or image,
// like/share/view feedback, and the recommended tags.

import { V1, ApiError, get, post, sendFeedback, signedUrl } from "./api.js";
import { $, formatBytes, formatDate, formatSeconds, h, sameOrigin, say } from "./dom.js";
import { register } from "./router.js";
import { loadTags } from "./tags.js";

const SHARE_SECONDS = 7 * 24 * 3600;

// The open item and what has been watched of it. Watch time counts played
// seconds only: seeking does not add to it.
let item = null;
let player = null;
let watchedS = 0;
let lastTime = 0;
let viewSent = false;
let generation = 0;

function reportView({ keepalive = false } = {}) {
  if (!item || viewSent || watchedS < 0.5) return;
  viewSent = true;
  sendFeedback(
    { content_id: item.id, event_type: "view", watch_time_ms: Math.round(watchedS * 1000) },
    { keepalive },
  );
}

function trackWatching(video) {
  video.addEventListener("timeupdate", () => {
    const delta = video.currentTime - lastTime;
    // Normal playback advances by a fraction of a second per event; larger
    // jumps are seeks.
    if (!video.paused && delta > 0 && delta < 1.5) watchedS += delta;
    lastTime = video.currentTime;
  });
  video.addEventListener("seeked", () => {
    lastTime = video.currentTime;
  });
  video.addEventListener("ended", () => reportView());
}

async function setSource(video, quality) {
  const resume = video.currentTime || 0;
  const wasPlaying = !video.paused;
  const url = sameOrigin(await signedUrl(item.id, { quality }));
  video.src = url;
  video.dataset.quality = quality;
  if (resume > 0) {
    video.addEventListener("loadedmetadata", () => {
      video.currentTime = resume;
      lastTime = resume;
      if (wasPlaying) video.play().catch(() => {});
    }, { once: true });
  }
}

async function mountVideo(box) {
  const video = h("video", {
    id: "item-video",
    controls: true,
    playsinline: true,
    preload: "metadata",
    "aria-label": `Video: ${item.title || item.filename}`,
  });
  box.replaceChildren(video);
  player = video;
  trackWatching(video);
  if (item.thumbnails.includes("large")) {
    signedUrl(item.id, { size: "large" })
      .then((url) => { video.poster = sameOrigin(url); })
      .catch(() => {});
  }
  const select = $("#item-quality");
  const choices = ["auto", ...item.renditions.filter((r) => r !== "auto")];
  select.replaceChildren(...choices.map((q) => h("option", { value: q }, q === "auto" ? "Automatic" : q)));
  $("#item-quality-field").hidden = choices.length < 2;
  await setSource(video, "auto");
  await mountCaptions(video);
}

// Sidecar captions as a <track>: generated videos have them when narrated
// (always) or made with subtitles=sidecar. A <track> cannot send a token, so
// it loads a signed captions link; a HEAD request first tells whether the
// video has captions at all (no toggle otherwise).
async function mountCaptions(video) {
  const field = $("#item-captions-field");
  field.hidden = true;
  if (item.source !== "generated") return;
  const mine = generation;
  let url;
  try {
    url = sameOrigin(await signedUrl(item.id, { kind: "captions", format: "vtt" }));
    const probe = await fetch(url, { method: "HEAD" });
    if (!probe.ok) return;
  } catch {
    return;
  }
  if (mine !== generation || player !== video) return;
  const toggle = $("#item-captions");
  video.append(h("track", { kind: "captions", label: "Captions", src: url, default: true }));
  showCaptions(video, toggle.checked);
  field.hidden = false;
}

function showCaptions(video, on) {
  for (const track of video.textTracks) {
    // "hidden" keeps the cues loaded (players and scripts can still read
    // them) without drawing them.
    if (track.kind === "captions") track.mode = on ? "showing" : "hidden";
  }
}

async function mountOther(box) {
  const title = item.title || item.filename;
  if (item.file_type === "image") {
    const url = sameOrigin(await signedUrl(item.id, {}));
    box.replaceChildren(h("img", { src: url, alt: title }));
  } else if (item.file_type === "audio") {
    const audio = h("audio", { controls: true, preload: "metadata", "aria-label": `Audio: ${title}` });
    box.replaceChildren(audio);
    audio.src = sameOrigin(await signedUrl(item.id, {}));
  } else {
    const url = sameOrigin(await signedUrl(item.id, { inline: false }));
    box.replaceChildren(h("p", { class: "placeholder" }, h("a", { class: "button", href: url }, `Download ${item.filename}`)));
  }
}

function facts(detail) {
  const meta = detail.metadata || {};
  const rows = [
    ["Type", `${detail.file_type} (${detail.content_type})`],
    ["Size", formatBytes(detail.size)],
    ["Duration", meta.duration ? formatSeconds(meta.duration) : ""],
    ["Dimensions", meta.width && meta.height ? `${meta.width} × ${meta.height}` : ""],
    ["Renditions", detail.renditions.join(", ")],
    ["Status", detail.processing_status],
    ["Added", formatDate(detail.created_at)],
  ].filter(([, value]) => value);
  $("#item-facts").replaceChildren(...rows.flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]));
}

async function like() {
  const button = $("#item-like");
  const status = $("#item-status");
  // One like per visit: there is no "unlike" event to send.
  if (button.getAttribute("aria-pressed") === "true" || button.dataset.busy) return;
  button.dataset.busy = "1";
  try {
    await post(`${V1}/feedback`, { content_id: item.id, event_type: "like" });
    button.setAttribute("aria-pressed", "true");
    button.textContent = "Liked";
    status.textContent = "Thanks: your like was recorded.";
  } catch (err) {
    status.textContent = err instanceof ApiError ? err.describe() : "Could not record the like.";
  } finally {
    delete button.dataset.busy;
  }
}

async function share() {
  const status = $("#item-status");
  try {
    const url = new URL(
      sameOrigin(await signedUrl(item.id, { expires_in: SHARE_SECONDS, inline: true })),
      window.location.origin,
    ).href;
    const field = $("#item-share-link");
    field.value = url;
    $("#item-share-field").hidden = false;
    field.select();
    let copied = false;
    try {
      await navigator.clipboard.writeText(url);
      copied = true;
    } catch {
      // No clipboard access (plain http, or denied): the link is selected.
    }
    await post(`${V1}/feedback`, { content_id: item.id, event_type: "share" });
    status.textContent = copied ? "Share link copied." : "Share link created: copy it from the field.";
  } catch (err) {
    status.textContent = err instanceof ApiError ? err.describe() : "Could not create a share link.";
  }
}

async function enter({ args }) {
  const mine = ++generation;
  const [id] = args;
  const box = $("#item-media");
  box.replaceChildren(h("p", { class: "placeholder" }, "Loading…"));
  $("#item-title").textContent = "Item";
  $("#item-facts").replaceChildren();
  $("#item-quality-field").hidden = true;
  $("#item-captions-field").hidden = true;
  $("#item-share-field").hidden = true;
  say($("#item-status"), "");
  $("#item-status").hidden = false;
  const likeButton = $("#item-like");
  likeButton.textContent = "Like";
  likeButton.setAttribute("aria-pressed", "false");
  watchedS = 0;
  lastTime = 0;
  viewSent = false;
  try {
    const detail = await get(`${V1}/files/${encodeURIComponent(id)}`);
    if (mine !== generation) return;
    item = detail;
    $("#item-title").textContent = detail.title || detail.filename;
    document.title = `${detail.title || detail.filename} · T2M`;
    facts(detail);
    loadTags(detail);
    if (detail.file_type === "video") await mountVideo(box);
    else await mountOther(box);
  } catch (err) {
    if (mine !== generation) return;
    box.replaceChildren(h("p", { class: "placeholder" },
      err instanceof ApiError && err.status === 404 ? "This item does not exist (or is not yours)." : `Could not load it: ${err.message}`));
  }
}

function leave() {
  generation += 1;
  reportView();
  if (player) {
    player.pause();
    player.removeAttribute("src");
    player.load();
    player = null;
  }
  item = null;
}

export function init() {
  $("#item-like").addEventListener("click", like);
  $("#item-share").addEventListener("click", share);
  $("#item-captions").addEventListener("change", (event) => {
    if (player) showCaptions(player, event.target.checked);
  });
  $("#item-quality").addEventListener("change", (event) => {
    if (player && item) setSource(player, event.target.value).catch(() => {});
  });
  // Closing the tab counts as leaving: keepalive lets the request outlive the page.
  window.addEventListener("pagehide", () => reportView({ keepalive: true }));
  register("item", { title: "Item", enter, leave });
}
