"""The contextual-bandit tag agent (PyTorch; runs in the training worker only).

Model
    A two-tower bilinear scorer with a linear head over a small "neural-linear"
    feature vector::

        u(x) = EmbeddingBag_content(hashed content features)      (d)
        v(a) = EmbeddingBag_tag(hashed tag id, words, char grams)  (d)
        lin(x, a) = sum_i x_i W[i, a]                              (per-tag linear term)
        phi(x, a) = [u * v, word_match, gram_match, prior(a), lin(x, a), 1]
        score(x, a) = phi . theta     (logit of P(viewer accepts tag a for content x))

    ``lin`` is the content part of a one-vs-rest logistic regression fitted on the
    owners' tags with full information, its L2 penalty and epochs chosen on a
    validation split (``recommender.supervised``, the same procedure as the
    simulator's reference): a warm start that lets the score express what the
    tuned supervised model does. It is refitted when new owner labels arrived
    (the last ``label_store`` labelled contents are kept for that). Feedback then
    trains the head and the bilinear term on top of it: with ``linear`` on, the
    bilinear term no longer learns the owner labels itself (``bilinear_labels``),
    because the linear term already carries them and counting them twice made
    cold items' scores overconfident in the content and underweight the prior.

    ``prior(a)`` is the learned, decayed log-odds of the tag (``recommender.prior``):
    owner labels and inverse-propensity-weighted accepts. Its head weight starts
    at 1 and the bias at 0, so the untrained agent scores a tag by its prior log-odds
    plus text match; with uninformative text it *is* the popularity ranking.

    Tags are actions *with features*: a tag never trained on still gets
    ``v(a)`` from its words and grams, and the match/popularity columns give it
    a sensible score from day one.

Cold/warm gate (``cold_gate``, on by default)
    The owners' labels are also kept (the newest ``label_store``) to fit the
    tuned one-vs-rest classifier of ``recommender.supervised``; the agent counts
    the feedback events it trained on per content (``evidence``, the newest
    ``evidence_store`` contents) and exports both, and the scorer ranks a content
    by ``g * bandit + (1 - g) * classifier`` with ``g = n / (n + cold_gate)``
    (``inference``). New content gets the reference model's suggestions; content
    with its own feedback gets what the bandit learned from it.

Owner labels (full information)
    Content arrives tagged by its owner. ``learn_labels`` trains on those tags as
    positives with propensity 1 and on ``label_negatives`` other vocabulary tags,
    sampled uniformly, as negatives: the same supervision a full-information
    classifier gets, so the bandit starts from what the catalogue already says
    and feedback only has to add what the owners did not. The content table starts at zero, so an
    untrained agent *is* the cold-start policy (text similarity + popularity,
    prior weights ``match_prior``/``popularity_prior``/``bias_prior``); the tag
    table starts random so gradients flow.

Training
    ``update(events)`` takes per-tag feedback events (``rewards.FeedbackEvent``)
    and minimises the logistic loss of the score against the reward clipped to
    [0, 1] (a soft label: accept 1, reject 0, engagement in between; negative
    engagement counts as 0). ``loss="squared"`` regresses the raw reward
    instead (SquareCB-style oracle); at equal early settings (lr 0.01, 2 steps)
    the logistic loss gave the better held-out P@1 in the simulator. Each update runs
    ``steps_per_update`` steps on the new events plus ``replay_ratio`` times as
    many events replayed from a buffer (sampled by content: all tags shown for
    one content in one decision together, which keeps the embedding rows
    touched per step low). Embedding rows get a row-wise Adagrad whose
    gradients are formed by hand on the touched rows only (torch's sparse
    gradients spent most of the time sorting/coalescing indices); the head
    gets Adam.

    Importance weights: ``ips_clip`` turns on clipped, self-normalised weights
    ``min(clip, 1/propensity)``. They are off by default: a reward model
    conditioned on (content, tag) is consistent under any logging policy that
    gives the pair support, and in the simulator IPS weighting (clip 5) lowered
    both held-out and online P@1 by upweighting rare exploratory rejects.
    Propensities are still logged and used for off-policy evaluation
    (``evaluation``).

Exploration: Thompson sampling on the linear head (+ a small epsilon)
    The head is treated as a Bayesian linear model on ``phi`` (Laplace
    approximation for the logistic loss: curvature ``p(1-p)``), with the
    SGD-trained head as posterior mean and covariance
    ``sigma^2 (lambda I + A)^-1``, ``A = sum p(1-p) phi phi^T`` with exponential
    forgetting (the representation moves, old outer products go stale). This
    is the neural-linear / Laplace TS recipe (Riquelme et al. 2018; Chapelle &
    Li 2011): exploration shrinks where data is plentiful and stays wide for
    unfamiliar directions. Each decision draws one head and shows the k best
    tags (a semi-bandit: every shown tag gets its own reward). A uniform
    epsilon mixture (``epsilon_start`` halving every ``epsilon_halflife``
    events, floored at ``epsilon_min``) bounds every candidate's propensity
    away from zero, which off-policy evaluation needs.

    Why this and not SquareCB / epsilon-greedy alone: TS needs no gap or
    schedule tuning beyond the prior, its exploration is posterior-driven
    rather than uniform, and its propensities are estimable in numpy at
    request time. On the synthetic corpus (``simulate --synthetic 2000``;
    figures in the README, "Benchmarks") the k=3 slate already explores
    (slots 2-3 show runners-up), so exploration costs a little online
    precision against pure greedy and buys about as little held-out; it is kept
    because a greedy log has propensities 0/1 (no off-policy evaluation of
    any other policy) and greedy never revisits a tag it once scored low
    (new tags, drift).
"""

