// Recommended tags for an item, each answered with accept or reject; the
// answers are the recommender's training signal.

import { V1, ApiError, get, post } from "./api.js";
import { $, h } from "./dom.js";

let generation = 0;

function showCurrent(tags) {
  $("#tags-current").textContent = tags.length ? `Current tags: ${tags.join(", ")}` : "No tags yet.";
}

async function answer(detail, recommendation, tag, accepted, row, current) {
  const status = $("#tags-status");
  for (const button of row.querySelectorAll("button")) button.disabled = true;
  try {
    await post(`${V1}/feedback`, {
      content_id: detail.id,
      event_type: accepted ? "tag_accept" : "tag_reject",
      tags: [tag],
      recommendation_id: recommendation.recommendation_id,
    });
    row.classList.add(accepted ? "accepted" : "rejected");
    row.querySelector(".tag-actions").replaceChildren(
      h("span", { class: `badge ${accepted ? "status-completed" : "status-failed"}` }, accepted ? "Accepted" : "Rejected"),
    );
    if (accepted) {
      current.push(tag);
      showCurrent(current);
    }
    status.textContent = `${accepted ? "Accepted" : "Rejected"} “${tag}”.`;
  } catch (err) {
    for (const button of row.querySelectorAll("button")) button.disabled = false;
    status.textContent = err instanceof ApiError ? err.describe() : "Could not record the answer.";
  }
}

export async function loadTags(detail) {
  const mine = ++generation;
  const list = $("#item-tags");
  const status = $("#tags-status");
  const current = [...(detail.tags || [])];
  showCurrent(current);
  list.replaceChildren();
  status.textContent = "Loading suggestions…";
  try {
    const recommendation = await get(`${V1}/files/${encodeURIComponent(detail.id)}/recommended-tags`, { query: { k: 5 } });
    if (mine !== generation) return;
    list.dataset.recommendationId = recommendation.recommendation_id;
    list.replaceChildren(...recommendation.tags.map(({ tag, score }) => {
      const row = h("li", { class: "tag-row", "data-score": score.toFixed(3) }, h("span", { class: "tag" }, tag));
      row.append(h("span", { class: "tag-actions" },
        h("button", { type: "button", class: "small", "aria-label": `Accept tag ${tag}`, onclick: () => answer(detail, recommendation, tag, true, row, current) }, "Accept"),
        h("button", { type: "button", class: "small ghost", "aria-label": `Reject tag ${tag}`, onclick: () => answer(detail, recommendation, tag, false, row, current) }, "Reject"),
      ));
      return row;
    }));
    status.textContent = recommendation.tags.length
      ? `Model version ${recommendation.model_version}${recommendation.explored ? " (exploring)" : ""}.`
      : "No suggestions yet: tags appear as you tag uploads and videos.";
  } catch (err) {
    if (mine === generation) status.textContent = `No suggestions: ${err.message}`;
  }
}
