// Upload one file with a progress bar. fetch() reports no upload progress,
// so this one request goes through XMLHttpRequest.

import { V1, ApiError, accessToken, refreshSession } from "./api.js";
import { $, h, say } from "./dom.js";
import { register } from "./router.js";

function sendOnce(form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${V1}/files/upload`);
    const token = accessToken();
    if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => resolve({ status: xhr.status, body: xhr.response }));
    xhr.addEventListener("error", () => reject(new ApiError(0, "NETWORK", "The upload failed: network error")));
    xhr.addEventListener("abort", () => reject(new ApiError(0, "ABORTED", "The upload was stopped")));
    xhr.send(form);
  });
}

/** Upload `form` (multipart); resolves with the file record. */
export async function uploadFile(form, onProgress) {
  let result = await sendOnce(form, onProgress);
  if (result.status === 401 && (await refreshSession())) result = await sendOnce(form, onProgress);
  const body = result.body;
  if (result.status >= 200 && result.status < 300 && body?.success) return body.data;
  const error = body?.error || {};
  throw new ApiError(result.status, error.code || `HTTP_${result.status}`, error.message || "Upload failed", error.details);
}

// form.title would be the form's own title attribute: go through elements.
function field(form, name) {
  return form.elements.namedItem(name);
}

function setProgress(fraction) {
  const percent = Math.round(fraction * 100);
  $("#upload-progress").value = percent;
  $("#upload-percent").textContent = `${percent} %`;
}

async function submit(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const file = field(form, "file").files[0];
  const status = $("#upload-status");
  if (!file) {
    say(status, "Choose a file first.");
    return;
  }
  const body = new FormData();
  body.append("file", file, file.name);
  if (field(form, "title").value.trim()) body.append("title", field(form, "title").value.trim());
  if (field(form, "tags").value.trim()) body.append("tags", field(form, "tags").value.trim());

  const button = $("#upload-submit");
  button.disabled = true;
  $("#upload-progress-block").hidden = false;
  setProgress(0);
  delete $("#upload-progress").dataset.status;
  status.replaceChildren(`Uploading ${file.name}…`);
  try {
    const record = await uploadFile(body, setProgress);
    setProgress(1);
    $("#upload-progress").dataset.status = "completed";
    status.replaceChildren(
      `Uploaded ${record.filename} (${record.file_type}). `,
      h("a", { href: `#/item/${encodeURIComponent(record.id)}` }, "Open it"),
      " or ",
      h("a", { href: "#/library" }, "go to the library"),
      ".",
    );
    form.reset();
  } catch (error) {
    $("#upload-progress").dataset.status = "failed";
    status.textContent = error instanceof ApiError ? error.describe() : String(error);
  } finally {
    button.disabled = false;
  }
}

export function init() {
  $("#upload-form").addEventListener("submit", submit);
  register("upload", { title: "Upload" });
}