from __future__ import annotations

import itertools
import json
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.nn import functional

from recommender.features import (
    N_MATCH_FEATURES,
    ContentFeatures,
    FeatureConfig,
    TagFeatures,
    build_tag_features,
    match_features,
    normalize_tag,
)
from recommender.inference import (
    DEFAULT_BIAS_PRIOR,
    DEFAULT_EMBED_DIM,
    DEFAULT_LINEAR_PRIOR,
    DEFAULT_MATCH_PRIOR,
    DEFAULT_POPULARITY_PRIOR,
    LINEAR_COLUMN,
    N_EXTRA,
    PRIOR_COLUMN,
    TagScorer,
)
from recommender.linear import LinearTerm
from recommender.prior import DEFAULT_PRIOR_HALFLIFE, TagPrior
from recommender.rewards import FeedbackEvent
from recommender.vocabulary import Vocabulary

__all__ = ["Agent", "AgentConfig", "TagModel", "UpdateReport"]

_LOSSES = ("logistic", "squared")
_OPTIMIZERS = ("adagrad", "sgd")


@dataclass(frozen=True)
class AgentConfig:
    """Hyper-parameters. The defaults are the ones tuned in ``simulate`` (see module doc).

    The priors (``match_prior``, ``popularity_prior``, ``bias_prior``) are on the logit
    scale of the logistic loss; with ``loss="squared"`` use reward-scale values, e.g.
    ``(1.0, 0.5)``, ``0.3``, ``0.0`` with ``noise_std=0.5`` and ``learning_rate=0.02``.
    """

    features: FeatureConfig = field(default_factory=FeatureConfig)
    embed_dim: int = DEFAULT_EMBED_DIM
    loss: str = "logistic"
    optimizer: str = "adagrad"
    learning_rate: float = 0.05
    head_learning_rate: float = 0.01
    embedding_l2: float = 1e-4
    tag_init_std: float = 0.12
    steps_per_update: int = 3
    replay_size: int = 30_000
    replay_ratio: float = 1.0
    ips_clip: float | None = None
    prior_precision: float = 1.0
    noise_std: float = 1.0
    exploration_scale: float = 1.0
    posterior_horizon: float = 20_000.0
    epsilon_start: float = 0.05
    epsilon_min: float = 0.01
    epsilon_halflife: float = 3000.0
    mc_samples: int = 32
    match_prior: tuple[float, float] = DEFAULT_MATCH_PRIOR
    popularity_prior: float = DEFAULT_POPULARITY_PRIOR
    bias_prior: float = DEFAULT_BIAS_PRIOR
    prior_halflife: float = DEFAULT_PRIOR_HALFLIFE
    label_negatives: int = 12
    # off by default: on the real catalogues it did not yet beat the model without it
    # on every catalogue (README, "bench_recommender_catalogues --agent linear=true")
    linear: bool = False
    linear_prior: float = DEFAULT_LINEAR_PRIOR
    bilinear_labels: bool = False
    linear_anchor: bool = False
    label_store: int = 5000
    # pseudo-count of the cold/warm gate: content with n feedback events is scored
    # n / (n + cold_gate) by the bandit and the rest by the supervised classifier
    # fitted on the owners' tags (0: the bandit alone, no classifier fitted)
    cold_gate: float = 3.0
    evidence_store: int = 200_000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.loss not in _LOSSES:
            raise ValueError(f"loss must be one of {_LOSSES}")
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {_OPTIMIZERS}")
        if self.embed_dim <= 0 or self.steps_per_update < 0 or self.replay_ratio < 0:
            raise ValueError("embed_dim must be positive, steps/replay_ratio non-negative")
        if self.cold_gate < 0:
            raise ValueError("cold_gate must be non-negative")

    @property
    def fits_classifier(self) -> bool:
        """Whether owner labels are kept to fit the linear term / cold classifier."""
        return self.linear or self.cold_gate > 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["features"] = self.features.to_dict()
        data["match_prior"] = list(self.match_prior)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentConfig:
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known}
        values["features"] = FeatureConfig.from_dict(data.get("features", {}))
        if "match_prior" in values:
            values["match_prior"] = tuple(values["match_prior"])
        return cls(**values)


