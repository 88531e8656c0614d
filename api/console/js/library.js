// The library: a grid of your files with thumbnails, filtered by type.

import { V1, get, request } from "./api.js";
import { $, formatBytes, formatDate, h } from "./dom.js";
import { go, register } from "./router.js";

const PAGE_SIZE = 24;
const TYPE_GLYPHS = { video: "▶", image: "▣", audio: "♪", document: "¶" };
const state = { type: "", page: 1, pages: 0 };
let objectUrls = [];
let refreshTimer = 0;
let generation = 0;

function releaseThumbnails() {
  for (const url of objectUrls) URL.revokeObjectURL(url);
  objectUrls = [];
}

/** Thumbnails need the bearer token, so they are fetched and shown as blob: URLs. */
async function loadThumbnail(item, img, box) {
  try {
    const response = await request("GET", `${V1}/files/${encodeURIComponent(item.id)}/thumbnail`, {
      query: { size: "small" },
      raw: true,
    });
    const url = URL.createObjectURL(await response.blob());
    objectUrls.push(url);
    img.src = url;
    box.classList.add("loaded");
  } catch {
    // The placeholder glyph stays.
  }
}

function card(item) {
  const img = h("img", { alt: "", loading: "lazy", decoding: "async" });
  const box = h("div", { class: "thumb", "data-type": item.file_type },
    h("span", { class: "glyph", "aria-hidden": "true" }, TYPE_GLYPHS[item.file_type] || "•"),
    img,
  );
  if (item.has_thumbnail) loadThumbnail(item, img, box);
  const pending = item.processing_status !== "completed";
  return h("li", { class: "tile" },
    h("a", { href: `#/item/${encodeURIComponent(item.id)}`, class: "tile-link" },
      box,
      h("span", { class: "tile-title" }, item.title || item.filename),
      h("span", { class: "tile-meta" },
        h("span", { class: `badge type-${item.file_type}` }, item.file_type),
        ` ${formatBytes(item.size)}`,
        pending ? h("span", { class: `badge status-${item.processing_status}` }, item.processing_status) : null,
      ),
      h("time", { class: "tile-date", datetime: item.created_at }, formatDate(item.created_at)),
    ),
  );
}

async function load() {
  const mine = ++generation;
  clearTimeout(refreshTimer);
  const status = $("#library-status");
  status.textContent = "Loading…";
  try {
    const data = await get(`${V1}/files`, {
      query: { file_type: state.type, page: state.page, items_per_page: PAGE_SIZE },
    });
    if (mine !== generation) return; // a newer load started meanwhile
    releaseThumbnails();
    const grid = $("#library-grid");
    grid.replaceChildren(...data.items.map(card));
    const total = data.pagination.total_items;
    state.pages = data.pagination.total_pages;
    status.textContent = total
      ? `${total} file${total === 1 ? "" : "s"}`
      : state.type ? `No ${state.type} files yet.` : "No files yet: upload one or generate a video.";
    $("#library-page").textContent = state.pages > 1 ? `Page ${state.page} of ${state.pages}` : "";
    $("#library-prev").disabled = state.page <= 1;
    $("#library-next").disabled = state.page >= state.pages;
    $("#library-prev").parentElement.hidden = state.pages <= 1;
    // Uploads are typed and thumbnailed by a worker: look again while any is pending.
    if (data.items.some((item) => item.processing_status === "pending" || item.processing_status === "processing")) {
      refreshTimer = setTimeout(load, 2000);
    }
  } catch (error) {
    if (mine === generation) status.textContent = `Could not load the files: ${error.message}`;
  }
}

function hashFor(type, page) {
  const query = new URLSearchParams();
  if (type) query.set("type", type);
  if (page > 1) query.set("page", String(page));
  const text = query.toString();
  return `#/library${text ? `?${text}` : ""}`;
}

export function init() {
  for (const radio of document.querySelectorAll("input[name=library-type]")) {
    radio.addEventListener("change", () => go(hashFor(radio.value, 1)));
  }
  $("#library-prev").addEventListener("click", () => go(hashFor(state.type, state.page - 1)));
  $("#library-next").addEventListener("click", () => go(hashFor(state.type, state.page + 1)));
  register("library", {
    title: "Library",
    enter({ query }) {
      const type = query.get("type") || "";
      state.type = ["video", "image", "audio", "document"].includes(type) ? type : "";
      state.page = Math.max(1, Number.parseInt(query.get("page") || "1", 10) || 1);
      const radio = document.querySelector(`input[name=library-type][value="${state.type}"]`);
      if (radio) radio.checked = true;
      return load();
    },
    leave() {
      generation += 1;
      clearTimeout(refreshTimer);
      releaseThumbnails();
    },
  });
}
