"""The learned, decayed tag prior: how likely a tag is for a content before reading it.

Why a separate column
    A recommender that loses to "suggest the most popular tags" on new content is
    not worth its name. The agent's score therefore contains, as one input of its
    linear head, the log-odds that a tag is right for a random content::

        prior(a) = logit( (positives(a) + s * base) / (contexts + s) )

    With no informative text (content embedding zero, no word match) the score is
    ``w * prior(a) + b`` with ``w > 0``: a monotone function of the prior, i.e. the
    popularity ranking exactly. With informative text the other columns move the
    score away from it, and the head learns how much to trust each.

What counts
    * a content labelled by its owner (the tags given at upload/generate time): one
      context, one positive for each of its tags — the item popularity the
      popularity baseline uses;
    * a logged decision answered by a viewer: one context, and for each accepted
      tag the importance weight ``min(clip, 1 / propensity)``. Because decisions
      depend on the content, accept counts alone are biased towards tags the
      policy already shows; the inverse-propensity weight makes the sum an
      unbiased estimate of how often the tag is right under the request stream.

Decay
    Counts decay with a half-life measured in contexts, so a tag that stops
    being used loses its prior (tastes drift, vocabularies are curated). The
    decay is lazy: values are stored scaled by a growing factor and divided out
    on read, so an observation costs O(its tags), not O(vocabulary).

numpy only: the API process builds a prior from tag counts for the cold start.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["DEFAULT_PRIOR_HALFLIFE", "TagPrior"]

DEFAULT_PRIOR_HALFLIFE = 200_000.0
#: Pseudo-contexts of the smoothing (a tag seen once out of ten is not "certain").
_SMOOTHING = 2.0
#: Largest importance weight one accepted suggestion may contribute.
DEFAULT_IPS_CLIP = 20.0
_RESCALE_AT = 1e100
#: A key no normalised tag can be (tags have word characters only).
_UNSEEN = "\x00"


class TagPrior:
    """Exponentially decayed positives per tag over decayed contexts."""

    def __init__(
        self, halflife: float = DEFAULT_PRIOR_HALFLIFE, ips_clip: float = DEFAULT_IPS_CLIP
    ) -> None:
        if halflife <= 0 or ips_clip < 1:
            raise ValueError("halflife must be positive and ips_clip at least 1")
        self.halflife = float(halflife)
        self.ips_clip = float(ips_clip)
        self._scale = 1.0  # stored values are true values times this factor
        self._positives: dict[str, float] = {}
        self._contexts = 0.0

    # --- observations ---------------------------------------------------------------------

    def _advance(self, contexts: float) -> None:
        self._scale *= 2.0 ** (contexts / self.halflife)
        if self._scale > _RESCALE_AT:
            factor = 1.0 / self._scale
            self._positives = {t: v * factor for t, v in self._positives.items()}
            self._contexts *= factor
            self._scale = 1.0

    def observe(self, positives: Mapping[str, float]) -> None:
        """One context (a labelled content or an answered decision) and its positive weights."""
        self._advance(1.0)
        self._contexts += self._scale
        for tag, weight in positives.items():
            if weight > 0:
                self._positives[tag] = self._positives.get(tag, 0.0) + weight * self._scale

    def observe_labels(self, tags: Iterable[str]) -> None:
        """A content its owner tagged: every tag is right for it."""
        self.observe(dict.fromkeys(tags, 1.0))

    def observe_decision(
        self, shown: Sequence[str], rewards: Sequence[float], propensities: Sequence[float]
    ) -> None:
        """A decision answered by a viewer: accepted tags count ``min(clip, 1/propensity)``."""
        weights: dict[str, float] = {}
        for tag, reward, prop in zip(shown, rewards, propensities, strict=True):
            if reward > 0 and prop > 0:
                weights[tag] = min(self.ips_clip, min(reward, 1.0) / prop)
        self.observe(weights)

    # --- queries --------------------------------------------------------------------------

    @property
    def contexts(self) -> float:
        return self._contexts / self._scale

    def positives(self, tag: str) -> float:
        return self._positives.get(tag, 0.0) / self._scale

    def base_rate(self, n_tags: int) -> float:
        """The rate every tag shrinks towards: one tag in ``n_tags``."""
        return 1.0 / max(n_tags, 2)

    def rates(self, tags: Sequence[str], n_tags: int | None = None) -> npt.NDArray[np.float64]:
        """Smoothed rate for each tag in (0, 1) (tags never seen get the base rate)."""
        base = self.base_rate(n_tags if n_tags is not None else len(self._positives))
        total = self._contexts / self._scale
        pos = np.array([self._positives.get(t, 0.0) for t in tags], dtype=np.float64)
        pos /= self._scale
        # IPS weights can push a rare tag's estimate above its contexts: keep a rate < 1
        rate = (np.minimum(pos, total) + _SMOOTHING * base) / (total + _SMOOTHING)
        return np.clip(rate, 1e-6, 1.0 - 1e-6)

    def logits(self, tags: Sequence[str], n_tags: int | None = None) -> npt.NDArray[np.float64]:
        """Smoothed log-odds for each tag (the logistic loss's scale)."""
        rate = self.rates(tags, n_tags)
        return np.log(rate) - np.log1p(-rate)

    def column(
        self, tags: Sequence[str], n_tags: int, *, logit: bool = True
    ) -> npt.NDArray[np.float64]:
        """The model input: log-odds for a logistic model, the rate for a squared loss."""
        return self.logits(tags, n_tags) if logit else self.rates(tags, n_tags)

    def table(
        self, tags: Sequence[str], *, logit: bool = True
    ) -> tuple[npt.NDArray[np.float64], float]:
        """(value per tag, value of an unseen tag) for exporting with a scorer."""
        n = len(tags)
        unseen = float(self.column([_UNSEEN], n, logit=logit)[0])
        return self.column(tags, n, logit=logit), unseen

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], contexts: float | None = None) -> TagPrior:
        """A prior from plain use counts (the API's cold start before any model exists).

        Without the number of contents the total of the counts stands in for it; the
        ranking, which is all the cold start needs, is the counts' ranking either way.
        """
        prior = cls()
        prior._positives = {t: float(c) for t, c in counts.items() if c > 0}
        total = float(sum(counts.values())) if contexts is None else float(contexts)
        prior._contexts = max(total, max(prior._positives.values(), default=0.0))
        return prior

    # --- persistence ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "halflife": self.halflife,
            "ips_clip": self.ips_clip,
            "contexts": self.contexts,
            "positives": {t: v / self._scale for t, v in self._positives.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TagPrior:
        prior = cls(float(data["halflife"]), float(data["ips_clip"]))
        prior._contexts = float(data["contexts"])
        prior._positives = {str(t): float(v) for t, v in data["positives"].items()}
        return prior

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> TagPrior:
        return cls.from_dict(json.loads(text))