@dataclass(frozen=True)
class UpdateReport:
    """Result of one ``Agent.update``.

    ``loss``: mean training loss over the gradient steps (new + replayed events).
    ``progressive_loss``: loss on the new events *before* training on them — an
    honest online (out-of-sample) figure to chart.
    """

    events: int
    loss: float
    progressive_loss: float
    seconds: float
    events_seen: int


#: (indices, offsets, values, owner): an EmbeddingBag input plus each entry's bag number.
Bag = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class TagModel(nn.Module):
    """Bilinear two-tower scorer; ``phi`` is the input of the (Bayesian) linear head."""

    def __init__(self, config: AgentConfig) -> None:
        super().__init__()
        d = config.embed_dim
        gen = torch.Generator().manual_seed(config.seed)
        self.content = nn.EmbeddingBag(config.features.content_dim, d, mode="sum")
        self.tag = nn.EmbeddingBag(config.features.tag_dim, d, mode="sum")
        with torch.no_grad():
            self.content.weight.zero_()
            self.tag.weight.normal_(0.0, config.tag_init_std, generator=gen)
        head = [1.0] * d + [
            *config.match_prior, config.popularity_prior, config.linear_prior, config.bias_prior,
        ]  # fmt: skip
        self.head = nn.Parameter(torch.tensor(head, dtype=torch.float32))

    def phi(
        self, content: Bag, tags: Bag, event_content: torch.Tensor, event_tag: torch.Tensor,
        extra: torch.Tensor,
    ) -> torch.Tensor:  # fmt: skip
        """Head inputs for events that index rows of the content and tag bags."""
        u = self.content(content[0], content[1], per_sample_weights=content[2])
        v = self.tag(tags[0], tags[1], per_sample_weights=tags[2])
        return torch.cat([u[event_content] * v[event_tag], extra], dim=1)


@dataclass(eq=False)
class _Record:
    content: ContentFeatures
    tag: TagFeatures
    match: npt.NDArray[np.float32]
    reward: float
    propensity: float


@dataclass
class _Batch:
    content: Bag
    tags: Bag
    event_content: torch.Tensor
    event_tag: torch.Tensor
    extra: torch.Tensor
    target: torch.Tensor
    weight: torch.Tensor


def _bag(items: Sequence[ContentFeatures] | Sequence[TagFeatures]) -> Bag:
    sizes = np.fromiter((it.indices.shape[0] for it in items), dtype=np.int64, count=len(items))
    offsets = np.zeros(len(items), dtype=np.int64)
    if len(items) > 1:
        np.cumsum(sizes[:-1], out=offsets[1:])
    if sizes.sum():
        idx = np.concatenate([it.indices for it in items])
        val = np.concatenate([it.values for it in items])
    else:
        idx, val = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    owner = np.repeat(np.arange(len(items), dtype=np.int64), sizes)
    return (
        torch.from_numpy(idx), torch.from_numpy(offsets), torch.from_numpy(val),
        torch.from_numpy(owner),
    )  # fmt: skip


