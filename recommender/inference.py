"""Numpy-only tag scoring and exploration for the API process.

The training worker exports a ``TagScorer`` as npz bytes (``Agent.export_scorer``
/ ``checkpoint.export_scorer``); the API loads it with ``TagScorer.from_bytes``
and calls ``recommend``. Nothing in this module's import chain imports torch.

Scoring (identical to ``recommender.agent.TagModel``)::

    u(x)  = sum_i x_i E[i]                (content embedding, E: content table)
    v(a)  = sum_j z_j F[j]                (tag embedding, F: tag table)
    lin   = sum_i x_i W[i, a]             (per-tag linear term, ``recommender.linear``)
    phi   = [u * v, word_match, gram_match, prior(a), lin(x, a), 1]   (d + 5 values)
    score = phi . theta

``prior(a)`` is the learned, decayed log-odds of the tag (``recommender.prior``),
exported per vocabulary tag: with no informative text the score ranks tags by it,
which is the popularity ranking exactly.

The cold/warm gate: content the model has had no feedback for is scored by the
classifier fitted on the owners' tags (``LinearTerm.classifier_scores``; a tag
it was not fitted on gets its prior log-odds), and handed over to the bandit as
feedback for that content accumulates::

    g = n / (n + cold_gate)          (n: feedback events trained on for this content)
    ranked score = g * (phi . theta) + (1 - g) * classifier(x, a)

Why: the bandit memorises what viewers said about a content (online precision
near 1 on answered content), but on new content its low-rank score generalised
worse than the full-information classifier the simulator uses as its reference.
The evidence is counted per content (``ContentFeatures.key``, from the file id),
not per text feature, so a new file never borrows another file's feedback. The
Thompson draw moves only the bandit's share: a cold content is explored by the
epsilon mixture alone, and propensities stay those of the ranking shown.

Exploration: Thompson sampling on the linear head. ``theta ~ N(mean, L L^T)``
with ``L`` the Cholesky factor of the (scaled) posterior covariance exported
by the agent; the k tags with the highest sampled scores are shown, ordered
by sampled score. With probability ``epsilon`` k tags are drawn uniformly
instead, which guarantees every candidate a propensity of at least
``epsilon * k / n`` (support for off-policy evaluation).

Propensities: the probability that a tag is among the k shown under that
mixture, ``(1 - eps) * P_TS(tag in top-k) + eps * k / n``. ``P_TS`` has no
closed form; it is estimated from the decision's own draw plus
``mc_samples`` further posterior draws (so it is never below 1/(mc+1)).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from recommender.features import (
    N_MATCH_FEATURES,
    ContentFeatures,
    FeatureConfig,
    TagFeatures,
    TagSet,
    build_content_features,
    build_tag_features,
    normalize_tag,
)
from recommender.linear import LinearTerm
from recommender.prior import TagPrior

__all__ = ["SCORER_FORMAT", "Decision", "TagScorer", "popularity_vector"]

#: Format number of the npz export. Bump on any incompatible change.
SCORER_FORMAT = 3
#: Extra phi columns after the d product columns: word match, gram match, tag prior,
#: per-tag linear term, bias.
N_EXTRA = N_MATCH_FEATURES + 3
PRIOR_COLUMN = N_MATCH_FEATURES
LINEAR_COLUMN = N_MATCH_FEATURES + 1
BIAS_COLUMN = N_MATCH_FEATURES + 2
#: Prior head weights (logit scale) of the extra columns; also ``AgentConfig``'s defaults.
DEFAULT_MATCH_PRIOR = (3.0, 1.0)
DEFAULT_POPULARITY_PRIOR = 1.0
DEFAULT_BIAS_PRIOR = 0.0
DEFAULT_LINEAR_PRIOR = 1.0
DEFAULT_EMBED_DIM = 32
#: Candidate lists whose tag vectors and match index stay cached (the global
#: vocabulary plus the private vocabularies of recently active users).
MAX_CACHED_BLOCKS = 512


@dataclass(frozen=True)
class Decision:
    """One recommendation: tags in display order with their scores and propensities."""

    tags: tuple[str, ...]
    scores: dict[str, float]
    propensities: dict[str, float]
    explored: bool
    epsilon: float
    n_candidates: int
    model_events: int = 0
    #: every tag the decision chose from (off-policy evaluation needs them)
    candidates: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "tags": list(self.tags),
            "scores": self.scores,
            "propensities": self.propensities,
            "explored": self.explored,
            "epsilon": self.epsilon,
            "n_candidates": self.n_candidates,
            "model_events": self.model_events,
        }


def popularity_vector(tags: Sequence[str], counts: dict[str, int]) -> npt.NDArray[np.float32]:
    """log1p(count) / log1p(max count) for each tag (0 for unknown tags)."""
    top = max(counts.values(), default=0)
    if top <= 0:
        return np.zeros(len(tags), dtype=np.float32)
    raw = np.array([counts.get(t, 0) for t in tags], dtype=np.float64)
    return (np.log1p(raw) / np.log1p(top)).astype(np.float32)


@dataclass(frozen=True)
class _CandidateBlock:
    """Per candidate list: tag vectors, flattened match hashes and popularity (cached)."""

    vectors: npt.NDArray[np.float64]
    tag_set: TagSet
    prior: npt.NDArray[np.float64]
    linear_positions: npt.NDArray[np.int64]
    members: frozenset[str]


class _SparseTable:
    """Rows of an embedding table stored sparsely (untouched rows are zero)."""

    def __init__(self, rows: npt.NDArray[np.int64], table: npt.NDArray[np.float32], dim: int):
        order = np.argsort(rows)
        self.rows = rows[order]
        self.table = table[order]
        self.dim = dim

    def embed(
        self, indices: npt.NDArray[np.int64], values: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        out = np.zeros(self.dim, dtype=np.float32)
        if self.rows.shape[0] == 0 or indices.shape[0] == 0:
            return out
        pos = np.searchsorted(self.rows, indices)
        pos = np.minimum(pos, self.rows.shape[0] - 1)
        hit = self.rows[pos] == indices
        if not hit.any():
            return out
        return (values[hit] @ self.table[pos[hit]]).astype(np.float32)


def _linear_column(
    scores: npt.NDArray[np.float64], positions: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    if scores.shape[0] == 0:
        return np.zeros(positions.shape[0])
    return np.where(positions >= 0, scores[np.maximum(positions, 0)], 0.0)


class TagScorer:
    """An exported policy: scores (content, tag) pairs and picks k tags with exploration."""

    def __init__(
        self,
        *,
        config: FeatureConfig,
        content_rows: npt.NDArray[np.int64],
        content_table: npt.NDArray[np.float32],
        tag_rows: npt.NDArray[np.int64],
        tag_table: npt.NDArray[np.float32],
        head_mean: npt.NDArray[np.float64],
        head_chol: npt.NDArray[np.float64],
        vocabulary_counts: dict[str, int],
        epsilon: float = 0.0,
        exploration_scale: float = 1.0,
        mc_samples: int = 32,
        model_events: int = 0,
        meta: dict[str, Any] | None = None,
        tag_prior: dict[str, float] | None = None,
        unseen_prior: float | None = None,
        linear: LinearTerm | None = None,
        evidence: Mapping[int, float] | None = None,
        cold_gate: float = 0.0,
        linear_head: bool = True,
    ) -> None:
        dim = int(content_table.shape[1]) if content_table.ndim == 2 else 0
        self.embed_dim = dim
        self.config = config
        self._content = _SparseTable(content_rows, content_table.astype(np.float32), dim)
        self._tag = _SparseTable(tag_rows, tag_table.astype(np.float32), dim)
        self.head_mean = np.asarray(head_mean, dtype=np.float64)
        self.head_chol = np.asarray(head_chol, dtype=np.float64)
        if self.head_mean.shape != (dim + N_EXTRA,):
            raise ValueError("head size does not match embedding size")
        self.vocabulary_counts = dict(vocabulary_counts)
        self.tags = [normalize_tag(t) for t in self.vocabulary_counts]
        self.epsilon = float(epsilon)
        self.exploration_scale = float(exploration_scale)
        self.mc_samples = int(mc_samples)
        self.model_events = int(model_events)
        self.meta = dict(meta or {})
        if tag_prior is None:
            # no learned prior exported (cold start): the counts' ranking
            prior = TagPrior.from_counts(self.vocabulary_counts)
            logits, unseen = prior.table(self.tags)
            tag_prior = dict(zip(self.tags, logits.tolist(), strict=True))
            unseen_prior = unseen
        self.tag_prior = {normalize_tag(t): float(v) for t, v in tag_prior.items()}
        self.unseen_prior = float(unseen_prior if unseen_prior is not None else 0.0)
        self.linear = linear if linear is not None else LinearTerm.empty()
        #: whether the head's linear column reads the linear term (``AgentConfig.linear``)
        self.linear_head = bool(linear_head)
        self.cold_gate = float(cold_gate)
        pairs = sorted((evidence or {}).items())
        self._evidence_keys = np.array([k for k, _ in pairs], dtype=np.uint64)
        self._evidence_counts = np.array([c for _, c in pairs], dtype=np.float64)
        self._tag_cache: dict[str, tuple[TagFeatures, npt.NDArray[np.float32]]] = {}
        self._blocks: dict[tuple[str, ...], _CandidateBlock] = {}

    # --- (de)serialisation -----------------------------------------------------------------

    @classmethod
    def from_bytes(cls, blob: bytes) -> TagScorer:
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            fmt = int(data["format"])
            if fmt != SCORER_FORMAT:
                raise ValueError(f"unsupported scorer format {fmt} (expected {SCORER_FORMAT})")
            meta = json.loads(str(data["meta"]))
            tags = [str(t) for t in data["vocab_tags"]]
            counts = [int(c) for c in data["vocab_counts"]]
            priors = [float(p) for p in data["vocab_prior"]]
            files = set(data.files)
            evidence: dict[int, float] = {}
            if "evidence_keys" in files:
                evidence = dict(
                    zip(
                        data["evidence_keys"].astype(np.uint64).tolist(),
                        data["evidence_counts"].astype(np.float64).tolist(),
                        strict=True,
                    )
                )
            return cls(
                config=FeatureConfig.from_dict(meta["features"]),
                content_rows=data["content_rows"].astype(np.int64),
                content_table=data["content_table"],
                tag_rows=data["tag_rows"].astype(np.int64),
                tag_table=data["tag_table"],
                head_mean=data["head_mean"],
                head_chol=data["head_chol"],
                vocabulary_counts=dict(zip(tags, counts, strict=True)),
                epsilon=float(meta["epsilon"]),
                exploration_scale=float(meta["exploration_scale"]),
                mc_samples=int(meta["mc_samples"]),
                model_events=int(meta.get("events_seen", 0)),
                meta=meta,
                tag_prior=dict(zip(tags, priors, strict=True)),
                unseen_prior=float(meta["unseen_prior"]),
                linear=LinearTerm(
                    data["linear_columns"].astype(np.int64),
                    data["linear_weight"],
                    [str(t) for t in data["linear_tags"]],
                    data["linear_offset"],
                    data["linear_bias"] if "linear_bias" in files else None,
                ),
                evidence=evidence,
                cold_gate=float(meta.get("cold_gate", 0.0)),
                linear_head=bool(meta.get("linear_head", True)),
            )

    @classmethod
    def untrained(
        cls,
        vocabulary_counts: dict[str, int],
        config: FeatureConfig | None = None,
        *,
        embed_dim: int = DEFAULT_EMBED_DIM,
        match_prior: tuple[float, float] = DEFAULT_MATCH_PRIOR,
        popularity_prior: float = DEFAULT_POPULARITY_PRIOR,
        bias_prior: float = DEFAULT_BIAS_PRIOR,
        linear_prior: float = DEFAULT_LINEAR_PRIOR,
        noise_std: float = 1.0,
        prior_precision: float = 1.0,
        epsilon: float = 0.05,
    ) -> TagScorer:
        """The cold-start policy without torch: what a fresh ``Agent`` exports.

        An untrained agent's content table is zero, so only text match, popularity and
        the prior head matter; the API can serve this before the first model exists.
        """
        dim = embed_dim
        head = np.array([1.0] * dim + [*match_prior, popularity_prior, linear_prior, bias_prior])
        chol = np.eye(dim + N_EXTRA) * (noise_std / np.sqrt(prior_precision))
        return cls(
            config=config or FeatureConfig(),
            content_rows=np.zeros(0, dtype=np.int64),
            content_table=np.zeros((0, dim), dtype=np.float32),
            tag_rows=np.zeros(0, dtype=np.int64),
            tag_table=np.zeros((0, dim), dtype=np.float32),
            head_mean=head,
            head_chol=chol,
            vocabulary_counts=vocabulary_counts,
            epsilon=epsilon,
            meta={"untrained": True},
        )

    @staticmethod
    def write_bytes(
        *,
        meta: dict[str, Any],
        content_rows: npt.NDArray[np.int64],
        content_table: npt.NDArray[np.float32],
        tag_rows: npt.NDArray[np.int64],
        tag_table: npt.NDArray[np.float32],
        head_mean: npt.NDArray[np.float64],
        head_chol: npt.NDArray[np.float64],
        vocabulary_counts: dict[str, int],
        tag_prior: dict[str, float],
        linear: LinearTerm | None = None,
        evidence: Mapping[int, float] | None = None,
    ) -> bytes:
        """The npz layout read by ``from_bytes`` (used by the agent's exporter).

        ``meta`` must hold ``unseen_prior`` (the prior logit of a tag outside the
        vocabulary); ``tag_prior`` has a logit for every vocabulary tag.
        """
        buf = io.BytesIO()
        tags = list(vocabulary_counts)
        lin = linear if linear is not None else LinearTerm.empty()
        ev = evidence or {}
        np.savez(
            buf,
            format=np.array(SCORER_FORMAT, dtype=np.int64),
            meta=np.array(json.dumps(meta, sort_keys=True)),
            content_rows=content_rows.astype(np.int32),
            content_table=content_table.astype(np.float32),
            tag_rows=tag_rows.astype(np.int32),
            tag_table=tag_table.astype(np.float32),
            head_mean=head_mean.astype(np.float64),
            head_chol=head_chol.astype(np.float64),
            vocab_tags=np.array(tags, dtype=np.str_) if tags else np.zeros(0, dtype="<U1"),
            vocab_counts=np.array([vocabulary_counts[t] for t in tags], dtype=np.int64),
            vocab_prior=np.array([tag_prior[t] for t in tags], dtype=np.float64),
            linear_columns=lin.columns.astype(np.int64),
            linear_weight=lin.weight.astype(np.float32),
            linear_tags=np.array(lin.tags, dtype=np.str_) if lin.tags else np.zeros(0, "<U1"),
            linear_offset=lin.offset.astype(np.float32),
            linear_bias=lin.bias.astype(np.float32),
            evidence_keys=np.fromiter(ev, dtype=np.uint64, count=len(ev)),
            evidence_counts=np.fromiter(ev.values(), dtype=np.float64, count=len(ev)),
        )
        return buf.getvalue()

    # --- features --------------------------------------------------------------------------

    def content_features(
        self,
        title: str | None = None,
        description: str | None = None,
        script: str | None = None,
        media_type: str | None = None,
        duration_s: float | None = None,
    ) -> ContentFeatures:
        """Content features with this model's FeatureConfig (always use this in the API)."""
        return build_content_features(
            title, description, script, media_type, duration_s, config=self.config
        )

    def _tag_entry(self, tag: str) -> tuple[TagFeatures, npt.NDArray[np.float32]]:
        entry = self._tag_cache.get(tag)
        if entry is None:
            feats = build_tag_features(tag, self.config)
            entry = (feats, self._tag.embed(feats.indices, feats.values))
            if len(self._tag_cache) < 100_000:
                self._tag_cache[tag] = entry
        return entry

    def _block(self, tags: tuple[str, ...]) -> _CandidateBlock:
        block = self._blocks.get(tags)
        if block is None:
            entries = [self._tag_entry(t) for t in tags]
            vecs = (
                np.stack([e[1] for e in entries]).astype(np.float64)
                if entries
                else np.zeros((0, self.embed_dim))
            )
            block = _CandidateBlock(
                vecs,
                TagSet([e[0] for e in entries]),
                np.array([self.tag_prior.get(t, self.unseen_prior) for t in tags]),
                self.linear.positions(tags),
                frozenset(tags),
            )
            if len(self._blocks) >= MAX_CACHED_BLOCKS:
                self._blocks.pop(next(iter(self._blocks)))
            self._blocks[tags] = block
        return block

    # --- the cold/warm gate ----------------------------------------------------------------

    def evidence(self, context: ContentFeatures) -> float:
        """Feedback events the model has trained on for this content (0 if unknown)."""
        if not context.key or self._evidence_keys.shape[0] == 0:
            return 0.0
        key = np.uint64(context.key)
        pos = int(np.searchsorted(self._evidence_keys, key))
        if pos < self._evidence_keys.shape[0] and self._evidence_keys[pos] == key:
            return float(self._evidence_counts[pos])
        return 0.0

    def gate(self, context: ContentFeatures) -> float:
        """The bandit's share ``n / (n + cold_gate)`` of this content's score; the rest is
        the cold classifier's. 1 (the bandit alone) without a gate or a classifier."""
        if self.cold_gate <= 0 or not len(self.linear):
            return 1.0
        n = self.evidence(context)
        return n / (n + self.cold_gate)

    def _linear_parts(
        self, context: ContentFeatures, cold: bool
    ) -> tuple[npt.NDArray[np.float64] | None, npt.NDArray[np.float64] | None]:
        """(head column values, cold classifier logits) per tag of the linear term."""
        if not len(self.linear) or not (self.linear_head or cold):
            return None, None
        product = self.linear.product(context)
        head = product + self.linear.offset if self.linear_head else None
        return head, (product + self.linear.bias if cold else None)

    def _fill(
        self,
        out: npt.NDArray[np.float64],
        block: _CandidateBlock,
        u: npt.NDArray[np.float64],
        context: ContentFeatures,
        head_lin: npt.NDArray[np.float64] | None,
    ) -> None:
        d = self.embed_dim
        out[:, :d] = block.vectors * u[None, :]
        out[:, d : d + N_MATCH_FEATURES] = block.tag_set.match(context)
        out[:, d + PRIOR_COLUMN] = block.prior
        out[:, d + LINEAR_COLUMN] = (
            0.0 if head_lin is None else _linear_column(head_lin, block.linear_positions)
        )
        out[:, d + BIAS_COLUMN] = 1.0

    @staticmethod
    def _cold_column(
        block: _CandidateBlock, cold_lin: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        """The classifier's logit per candidate; a tag it was not fitted on gets its
        prior log-odds (the classifier's bias is the same quantity for the tags it knows)."""
        pos = block.linear_positions
        return np.where(pos >= 0, cold_lin[np.maximum(pos, 0)], block.prior)

    def grouped_phi(
        self,
        context: ContentFeatures,
        groups: Sequence[tuple[str, ...]],
        exclude: Iterable[str] = (),
    ) -> tuple[list[str], npt.NDArray[np.float64]]:
        """Candidates from several cached lists of normalised tags (e.g. the global
        vocabulary and one user's), without duplicates and excluded tags, and their phi.

        Each list keeps its own cached block, so a request costs no block building
        however many different users (and existing tags) there are.
        """
        names, phi, _ = self._grouped(context, groups, exclude, cold=False)
        return names, phi

    def _grouped(
        self,
        context: ContentFeatures,
        groups: Sequence[tuple[str, ...]],
        exclude: Iterable[str],
        *,
        cold: bool,
    ) -> tuple[list[str], npt.NDArray[np.float64], npt.NDArray[np.float64] | None]:
        excluded = {normalize_tag(t) for t in exclude}
        u = self._content.embed(context.indices, context.values).astype(np.float64)
        head_lin, cold_lin = self._linear_parts(context, cold)
        d = self.embed_dim
        names: list[str] = []
        parts: list[npt.NDArray[np.float64]] = []
        cold_parts: list[npt.NDArray[np.float64]] = []
        seen: set[str] = set()
        for group in groups:
            if not group:
                continue
            block = self._block(group)
            # set operations in C instead of a Python loop over every candidate: only
            # the few tags already taken or excluded need looking at one by one
            drop = set(block.members & seen)
            if excluded:
                drop |= block.members & excluded
            if drop or len(block.members) != len(group):
                keep = []
                for i, name in enumerate(group):
                    if name not in drop:
                        drop.add(name)  # a repeated name counts once
                        keep.append(i)
            else:
                keep = list(range(len(group)))
            seen |= block.members
            if not keep:
                continue
            out = np.empty((len(group), d + N_EXTRA), dtype=np.float64)
            self._fill(out, block, u, context, head_lin)
            whole = len(keep) == len(group)
            parts.append(out if whole else out[keep])
            if cold_lin is not None:
                column = self._cold_column(block, cold_lin)
                cold_parts.append(column if whole else column[keep])
            names.extend(group[i] for i in keep)
        if not parts:
            return [], np.zeros((0, d + N_EXTRA)), np.zeros(0) if cold_lin is not None else None
        joined = np.concatenate(parts) if len(parts) > 1 else parts[0]
        cold_scores = None
        if cold_lin is not None:
            cold_scores = np.concatenate(cold_parts) if len(cold_parts) > 1 else cold_parts[0]
        return names, joined, cold_scores

    def _phi(
        self, context: ContentFeatures, tags: Sequence[str], *, cold: bool
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64] | None]:
        block = self._block(tuple(tags))
        u = self._content.embed(context.indices, context.values).astype(np.float64)
        head_lin, cold_lin = self._linear_parts(context, cold)
        out = np.empty((len(tags), self.embed_dim + N_EXTRA), dtype=np.float64)
        self._fill(out, block, u, context, head_lin)
        return out, None if cold_lin is None else self._cold_column(block, cold_lin)

    def phi(self, context: ContentFeatures, tags: Sequence[str]) -> npt.NDArray[np.float64]:
        """(n, d + N_EXTRA) head inputs for normalised tag names."""
        return self._phi(context, tags, cold=False)[0]

    def score(self, context: ContentFeatures, tags: Sequence[str]) -> npt.NDArray[np.float64]:
        """The bandit's posterior-mean scores (logits) of each tag for this content."""
        names = [normalize_tag(t) for t in tags]
        return self.phi(context, names) @ self.head_mean

    def gated_score(self, context: ContentFeatures, tags: Sequence[str]) -> npt.NDArray[np.float64]:
        """What ``recommend`` ranks by: ``g * bandit + (1 - g) * cold classifier``,
        ``g = gate(context)``."""
        names = [normalize_tag(t) for t in tags]
        g = self.gate(context)
        phi, cold = self._phi(context, names, cold=g < 1.0)
        return self._mix(phi @ self.head_mean, cold, g)

    @staticmethod
    def _mix(
        bandit: npt.NDArray[np.float64], cold: npt.NDArray[np.float64] | None, g: float
    ) -> npt.NDArray[np.float64]:
        if cold is None or g >= 1.0:
            return bandit
        return g * bandit + (1.0 - g) * cold

    # --- decisions -------------------------------------------------------------------------

    def _candidates(
        self, candidate_tags: Iterable[str] | None, exclude: Iterable[str]
    ) -> list[str]:
        excluded = {normalize_tag(t) for t in exclude}
        if candidate_tags is None and not excluded:
            return self.tags
        seen: set[str] = set()
        out = []
        for t in self.tags if candidate_tags is None else candidate_tags:
            name = normalize_tag(t)
            if name and name not in seen and name not in excluded:
                seen.add(name)
                out.append(name)
        return out

    def _sampled_scores(
        self, phi: npt.NDArray[np.float64], n_draws: int, rng: np.random.Generator
    ) -> npt.NDArray[np.float64]:
        """(n_draws, n) scores under independent posterior draws of the head."""
        z = rng.standard_normal((n_draws, self.head_mean.shape[0]))
        theta = self.head_mean[None, :] + self.exploration_scale * (z @ self.head_chol.T)
        return theta @ phi.T

    @staticmethod
    def _top_k(scores: npt.NDArray[np.float64], k: int) -> npt.NDArray[np.int64]:
        """Indices of the k best scores, best first (ties: candidate order)."""
        order = np.argsort(-scores, kind="stable")
        return order[:k].astype(np.int64)

    def recommend(
        self,
        context: ContentFeatures,
        candidate_tags: Iterable[str] | None = None,
        k: int = 3,
        rng: np.random.Generator | None = None,
        *,
        explore: bool = True,
        exclude: Iterable[str] = (),
        candidate_groups: Sequence[tuple[str, ...]] | None = None,
    ) -> Decision:
        """Choose up to k tags. ``candidate_tags=None`` means the exported vocabulary;
        ``candidate_groups`` (lists of normalised tags, see ``grouped_phi``) overrides it.

        ``explore=False`` is the greedy (posterior-mean) policy: propensity 1 for the
        shown tags. Use ``exclude`` for tags the content already has.
        """
        g = self.gate(context)
        cold: npt.NDArray[np.float64] | None = None
        if candidate_groups is not None:
            names, phi, cold = self._grouped(context, candidate_groups, exclude, cold=g < 1.0)
        else:
            names = self._candidates(candidate_tags, exclude)
            if names:
                phi, cold = self._phi(context, names, cold=g < 1.0)
            else:
                phi = np.zeros((0, 0))
        n = len(names)
        kk = min(max(k, 0), n)
        if kk == 0:
            return Decision((), {}, {}, False, self.epsilon, n, self.model_events)
        mean = self._mix(phi @ self.head_mean, cold, g)
        greedy = self._top_k(mean, kk)
        if not explore:
            chosen = greedy
            props = np.ones(n)
            explored = False
        else:
            gen = rng if rng is not None else np.random.default_rng()
            eps = self.epsilon
            sampled = self._mix(self._sampled_scores(phi, self.mc_samples + 1, gen), cold, g)
            uniform = bool(gen.random() < eps)
            first = self._top_k(sampled[0], kk)  # the Thompson draw of this decision
            if uniform:
                picked = gen.choice(n, size=kk, replace=False)
                chosen = picked[np.argsort(-mean[picked], kind="stable")].astype(np.int64)
            else:
                chosen = first
            if kk == n:
                p_ts = np.ones(n)
            else:
                # the decision's own draw counts with the same tie-breaking that chose it,
                # so a shown tag never gets propensity 0
                tops = np.argpartition(-sampled[1:], kk - 1, axis=1)[:, :kk]
                counts = np.bincount(tops.ravel(), minlength=n) + np.bincount(first, minlength=n)
                p_ts = counts / sampled.shape[0]
            props = (1.0 - eps) * p_ts + eps * kk / n
            explored = uniform or set(chosen.tolist()) != set(greedy.tolist())
        tags = tuple(names[i] for i in chosen)
        return Decision(
            tags=tags,
            scores={names[i]: float(mean[i]) for i in chosen},
            propensities={names[i]: float(min(1.0, props[i])) for i in chosen},
            explored=explored,
            epsilon=self.epsilon if explore else 0.0,
            n_candidates=n,
            model_events=self.model_events,
            candidates=tuple(names),
        )

    def inclusion_probabilities(
        self,
        context: ContentFeatures,
        candidate_tags: Iterable[str] | None = None,
        k: int = 3,
        rng: np.random.Generator | None = None,
        *,
        explore: bool = True,
        n_samples: int = 256,
    ) -> dict[str, float]:
        """P(tag is among the k shown) for every candidate (for off-policy evaluation)."""
        names = self._candidates(candidate_tags, ())
        n = len(names)
        kk = min(max(k, 0), n)
        if kk == 0:
            return {}
        g = self.gate(context)
        phi, cold = self._phi(context, names, cold=g < 1.0)
        if not explore:
            greedy = set(self._top_k(self._mix(phi @ self.head_mean, cold, g), kk).tolist())
            return {t: float(i in greedy) for i, t in enumerate(names)}
        if kk == n:
            return dict.fromkeys(names, 1.0)
        gen = rng if rng is not None else np.random.default_rng()
        sampled = self._mix(self._sampled_scores(phi, n_samples, gen), cold, g)
        tops = np.argpartition(-sampled, kk - 1, axis=1)[:, :kk]
        p_ts = np.bincount(tops.ravel(), minlength=n) / n_samples
        probs = (1.0 - self.epsilon) * p_ts + self.epsilon * kk / n
        return {t: float(p) for t, p in zip(names, probs, strict=True)}
