"""The contextual-bandit tag agent (PyTorch; runs in the training worker only).

Model
    A two-tower bilinear scorer with a linear head over a small "neural-linear"
    feature vector::

        u(x) = EmbeddingBag_content(hashed content features)     (d)
        v(a) = EmbeddingBag_tag(hashed tag id, words, char grams) (d)
        phi(x, a) = [u * v, word_match, gram_match, popularity, 1]
        score(x, a) = phi . theta          (expected reward of showing tag a)

    The tag tower makes tags actions *with features*: a tag never trained on
    still gets ``v(a)`` from its words and grams, and the match/popularity
    columns give it a sensible score from day one. The content table starts
    at zero, so an untrained agent *is* the cold-start policy (popularity +
    text similarity, with prior weights ``match_prior``/``popularity_prior``);
    the tag table starts random so gradients flow.

Training
    ``update(events)`` takes per-tag feedback events (see ``rewards``) and
    minimises squared error between score and reward (a regression oracle, as
    in SquareCB). Each update runs ``steps_per_update`` gradient steps on the
    new events plus an equal-sized sample from a replay buffer (recent events
    keep being reused, which is what makes it sample-efficient). Optional
    clipped, self-normalised importance weights ``min(clip, 1/propensity)``
    reweight towards what a uniform logger would have seen; they are off by
    default because a reward *regression* is consistent under any logging
    policy that gives the pair support, and in the simulator the weights only
    added variance (see the report in ``simulate``).

Exploration: Thompson sampling on the linear head
    The head is treated as Bayesian linear regression on ``phi`` with the
    network's (SGD-trained, MAP) head as mean and covariance
    ``sigma^2 (lambda I + A)^-1``, ``A = sum phi phi^T`` accumulated with an
    exponential forgetting factor (the representation keeps moving, so old
    outer products go stale). This is the Laplace/neural-linear recipe (Chapelle
    & Li 2011; Riquelme et al. 2018): principled, posterior-driven exploration
    that shrinks where data is plentiful and stays wide for unfamiliar
    directions (new tags, unusual content). k tags are shown per decision from
    one posterior draw (a semi-bandit: each shown tag gets its own reward). A
    decaying uniform epsilon mixture (``epsilon_start`` halving every
    ``epsilon_halflife`` events, floored at ``epsilon_min``) keeps every
    candidate's propensity bounded away from zero for off-policy evaluation.
    Sampling and propensities run in numpy in the API (``inference.TagScorer``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from recommender.features import (
    N_MATCH_FEATURES,
    ContentFeatures,
    FeatureConfig,
    TagFeatures,
    build_tag_features,
    match_features,
    normalize_tag,
)
from recommender.inference import N_EXTRA, TagScorer, popularity_vector
from recommender.rewards import FeedbackEvent
from recommender.vocabulary import Vocabulary

__all__ = ["Agent", "AgentConfig", "TagModel", "UpdateReport"]


@dataclass(frozen=True)
class AgentConfig:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    embed_dim: int = 32
    loss: str = "squared"  # "squared" | "logistic"
    optimizer: str = "adagrad"  # "adagrad" | "sgd" | "adam"
    learning_rate: float = 0.1
    head_learning_rate: float = 0.01
    embedding_l2: float = 1e-4
    tag_init_std: float = 0.12
    steps_per_update: int = 2
    replay_size: int = 30_000
    replay_ratio: float = 1.0
    ips_clip: float | None = None
    prior_precision: float = 1.0
    noise_std: float = 0.5
    exploration_scale: float = 1.0
    posterior_horizon: float = 20_000.0
    epsilon_start: float = 0.1
    epsilon_min: float = 0.02
    epsilon_halflife: float = 3000.0
    mc_samples: int = 32
    match_prior: tuple[float, float] = (1.0, 0.5)
    popularity_prior: float = 0.3
    bias_prior: float = 0.0
    seed: int = 0

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

    ``loss``: mean weighted squared error over the gradient steps (training loss).
    ``progressive_loss``: error on the new events *before* training on them — an
    honest online (out-of-sample) loss.
    """

    events: int
    loss: float
    progressive_loss: float
    seconds: float
    events_seen: int


