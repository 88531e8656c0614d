// Hash routing (#/library, #/item/<id>, #/library?type=image): the server
// serves one page, so no console path can shadow an API path.

import { currentSession } from "./api.js";

const views = new Map();
let active = null;
let rendered = false;

/** Register a view: the <section data-view=name> plus enter(params)/leave() hooks. */
export function register(name, { title, enter = () => {}, leave = () => {}, public: open = false }) {
  const section = document.querySelector(`section[data-view="${name}"]`);
  if (!section) throw new Error(`no section for view ${name}`);
  views.set(name, { name, title, enter, leave, open, section });
}

/** "#/item/abc?x=1" → {name: "item", args: ["abc"], query: URLSearchParams} */
export function parseHash(hash) {
  const text = hash.replace(/^#\/?/, "");
  const [path, search = ""] = text.split("?");
  const [name = "", ...args] = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { name: name || "library", args, query: new URLSearchParams(search) };
}

export function go(hash) {
  if (window.location.hash === hash) render();
  else window.location.hash = hash;
}

async function render() {
  // Other fragments (the skip link's #main) are in-page jumps, not routes.
  if (window.location.hash && !window.location.hash.startsWith("#/")) return;
  const route = parseHash(window.location.hash);
  let view = views.get(route.name) || views.get("missing");
  if (!view.open && !currentSession()) {
    const next = encodeURIComponent(window.location.hash || "#/library");
    window.location.replace(`#/login?next=${next}`);
    return;
  }
  if (active) {
    try {
      active.leave();
    } catch (error) {
      console.error(error);
    }
    active.section.hidden = true;
  }
  active = view;
  view.section.hidden = false;
  // A message belongs to the page it was shown on.
  const toastBox = document.getElementById("toast");
  if (toastBox) toastBox.hidden = true;
  document.title = `${view.title} · T2M`;
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === view.name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  // Move focus to the new heading so keyboard and screen-reader users land on
  // the content, as they would after a page load.
  // (Not on the first load: there the browser's own start position is right.)
  const heading = view.section.querySelector("h1");
  if (heading && rendered) heading.focus({ preventScroll: true });
  rendered = true;
  window.scrollTo(0, 0);
  try {
    await view.enter(route);
  } catch (error) {
    console.error(error);
  }
}

export function start() {
  window.addEventListener("hashchange", render);
  if (!window.location.hash) window.history.replaceState(null, "", "#/library");
  render();
}
