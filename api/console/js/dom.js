// Small DOM helpers shared by the views.

/** The element matching `selector` (throws when the page lacks it: a bug, not a state). */
export function $(selector, root = document) {
  const element = root.querySelector(selector);
  if (!element) throw new Error(`missing element ${selector}`);
  return element;
}

/** Build an element: h("a", {href: "#/x", class: "button"}, "text", child). */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      element.className = value;
    } else if (name in element && typeof value !== "string") {
      element[name] = value;
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  element.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return element;
}

export function show(element, visible = true) {
  element.hidden = !visible;
}

/** Show a message in `element` (role=status/alert), or hide it when empty. */
export function say(element, message) {
  element.textContent = message || "";
  element.hidden = !message;
}

/** A URL of this origin for a link the API made absolute with its public base URL:
 * the console is served by the same API, and a configured public URL may be a
 * name this browser cannot reach. */
export function sameOrigin(url) {
  const parsed = new URL(url, window.location.href);
  return parsed.pathname + parsed.search;
}

export function formatBytes(size) {
  if (size === null || size === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = Number(size);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 || value >= 10 ? 0 : 1)} ${units[unit]}`;
}

export function formatDate(value) {
  if (!value) return "";
  const date = new Date(value);
  return Number.isNaN(date.getTime())
    ? String(value)
    : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function formatTime(value) {
  if (!value) return "";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleTimeString(undefined, { hour12: false });
}

export function formatSeconds(value) {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return "";
  const total = Math.round(Number(value));
  const minutes = Math.floor(total / 60);
  return `${minutes}:${String(total % 60).padStart(2, "0")}`;
}

/** Tags typed as "a b, c" → ["a", "b", "c"]. */
export function splitTags(text) {
  return (text || "")
    .split(/[\s,]+/)
    .map((t) => t.trim())
    .filter(Boolean);
}

let toastTimer = 0;

/** A short message at the bottom of the screen, also read by screen readers. */
export function toast(message) {
  const box = $("#toast");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    box.hidden = true;
  }, 4000);
}

export function randomKey() {
  if (window.crypto?.randomUUID) return window.crypto.randomUUID();
  // randomUUID needs a secure context; a console on plain http over a LAN still works.
  const bytes = window.crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