def _compact(indices: torch.Tensor, marker: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(unique rows, position of each index among them) without sorting the indices.

    ``marker`` is a scratch int64 vector as long as the table; rows come out ascending.
    """
    marker.zero_()
    marker[indices] = 1
    rows = torch.nonzero(marker).flatten()
    marker[rows] = torch.arange(rows.shape[0])
    return rows, marker[indices]


class Agent:
    """Trainable tag policy: ``update`` in the worker, ``export_scorer`` for the API."""

    def __init__(
        self, config: AgentConfig | None = None, vocabulary: Vocabulary | None = None
    ) -> None:
        self.config = config or AgentConfig()
        self.vocabulary = vocabulary if vocabulary is not None else Vocabulary()
        self.model = TagModel(self.config)
        self.content_sum = torch.zeros_like(self.model.content.weight)
        self.tag_sum = torch.zeros_like(self.model.tag.weight)
        self._content_marker = torch.zeros(self.config.features.content_dim, dtype=torch.int64)
        self._tag_marker = torch.zeros(self.config.features.tag_dim, dtype=torch.int64)
        self.head_optimizer = torch.optim.Adam([self.model.head], lr=self.config.head_learning_rate)
        m = self.config.embed_dim + N_EXTRA
        self.gram = np.zeros((m, m), dtype=np.float64)
        self.events_seen = 0
        self.updates = 0
        self.rng = np.random.default_rng(self.config.seed)
        # replay groups: the events of one content from one update (a decision's k tags)
        self._replay: list[tuple[_Record, ...]] = []
        self._replay_records = 0
        self._tag_cache: dict[str, TagFeatures] = {}
        self.prior = TagPrior(self.config.prior_halflife)
        self.linear = LinearTerm.empty()
        # owners' labels kept for refitting the linear term (newest last)
        self.labels: list[tuple[ContentFeatures, frozenset[str]]] = []
        self._linear_stale = False
        #: feedback events per content key (newest last), for the cold/warm gate
        self.evidence: dict[int, float] = {}

    # --- exploration schedule and posterior -----------------------------------------------

    @property
    def epsilon(self) -> float:
        cfg = self.config
        decayed = cfg.epsilon_start * 0.5 ** (self.events_seen / max(cfg.epsilon_halflife, 1e-9))
        return max(cfg.epsilon_min, decayed)

    def posterior_chol(self) -> npt.NDArray[np.float64]:
        """Cholesky factor of the head's posterior covariance sigma^2 (lambda I + A)^-1."""
        cfg = self.config
        m = self.gram.shape[0]
        precision = self.gram + cfg.prior_precision * np.eye(m)
        cov = np.linalg.inv(precision) * cfg.noise_std**2
        cov = 0.5 * (cov + cov.T) + 1e-12 * np.eye(m)
        return np.asarray(np.linalg.cholesky(cov), dtype=np.float64)

    # --- batches ---------------------------------------------------------------------------

    def tag_features(self, tag: str) -> TagFeatures:
        feats = self._tag_cache.get(tag)
        if feats is None:
            feats = build_tag_features(tag, self.config.features)
            self._tag_cache[tag] = feats
        return feats

    def _records(self, events: Sequence[FeedbackEvent]) -> list[_Record]:
        by_content: dict[int, list[int]] = {}
        tags: list[TagFeatures] = []
        for i, ev in enumerate(events):
            if not math.isfinite(ev.reward) or not 0.0 < ev.propensity <= 1.0:
                raise ValueError(f"bad event: reward {ev.reward}, propensity {ev.propensity}")
            tags.append(self.tag_features(normalize_tag(ev.tag)))
            by_content.setdefault(id(ev.content), []).append(i)
        matches: list[npt.NDArray[np.float32]] = [np.zeros(0, np.float32)] * len(events)
        for rows in by_content.values():
            mf = match_features(events[rows[0]].content, [tags[i] for i in rows])
            for j, i in enumerate(rows):
                matches[i] = mf[j]
        return [
            _Record(ev.content, tags[i], matches[i], float(ev.reward), float(ev.propensity))
            for i, ev in enumerate(events)
        ]

    def _batch(self, records: Sequence[_Record]) -> _Batch:
        content_pos: dict[int, int] = {}
        contents: list[ContentFeatures] = []
        tag_pos: dict[str, int] = {}
        tag_list: list[TagFeatures] = []
        ev_c = np.empty(len(records), dtype=np.int64)
        ev_t = np.empty(len(records), dtype=np.int64)
        for i, r in enumerate(records):
            c = content_pos.get(id(r.content))
            if c is None:
                c = content_pos[id(r.content)] = len(contents)
                contents.append(r.content)
            t = tag_pos.get(r.tag.tag)
            if t is None:
                t = tag_pos[r.tag.tag] = len(tag_list)
                tag_list.append(r.tag)
            ev_c[i], ev_t[i] = c, t
        extra = np.empty((len(records), N_EXTRA), dtype=np.float32)
        extra[:, :N_MATCH_FEATURES] = np.stack([r.match for r in records])
        extra[:, PRIOR_COLUMN] = self.prior.column(
            [r.tag.tag for r in records], len(self.vocabulary), logit=self.config.loss == "logistic"
        )
        extra[:, LINEAR_COLUMN] = self._linear_column(records)
        extra[:, N_EXTRA - 1] = 1.0
        target = np.array([r.reward for r in records], dtype=np.float32)
        if self.config.loss == "logistic":
            target = np.clip(target, 0.0, 1.0)
        weight = np.ones(len(records), dtype=np.float32)
        if self.config.ips_clip is not None:
            w = np.minimum(self.config.ips_clip, 1.0 / np.array([r.propensity for r in records]))
            weight = (w / w.mean()).astype(np.float32)
        return _Batch(
            _bag(contents), _bag(tag_list), torch.from_numpy(ev_c), torch.from_numpy(ev_t),
            torch.from_numpy(extra), torch.from_numpy(target), torch.from_numpy(weight),
        )  # fmt: skip

    def _linear_column(self, records: Sequence[_Record]) -> npt.NDArray[np.float64]:
        out = np.zeros(len(records))
        if not self.config.linear or not len(self.linear):
            return out
        per_content: dict[int, npt.NDArray[np.float64]] = {}
        for i, r in enumerate(records):
            pos = self.linear.index.get(r.tag.tag)
            if pos is None:
                continue
            scores = per_content.get(id(r.content))
            if scores is None:
                scores = per_content[id(r.content)] = self.linear.content_scores(r.content)
            out[i] = scores[pos]
        return out

    def _ensure_linear(self) -> None:
        """Refit the linear term if owner labels arrived since the last fit."""
        if self._linear_stale:
            self.fit_linear()

    def fit_linear(self) -> None:
        """Fit the per-tag linear term on the stored owner labels (tuned on a validation
        split); tags are those the labels name."""
        from recommender.supervised import SupervisedModel  # torch: training side only

        self._linear_stale = False
        if not self.config.fits_classifier or len(self.labels) < 2:
            return
        tags = sorted({t for _, lab in self.labels for t in lab})
        # in content-key order (stable: arrival order would make the validation split,
        # and so the chosen penalty, depend on how the labels happened to be batched)
        labels = sorted(self.labels, key=lambda item: item[0].key)
        model = SupervisedModel.tuned(
            [c for c, _ in labels],
            [lab for _, lab in labels],
            tags,
            np.random.default_rng(self.config.seed + 1),
        )
        prior = None
        if self.config.linear_anchor:
            prior = self.prior.column(
                tags, len(self.vocabulary), logit=self.config.loss == "logistic"
            ).astype(np.float64)
        self.linear = model.linear_term(prior)

    def _loss(self, pred: torch.Tensor, batch: _Batch) -> torch.Tensor:
        if self.config.loss == "logistic":
            per = functional.binary_cross_entropy_with_logits(pred, batch.target, reduction="none")
        else:
            per = (pred - batch.target) ** 2
        return torch.sum(batch.weight * per) / torch.sum(batch.weight)

    def _phi(self, batch: _Batch) -> torch.Tensor:
        return self.model.phi(
            batch.content, batch.tags, batch.event_content, batch.event_tag, batch.extra
        )

    # --- training --------------------------------------------------------------------------

    def _sparse_step(
        self, table: torch.Tensor, state: torch.Tensor, rows: torch.Tensor, grad: torch.Tensor
    ) -> None:
        """Row-wise Adagrad (or SGD) on the rows a batch touched."""
        lr = self.config.learning_rate
        if self.config.optimizer == "adagrad":
            state.index_add_(0, rows, grad * grad)
            grad = grad / (state[rows].sqrt_() + 1e-10)
        table.index_add_(0, rows, grad, alpha=-lr)

    @staticmethod
    def _rows_grad(
        bag: Bag, local: torch.Tensor, n_rows: int, grad_out: torch.Tensor
    ) -> torch.Tensor:
        """d loss / d table rows for ``out[b] = sum_{entries e of b} value_e * row[local_e]``.

        That is ``X^T grad_out`` with X the (bags x rows) design matrix. X^T is built
        as CSR with a counting (radix) sort of the row numbers, then one sparse-dense
        product: ~3x faster than gathering and index_add-ing every entry.
        """
        loc = local.numpy()
        key = loc.astype(np.uint16) if n_rows <= 1 << 16 else loc
        order = np.argsort(key, kind="stable")
        crow = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(loc, minlength=n_rows), out=crow[1:])
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            x_t = torch.sparse_csr_tensor(
                torch.from_numpy(crow),
                torch.from_numpy(bag[3].numpy()[order]),
                torch.from_numpy(bag[2].numpy()[order]),
                size=(n_rows, grad_out.shape[0]),
                check_invariants=False,
            )
            return torch.sparse.mm(x_t, grad_out)

    def _train_step(self, batch: _Batch) -> float:
        """One step. Embedding gradients are formed by hand on the touched rows only
        (autograd's embedding_bag backward sorts every index: 3x slower here)."""
        cfg = self.config
        content_w = self.model.content.weight.detach()
        tag_w = self.model.tag.weight.detach()
        c_rows, c_local = _compact(batch.content[0], self._content_marker)
        t_rows, t_local = _compact(batch.tags[0], self._tag_marker)
        c_bag, t_bag = batch.content, batch.tags
        u = functional.embedding_bag(
            c_local, content_w[c_rows], c_bag[1], mode="sum", per_sample_weights=c_bag[2]
        ).requires_grad_(True)
        v = functional.embedding_bag(
            t_local, tag_w[t_rows], t_bag[1], mode="sum", per_sample_weights=t_bag[2]
        ).requires_grad_(True)
        phi = torch.cat([u[batch.event_content] * v[batch.event_tag], batch.extra], dim=1)
        loss = self._loss(phi @ self.model.head, batch)
        reg = cfg.embedding_l2 * (u.pow(2).sum(1).mean() + v.pow(2).sum(1).mean())
        self.head_optimizer.zero_grad(set_to_none=True)
        (loss + reg).backward()
        with torch.no_grad():
            if u.grad is not None:
                grad = self._rows_grad(c_bag, c_local, c_rows.shape[0], u.grad)
                self._sparse_step(self.model.content.weight, self.content_sum, c_rows, grad)
            if v.grad is not None:
                grad = self._rows_grad(t_bag, t_local, t_rows.shape[0], v.grad)
                self._sparse_step(self.model.tag.weight, self.tag_sum, t_rows, grad)
        self.head_optimizer.step()
        return float(loss.detach())

    def update(self, events: Sequence[FeedbackEvent]) -> UpdateReport:
        """Train on a batch of per-tag feedback events; returns losses and timing.

        Events of one content object within the batch are one answered decision
        for the tag prior.
        """
        self._ensure_linear()
        report = self._train(events)
        decisions: dict[int, list[FeedbackEvent]] = {}
        for ev in events:
            decisions.setdefault(id(ev.content), []).append(ev)
            self.vocabulary.observe_feedback(ev.tag, ev.reward)
            key = ev.content.key
            if key:
                self.evidence[key] = self.evidence.pop(key, 0.0) + 1.0
        excess = len(self.evidence) - self.config.evidence_store
        if excess > 0:  # forget the contents that had feedback longest ago
            for key in list(itertools.islice(self.evidence, excess)):
                del self.evidence[key]
        for group in decisions.values():
            self.prior.observe_decision(
                [normalize_tag(ev.tag) for ev in group],
                [ev.reward for ev in group],
                [ev.propensity for ev in group],
            )
        return report

    def learn_labels(
        self, labelled: Sequence[tuple[ContentFeatures, Sequence[str]]], *, count: bool = True
    ) -> UpdateReport:
        """Train on contents with their owners' tags (full-information labels).

        Each tag is a positive (propensity 1); ``label_negatives`` other vocabulary
        tags drawn uniformly are negatives. With ``count`` the tags join the
        vocabulary as user tags and the prior counts each content once (pass
        ``count=False`` when training on the same contents again).
        """
        events: list[FeedbackEvent] = []
        for content, raw_tags in labelled:
            tags = [t for t in dict.fromkeys(normalize_tag(x) for x in raw_tags) if t]
            if not tags:
                continue
            if count:
                self.vocabulary.add_user_tags(tags)
                self.prior.observe_labels(tags)
                if self.config.fits_classifier:
                    self.labels.append((content, frozenset(tags)))
                    self._linear_stale = True
            if self.config.linear and not self.config.bilinear_labels:
                continue
            events.extend(FeedbackEvent(content, t, 1.0, 1.0) for t in tags)
            for t in self._negatives(set(tags)):
                events.append(FeedbackEvent(content, t, 0.0, 1.0))
        if len(self.labels) > self.config.label_store:
            del self.labels[: len(self.labels) - self.config.label_store]
        return self._train(events)

    def _negatives(self, positives: set[str]) -> list[str]:
        vocab = self.vocabulary.tags()
        n = min(self.config.label_negatives, len(vocab) - len(positives))
        if n <= 0:
            return []
        out: list[str] = []
        # rejection sampling: positives are a handful out of the vocabulary
        for i in self.rng.integers(0, len(vocab), size=4 * n + 8):
            tag = vocab[int(i)]
            if tag not in positives and tag not in out:
                out.append(tag)
                if len(out) == n:
                    break
        return out

    def _train(self, events: Sequence[FeedbackEvent]) -> UpdateReport:
        start = time.perf_counter()
        cfg = self.config
        if not events:
            return UpdateReport(0, 0.0, 0.0, 0.0, self.events_seen)
        records = self._records(events)
        new_batch = self._batch(records)
        with torch.no_grad():
            progressive = float(self._loss(self._phi(new_batch) @ self.model.head, new_batch))
        losses = []
        n_replay = round(cfg.replay_ratio * len(records))
        for _ in range(cfg.steps_per_update):
            if n_replay and self._replay:
                batch = self._batch([*records, *self._sample_replay(n_replay)])
            else:
                batch = new_batch
            losses.append(self._train_step(batch))
        self._update_posterior(new_batch)
        self._remember(records)
        self.events_seen += len(records)
        self.updates += 1
        return UpdateReport(
            events=len(records),
            loss=float(np.mean(losses)) if losses else progressive,
            progressive_loss=progressive,
            seconds=time.perf_counter() - start,
            events_seen=self.events_seen,
        )

    def _update_posterior(self, batch: _Batch) -> None:
        cfg = self.config
        with torch.no_grad():
            phi = self._phi(batch).numpy().astype(np.float64)
        if cfg.loss == "logistic":
            # Laplace approximation: the logistic likelihood's curvature p(1 - p)
            head = self.model.head.detach().numpy().astype(np.float64)
            p = 1.0 / (1.0 + np.exp(-np.clip(phi @ head, -30.0, 30.0)))
            phi = phi * np.sqrt(p * (1.0 - p))[:, None]
        self.gram *= math.exp(-phi.shape[0] / max(cfg.posterior_horizon, 1.0))
        self.gram += phi.T @ phi

    def _remember(self, records: Sequence[_Record]) -> None:
        groups: dict[int, list[_Record]] = {}
        for r in records:
            groups.setdefault(id(r.content), []).append(r)
        self._replay.extend(tuple(g) for g in groups.values())
        self._replay_records += len(records)
        cap = self.config.replay_size
        if self._replay_records > cap:
            # drop the oldest groups, at least a tenth at a time (amortised O(1))
            drop, dropped = 0, 0
            while drop < len(self._replay) and (
                self._replay_records - dropped > cap or drop < len(self._replay) // 10
            ):
                dropped += len(self._replay[drop])
                drop += 1
            del self._replay[:drop]
            self._replay_records -= dropped

    def _sample_replay(self, n_records: int) -> list[_Record]:
        """Whole groups (all tags shown for a content together), about ``n_records`` events.

        Sampling by content rather than by event keeps the number of distinct
        contents per step, and so the embedding rows touched, about 3x lower.
        """
        mean_group = self._replay_records / max(len(self._replay), 1)
        n_groups = max(1, math.ceil(n_records / mean_group))
        picks = self.rng.integers(0, len(self._replay), size=n_groups)
        return [r for i in picks for r in self._replay[i]]

    # --- scoring and export ----------------------------------------------------------------

    def scores(self, content: ContentFeatures, tags: Sequence[str]) -> npt.NDArray[np.float64]:
        """Posterior-mean scores from the torch model (the reference for the numpy export)."""
        if not tags:
            return np.zeros(0)
        self._ensure_linear()
        feats = [self.tag_features(normalize_tag(t)) for t in tags]
        mf = match_features(content, feats)
        batch = self._batch([_Record(content, f, mf[i], 0.0, 1.0) for i, f in enumerate(feats)])
        with torch.no_grad():
            return (self._phi(batch) @ self.model.head).numpy().astype(np.float64)

    def export_scorer(self) -> bytes:
        """The compact numpy export read by ``inference.TagScorer.from_bytes``."""
        cfg = self.config
        self._ensure_linear()
        with torch.no_grad():
            content_w = self.model.content.weight.detach()
            rows = torch.nonzero(content_w.abs().sum(dim=1) > 0).flatten()
            tag_w = self.model.tag.weight.detach()
            tag_rows = torch.nonzero(tag_w.abs().sum(dim=1) > 0).flatten()
            head = self.model.head.detach().numpy().astype(np.float64)
            content_table = content_w[rows].numpy()
            tag_table = tag_w[tag_rows].numpy()
        meta = {
            "features": cfg.features.to_dict(),
            "embed_dim": cfg.embed_dim,
            "loss": cfg.loss,
            "epsilon": self.epsilon,
            "exploration_scale": cfg.exploration_scale,
            "mc_samples": cfg.mc_samples,
            "events_seen": self.events_seen,
            "updates": self.updates,
            "cold_gate": cfg.cold_gate,
            "linear_head": cfg.linear,
        }
        vocab_tags = self.vocabulary.tags()
        logits, meta["unseen_prior"] = self.prior.table(vocab_tags, logit=cfg.loss == "logistic")
        return TagScorer.write_bytes(
            meta=meta,
            content_rows=rows.numpy().astype(np.int64),
            content_table=content_table,
            tag_rows=tag_rows.numpy().astype(np.int64),
            tag_table=tag_table,
            head_mean=head,
            head_chol=self.posterior_chol(),
            vocabulary_counts=self.vocabulary.counts(),
            tag_prior=dict(zip(vocab_tags, logits.tolist(), strict=True)),
            linear=self.linear,
            evidence=self.evidence,
        )

    def scorer(self) -> TagScorer:
        """Export and load in one go (tests, simulator)."""
        return TagScorer.from_bytes(self.export_scorer())

    # --- state (``checkpoint`` wraps this with a format number) ----------------------------

    def state(self) -> dict[str, Any]:
        """Everything needed to resume training (the replay buffer is not kept)."""
        return {
            "config": json.dumps(self.config.to_dict()),
            "vocabulary": self.vocabulary.to_json(),
            "prior": self.prior.to_json(),
            "model": self.model.state_dict(),
            "content_sum": self.content_sum.clone(),
            "tag_sum": self.tag_sum.clone(),
            "head_optimizer": self.head_optimizer.state_dict(),
            "gram": torch.from_numpy(self.gram.copy()),
            "events_seen": self.events_seen,
            "updates": self.updates,
            "rng": json.dumps(self.rng.bit_generator.state),
            "linear_columns": torch.from_numpy(self.linear.columns.copy()),
            "linear_weight": torch.from_numpy(self.linear.weight.copy()),
            "linear_tags": json.dumps(self.linear.tags),
            "linear_offset": torch.from_numpy(self.linear.offset.copy()),
            "linear_bias": torch.from_numpy(self.linear.bias.copy()),
            "evidence_keys": torch.from_numpy(
                np.fromiter(self.evidence, dtype=np.uint64).view(np.int64)
            ),
            "evidence_counts": torch.tensor(list(self.evidence.values()), dtype=torch.float64),
            "linear_stale": self._linear_stale,
            **_labels_state(self.labels),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Agent:
        config = AgentConfig.from_dict(json.loads(state["config"]))
        agent = cls(config, Vocabulary.from_json(state["vocabulary"]))
        if "prior" in state:
            agent.prior = TagPrior.from_json(state["prior"])
        model_state = dict(state["model"])
        head = model_state["head"]
        if head.shape[0] == agent.model.head.shape[0] - 1:
            # a checkpoint from before the linear column: insert it, weight linear_prior
            model_state["head"] = torch.cat(
                [head[:-1], torch.tensor([config.linear_prior]), head[-1:]]
            )
        agent.model.load_state_dict(model_state)
        agent.content_sum = state["content_sum"].clone()
        agent.tag_sum = state["tag_sum"].clone()
        agent.head_optimizer.load_state_dict(state["head_optimizer"])
        gram = state["gram"].numpy().astype(np.float64)
        m = agent.gram.shape[0]
        if gram.shape[0] == m - 1:  # before the linear column: no statistics for it yet
            gram = np.insert(np.insert(gram, m - 2, 0.0, axis=0), m - 2, 0.0, axis=1)
        agent.gram = gram.copy()
        agent.events_seen = int(state["events_seen"])
        agent.updates = int(state["updates"])
        agent.rng.bit_generator.state = json.loads(state["rng"])
        if "linear_tags" in state:
            agent.linear = LinearTerm(
                state["linear_columns"].numpy().astype(np.int64),
                state["linear_weight"].numpy().astype(np.float32),
                json.loads(state["linear_tags"]),
                state["linear_offset"].numpy().astype(np.float32),
                state["linear_bias"].numpy().astype(np.float32) if "linear_bias" in state else None,
            )
            agent._linear_stale = bool(state["linear_stale"])
            agent.labels = _labels_from_state(state, config)
        if "evidence_keys" in state:
            keys = state["evidence_keys"].numpy().astype(np.int64).view(np.uint64).tolist()
            counts = state["evidence_counts"].numpy().tolist()
            agent.evidence = dict(zip(keys, counts, strict=True))
        return agent


def _labels_state(labels: Sequence[tuple[ContentFeatures, frozenset[str]]]) -> dict[str, Any]:
    """The stored owner labels as flat tensors (the fit needs indices and values only)."""
    sizes = [c.indices.shape[0] for c, _ in labels]
    idx = np.concatenate([c.indices for c, _ in labels]) if labels else np.zeros(0, np.int64)
    val = np.concatenate([c.values for c, _ in labels]) if labels else np.zeros(0, np.float32)
    return {
        "label_sizes": torch.tensor(sizes, dtype=torch.int64),
        "label_indices": torch.from_numpy(idx.astype(np.int64)),
        "label_values": torch.from_numpy(val.astype(np.float32)),
        "label_tags": json.dumps([sorted(lab) for _, lab in labels]),
    }


def _labels_from_state(
    state: dict[str, Any], config: AgentConfig
) -> list[tuple[ContentFeatures, frozenset[str]]]:
    sizes = state["label_sizes"].numpy()
    idx = state["label_indices"].numpy()
    val = state["label_values"].numpy()
    tags = json.loads(state["label_tags"])
    out: list[tuple[ContentFeatures, frozenset[str]]] = []
    none = np.zeros(0, dtype=np.uint64)
    start = 0
    for size, lab in zip(sizes.tolist(), tags, strict=True):
        content = ContentFeatures(
            idx[start : start + size].copy(), val[start : start + size].copy(), none, none,
            config.features,
        )  # fmt: skip
        out.append((content, frozenset(lab)))
        start += size
    return out
