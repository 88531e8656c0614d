"""The agent's per-tag linear term (numpy only: the API scores with it).

``lin(x, a) = sum_i x_i W[i, a]``: one weight per (content feature, tag), the content
part of a one-vs-rest logistic regression fitted on the owners' tags with full
information (``recommender.supervised``). It lets the agent's score express exactly
what a supervised per-tag classifier does, which the low-rank bilinear term alone
did not reach on short real titles. The classifier's per-tag bias is left out: the
agent's tag prior column already carries the tag's log-odds, and a tag the term
does not know (added after the fit) then simply gets 0, not an arbitrary offset.

The same fit is the cold-content classifier of the cold/warm gate
(``inference.TagScorer.gate``): ``bias + x W`` with the classifier's own per-tag
``bias`` is its logit, which scores content that has had no feedback yet. That
use is on by default (``AgentConfig.cold_gate``); the head's linear column
(``AgentConfig.linear``) is not.

Storage is the rows of W for the features seen in training only (sorted
``columns``), ``len(columns) x len(tags)`` float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from recommender.features import ContentFeatures

__all__ = ["LinearTerm"]


class LinearTerm:
    """Per-tag linear weights over hashed content features."""

    def __init__(
        self,
        columns: npt.NDArray[np.int64],
        weight: npt.NDArray[np.float32],
        tags: Sequence[str],
        offset: npt.NDArray[np.float32] | None = None,
        bias: npt.NDArray[np.float32] | None = None,
    ) -> None:
        if weight.shape != (columns.shape[0], len(tags)):
            raise ValueError("linear term: weight must be (columns x tags)")
        #: per-tag constant: the classifier's bias minus the tag prior at fit time, so
        #: that prior + lin reproduces the classifier when fitted (0: bias left out)
        self.offset = (
            np.zeros(len(tags), dtype=np.float32)
            if offset is None
            else np.asarray(offset, dtype=np.float32)
        )
        #: the classifier's own per-tag bias: ``bias + x W`` is the fitted classifier's
        #: logit, what the cold-content gate scores new content with
        self.bias = (
            np.zeros(len(tags), dtype=np.float32)
            if bias is None
            else np.asarray(bias, dtype=np.float32)
        )
        if self.offset.shape != (len(tags),) or self.bias.shape != (len(tags),):
            raise ValueError("linear term: offset and bias must have one value per tag")
        self.columns = np.asarray(columns, dtype=np.int64)
        self.weight = np.asarray(weight, dtype=np.float32)
        self.tags = list(tags)
        self.index = {t: i for i, t in enumerate(self.tags)}

    @classmethod
    def empty(cls) -> LinearTerm:
        return cls(np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32), [])

    def __len__(self) -> int:
        return len(self.tags)

    def positions(self, tags: Sequence[str]) -> npt.NDArray[np.int64]:
        """Each tag's column in ``weight``, -1 for tags the term does not know."""
        return np.array([self.index.get(t, -1) for t in tags], dtype=np.int64)

    def content_scores(self, content: ContentFeatures) -> npt.NDArray[np.float64]:
        """``lin(x, a)`` for every tag of the term (one sparse row times W)."""
        return self.product(content) + self.offset

    def classifier_scores(self, content: ContentFeatures) -> npt.NDArray[np.float64]:
        """The fitted classifier's logit ``bias(a) + x W[:, a]`` for every tag of the term."""
        return self.product(content) + self.bias

    def product(self, content: ContentFeatures) -> npt.NDArray[np.float64]:
        """``x W``: the content's row times the weights, per tag (no constant)."""
        out = np.zeros(len(self.tags), dtype=np.float64)
        if not self.tags or self.columns.shape[0] == 0 or content.indices.shape[0] == 0:
            return out
        pos = np.minimum(np.searchsorted(self.columns, content.indices), len(self.columns) - 1)
        hit = self.columns[pos] == content.indices
        if hit.any():
            out += content.values[hit].astype(np.float64) @ self.weight[pos[hit]]
        return out
