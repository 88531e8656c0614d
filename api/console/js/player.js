// One item: a streaming player (adaptive HLS through hls.js when the video
// is packaged, else progressive MP4 with Range seeking; rendition choice,
// captions, seek previews) or image, like/share/view feedback, and the
// recommended tags.

import { V1, ApiError, get, post, sendFeedback, signedUrl } from "./api.js";
import { $, formatBytes, formatDate, formatSeconds, h, sameOrigin, say } from "./dom.js";
import { register } from "./router.js";
import { loadTags } from "./tags.js";

const SHARE_SECONDS = 7 * 24 * 3600;

// The open item and what has been watched of it. Watch time counts played
// seconds only: seeking does not add to it.
let item = null;
let player = null;
let hls = null;
let previews = null;
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
  const master = await packagedMaster();
  if (!(master && (await attachHls(video, master)))) {
    const select = $("#item-quality");
    const choices = ["auto", ...item.renditions.filter((r) => r !== "auto")];
    select.replaceChildren(...choices.map((q) => h("option", { value: q }, q === "auto" ? "Automatic" : q)));
    $("#item-quality-field").hidden = choices.length < 2;
    video.dataset.engine = "mp4";
    await setSource(video, "auto");
  }
  await mountCaptions(video);
  if (master) mountPreviews(video, master).catch(() => {});
}

// The signed master playlist when the video has been packaged (the package
// worker runs after the render or the upload's processing), else null.
async function packagedMaster() {
  try {
    const url = sameOrigin(await signedUrl(item.id, { format: "hls" }));
    const probe = await fetch(url);
    return probe.ok ? url : null;
  } catch {
    return null;
  }
}

// hls.js ships with the console (installed from the npm registry into
// js/vendor/); without it, or without Media Source Extensions, the browser's
// own HLS (Safari) or the MP4 fallback plays.
async function loadHls() {
  try {
    return (await import("./vendor/hls.js")).default;
  } catch {
    return null;
  }
}

async function attachHls(video, master) {
  const Hls = await loadHls();
  if (Hls && Hls.isSupported()) {
    // No worker (the page's CSP admits no blob: workers); captions stay the
    // sidecar <track>, which every engine shows the same way.
    hls = new Hls({ enableWorker: false, enableWebVTT: false });
    const select = $("#item-quality");
    hls.on(Hls.Events.MANIFEST_PARSED, (_event, data) => {
      const options = data.levels.map((level, index) =>
        h("option", { value: String(index) }, level.height ? `${level.height}p` : `Level ${index + 1}`));
      select.replaceChildren(h("option", { value: "auto" }, "Automatic"), ...options);
      select.value = "auto";
      $("#item-quality-field").hidden = false;
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_event, data) => {
      video.dataset.level = String(data.level);
    });
    hls.loadSource(master);
    hls.attachMedia(video);
    video.dataset.engine = "hls.js";
    return true;
  }
  if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = master;
    video.dataset.engine = "native-hls";
    return true;
  }
  return false;
}

// A rendition chosen in the menu applies from the next segment (no flush of
// what is buffered, so playback does not stall); "auto" hands back to the
// bandwidth estimate.
function chooseLevel(value) {
  if (value === "auto") hls.currentLevel = -1;
  else hls.nextLevel = Number(value);
}

// Seek previews: the storyboard's WebVTT thumbnails track (cues of
// storyboard.jpg#xywh=…) shown over the control bar where the pointer is.
async function mountPreviews(video, master) {
  const base = new URL(master, window.location.origin);
  const track = new URL(base.pathname.replace(/master\.m3u8$/, "storyboard.vtt") + base.search, base);
  const response = await fetch(track);
  if (!response.ok || player !== video) return;
  const cues = parseThumbnails(await response.text(), track);
  if (!cues.length) return;
  const sprite = h("img", { id: "item-storyboard", alt: "", hidden: true, src: cues[0].src });
  const tile = h("div", { id: "item-preview", class: "seek-preview", hidden: true, "aria-hidden": "true" });
  video.parentElement.append(sprite, tile);
  previews = { cues, tile };
  video.addEventListener("mousemove", (event) => showPreview(video, event));
  video.addEventListener("mouseleave", () => { tile.hidden = true; });
}

function parseThumbnails(text, base) {
  const cues = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length - 1; i += 1) {
    const times = lines[i].split(" --> ");
    const match = /^(.*)#xywh=(\d+),(\d+),(\d+),(\d+)$/.exec(lines[i + 1]);
    if (times.length !== 2 || !match) continue;
    const [x, y, w, hgt] = match.slice(2).map(Number);
    cues.push({ start: seconds(times[0]), end: seconds(times[1]), src: new URL(match[1], base).href, x, y, w, h: hgt });
  }
  return cues;
}

function seconds(stamp) {
  const [hours, minutes, rest] = stamp.trim().split(":");
  return Number(hours) * 3600 + Number(minutes) * 60 + Number(rest);
}

function showPreview(video, event) {
  const box = video.getBoundingClientRect();
  // Only over the bottom strip, where the seek bar of the controls is.
  if (!previews || !video.duration || event.clientY < box.bottom - 48) {
    if (previews) previews.tile.hidden = true;
    return;
  }
  const at = ((event.clientX - box.left) / box.width) * video.duration;
  const cue = previews.cues.find((c) => at >= c.start && at < c.end) || previews.cues[previews.cues.length - 1];
  const tile = previews.tile;
  tile.style.width = `${cue.w}px`;
  tile.style.height = `${cue.h}px`;
  tile.style.backgroundImage = `url("${cue.src}")`;
  tile.style.backgroundPosition = `-${cue.x}px -${cue.y}px`;
  tile.style.left = `${Math.max(0, Math.min(box.width - cue.w, event.clientX - box.left - cue.w / 2))}px`;
  tile.dataset.time = String(Math.round(at));
  tile.hidden = false;
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
  if (hls) {
    hls.destroy();
    hls = null;
  }
  previews = null;
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
    if (hls) chooseLevel(event.target.value);
    else if (player && item) setSource(player, event.target.value).catch(() => {});
  });
  // Closing the tab counts as leaving: keepalive lets the request outlive the page.
  window.addEventListener("pagehide", () => reportView({ keepalive: true }));
  register("item", { title: "Item", enter, leave });
}