class TagModel(nn.Module):
    """Bilinear two-tower scorer; ``phi`` is the input of the (Bayesian) linear head."""

    def __init__(self, config: AgentConfig) -> None:
        super().__init__()
        d = config.embed_dim
        gen = torch.Generator().manual_seed(config.seed)
        self.content = nn.EmbeddingBag(config.features.content_dim, d, mode="sum", sparse=True)
        self.tag = nn.EmbeddingBag(config.features.tag_dim, d, mode="sum", sparse=True)
        with torch.no_grad():
            self.content.weight.zero_()
            self.tag.weight.normal_(0.0, config.tag_init_std, generator=gen)
        head = [1.0] * d + [*config.match_prior, config.popularity_prior, config.bias_prior]
        self.head = nn.Parameter(torch.tensor(head, dtype=torch.float32))

    def phi(
        self,
        content: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        tags: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        event_content: torch.Tensor,
        event_tag: torch.Tensor,
        extra: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (phi, u, v) for events indexing rows of the unique content/tag bags."""
        idx, off, w = content
        u = self.content(idx, off, per_sample_weights=w)
        tidx, toff, tw = tags
        v = self.tag(tidx, toff, per_sample_weights=tw)
        phi = torch.cat([u[event_content] * v[event_tag], extra], dim=1)
        return phi, u, v


@dataclass(eq=False)
class _Record:
    content: ContentFeatures
    tag: TagFeatures
    match: npt.NDArray[np.float32]
    reward: float
    propensity: float


def _bag(
    items: Sequence[ContentFeatures | TagFeatures],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    sizes = [it.indices.shape[0] for it in items]
    offsets = np.zeros(len(items), dtype=np.int64)
    if len(items) > 1:
        np.cumsum(sizes[:-1], out=offsets[1:])
    if sum(sizes):
        idx = np.concatenate([it.indices for it in items])
        val = np.concatenate([it.values for it in items])
    else:
        idx, val = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    return torch.from_numpy(idx), torch.from_numpy(offsets), torch.from_numpy(val)


class Agent:
    """Trainable tag policy. ``update`` in the worker, ``export_scorer`` for the API."""

    def __init__(self, config: AgentConfig | None = None, vocabulary: Vocabulary | None = None):
        self.config = config or AgentConfig()
        self.vocabulary = vocabulary if vocabulary is not None else Vocabulary()
        self.model = TagModel(self.config)
        self._build_optimizers()
        m = self.config.embed_dim + N_EXTRA
        self.gram = np.zeros((m, m), dtype=np.float64)
        self.events_seen = 0
        self.updates = 0
        self.rng = np.random.default_rng(self.config.seed)
        self._replay: list[_Record] = []
        self._replay_pos = 0
        self._tag_cache: dict[str, TagFeatures] = {}

    def _build_optimizers(self) -> None:
        cfg = self.config
        sparse_params = [self.model.content.weight, self.model.tag.weight]
        self.sparse_optimizer: torch.optim.Optimizer
        if cfg.optimizer == "adagrad":
            self.sparse_optimizer = torch.optim.Adagrad(sparse_params, lr=cfg.learning_rate)
        elif cfg.optimizer == "sgd":
            self.sparse_optimizer = torch.optim.SGD(sparse_params, lr=cfg.learning_rate)
        elif cfg.optimizer == "adam":
            self.sparse_optimizer = torch.optim.SparseAdam(sparse_params, lr=cfg.learning_rate)
        else:
            raise ValueError(f"unknown optimizer {cfg.optimizer!r}")
        self.head_optimizer = torch.optim.Adam([self.model.head], lr=cfg.head_learning_rate)

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

    # --- features --------------------------------------------------------------------------

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

    def _tensors(
        self, records: Sequence[_Record]
    ) -> tuple[
        tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        torch.Tensor,
        torch.Tensor,
        torch.Tensor,
    ]:
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
        counts = self.vocabulary.counts()
        pop = popularity_vector([r.tag.tag for r in records], counts)
        extra = np.empty((len(records), N_EXTRA), dtype=np.float32)
        extra[:, :N_MATCH_FEATURES] = np.stack([r.match for r in records])
        extra[:, N_MATCH_FEATURES] = pop
        extra[:, N_MATCH_FEATURES + 1] = 1.0
        return (
            _bag(contents),
            _bag(tag_list),
            torch.from_numpy(ev_c),
            torch.from_numpy(ev_t),
            torch.from_numpy(extra),
        )

    def _loss(self, pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        if self.config.loss == "logistic":
            per = nn.functional.binary_cross_entropy_with_logits(
                pred, target.clamp(0.0, 1.0), reduction="none"
            )
        else:
            per = (pred - target) ** 2
        return torch.sum(weights * per) / torch.sum(weights)

    def _weights(self, records: Sequence[_Record]) -> torch.Tensor:
        clip = self.config.ips_clip
        if clip is None:
            return torch.ones(len(records))
        w = np.array([min(clip, 1.0 / max(r.propensity, 1e-12)) for r in records])
        return torch.from_numpy((w / w.mean()).astype(np.float32))

    def _phi(self, records: Sequence[_Record]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        content, tags, ev_c, ev_t, extra = self._tensors(records)
        return self.model.phi(content, tags, ev_c, ev_t, extra)

    # --- training --------------------------------------------------------------------------

    def update(self, events: Sequence[FeedbackEvent]) -> UpdateReport:
        """Train on a batch of per-tag feedback events; returns losses and timing."""
        start = time.perf_counter()
        cfg = self.config
        if not events:
            return UpdateReport(0, 0.0, 0.0, 0.0, self.events_seen)
        records = self._records(events)
        rewards_new = torch.tensor([r.reward for r in records], dtype=torch.float32)
        with torch.no_grad():
            phi_new, _, _ = self._phi(records)
            progressive = float(
                self._loss(phi_new @ self.model.head, rewards_new, torch.ones(len(records)))
            )
        losses = []
        n_replay = round(cfg.replay_ratio * len(records))
        for _ in range(cfg.steps_per_update):
            batch = list(records)
            if n_replay and self._replay:
                picks = self.rng.integers(0, len(self._replay), size=n_replay)
                batch.extend(self._replay[i] for i in picks)
            target = torch.tensor([r.reward for r in batch], dtype=torch.float32)
            weights = self._weights(batch)
            phi, u, v = self._phi(batch)
            loss = self._loss(phi @ self.model.head, target, weights)
            reg = cfg.embedding_l2 * (u.pow(2).sum(1).mean() + v.pow(2).sum(1).mean())
            self.sparse_optimizer.zero_grad(set_to_none=True)
            self.head_optimizer.zero_grad(set_to_none=True)
            (loss + reg).backward()
            self.sparse_optimizer.step()
            self.head_optimizer.step()
            losses.append(float(loss.detach()))
        with torch.no_grad():
            phi_post, _, _ = self._phi(records)
        phi_np = phi_post.numpy().astype(np.float64)
        if cfg.loss == "logistic":
            # Laplace approximation: the logistic likelihood's curvature p(1 - p)
            p = 1.0 / (1.0 + np.exp(-(phi_np @ self.model.head.detach().numpy())))
            phi_np = phi_np * np.sqrt(p * (1.0 - p))[:, None]
        decay = math.exp(-len(records) / max(cfg.posterior_horizon, 1.0))
        self.gram *= decay
        self.gram += phi_np.T @ phi_np
        for ev in events:
            self.vocabulary.observe_feedback(ev.tag, ev.reward)
        self._remember(records)
        self.events_seen += len(records)
        self.updates += 1
        return UpdateReport(
            events=len(records),
            loss=float(np.mean(losses)) if losses else 0.0,
            progressive_loss=progressive,
            seconds=time.perf_counter() - start,
            events_seen=self.events_seen,
        )

    def _remember(self, records: Sequence[_Record]) -> None:
        cap = self.config.replay_size
        for r in records:
            if len(self._replay) < cap:
                self._replay.append(r)
            else:
                self._replay[self._replay_pos] = r
                self._replay_pos = (self._replay_pos + 1) % cap

    # --- scoring and export ----------------------------------------------------------------

    def scores(self, content: ContentFeatures, tags: Sequence[str]) -> npt.NDArray[np.float64]:
        """Posterior-mean scores computed by the torch model (reference for the export)."""
        if not tags:
            return np.zeros(0)
        names = [normalize_tag(t) for t in tags]
        feats = [self.tag_features(t) for t in names]
        mf = match_features(content, feats)
        records = [_Record(content, f, mf[i], 0.0, 1.0) for i, f in enumerate(feats)]
        with torch.no_grad():
            phi, _, _ = self._phi(records)
            return (phi @ self.model.head).numpy().astype(np.float64)

    def export_scorer(self) -> bytes:
        """The compact numpy export read by ``inference.TagScorer.from_bytes``."""
        cfg = self.config
        with torch.no_grad():
            content_w = self.model.content.weight.detach()
            rows = torch.nonzero(content_w.abs().sum(dim=1) > 0).flatten()
            content_rows = rows.numpy().astype(np.int64)
            content_table = content_w[rows].numpy()
            tag_w = self.model.tag.weight.detach()
            tag_rows_t = torch.nonzero(tag_w.abs().sum(dim=1) > 0).flatten()
            tag_rows = tag_rows_t.numpy().astype(np.int64)
            tag_table = tag_w[tag_rows_t].numpy()
            head = self.model.head.detach().numpy().astype(np.float64)
        meta = {
            "features": cfg.features.to_dict(),
            "embed_dim": cfg.embed_dim,
            "epsilon": self.epsilon,
            "exploration_scale": cfg.exploration_scale,
            "mc_samples": cfg.mc_samples,
            "events_seen": self.events_seen,
            "updates": self.updates,
        }
        return TagScorer.write_bytes(
            meta=meta,
            content_rows=content_rows,
            content_table=content_table,
            tag_rows=tag_rows,
            tag_table=tag_table,
            head_mean=head,
            head_chol=self.posterior_chol(),
            vocabulary_counts=self.vocabulary.counts(),
        )

    def scorer(self) -> TagScorer:
        return TagScorer.from_bytes(self.export_scorer())

    # --- state (checkpoint.py wraps this with a format number) --------------------------------

    def state(self) -> dict[str, Any]:
        """Everything needed to resume training (the replay buffer is not kept)."""
        return {
            "config": json.dumps(self.config.to_dict()),
            "vocabulary": self.vocabulary.to_json(),
            "model": self.model.state_dict(),
            "sparse_optimizer": self.sparse_optimizer.state_dict(),
            "head_optimizer": self.head_optimizer.state_dict(),
            "gram": torch.from_numpy(self.gram.copy()),
            "events_seen": self.events_seen,
            "updates": self.updates,
            "rng": json.dumps(self.rng.bit_generator.state),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Agent:
        config = AgentConfig.from_dict(json.loads(state["config"]))
        agent = cls(config, Vocabulary.from_json(state["vocabulary"]))
        agent.model.load_state_dict(state["model"])
        agent.sparse_optimizer.load_state_dict(state["sparse_optimizer"])
        agent.head_optimizer.load_state_dict(state["head_optimizer"])
        agent.gram = state["gram"].numpy().astype(np.float64).copy()
        agent.events_seen = int(state["events_seen"])
        agent.updates = int(state["updates"])
        agent.rng.bit_generator.state = json.loads(state["rng"])
        return agent

    def with_config(self, **changes: Any) -> AgentConfig:
        """A copy of the config with changes (for experiments)."""
        return replace(self.config, **changes)
