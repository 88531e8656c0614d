"""The full-information supervised tag model: one-vs-rest logistic regression.

Used twice: as the simulator's reference (the bound the agent must meet) and by the
agent itself, whose per-tag linear term (``recommender.linear``) is this model's
content weights fitted on the owners' tags. Training only (imports torch).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from recommender.features import ContentFeatures
from recommender.linear import LinearTerm

__all__ = ["SupervisedModel", "label_precision", "precision"]


def precision(shown: Sequence[str], truth: frozenset[str]) -> tuple[float, float]:
    if not shown:
        return 0.0, 0.0
    hits = sum(t in truth for t in shown)
    return float(shown[0] in truth), hits / len(shown)


class SupervisedModel:
    """One-vs-rest logistic regression on the content features: the full-information
    reference. Columns are compacted to the features seen in training; full-batch
    Adam on a sparse design matrix; the per-tag bias starts at the tag's log-odds
    (so an untrained model is the popularity ranking). ``l2`` is a penalty on the
    mean per-entry loss; ``tuned`` picks it and the number of epochs on a
    validation split of the training items."""

    def __init__(
        self,
        features: Sequence[ContentFeatures],
        labels: Sequence[frozenset[str]],
        tags: Sequence[str],
        *,
        epochs: int = 40,
        lr: float = 0.1,
        l2: float = 0.0,
        evaluate: tuple[Sequence[ContentFeatures], Sequence[frozenset[str]], Sequence[int]]
        | None = None,
    ) -> None:
        self.tags = list(tags)
        self.l2 = l2
        self.epochs = epochs
        col = {t: i for i, t in enumerate(self.tags)}
        all_idx = np.concatenate([f.indices for f in features])
        self.columns = np.unique(all_idx)
        x = self._design(features)
        y = torch.zeros(len(features), len(self.tags))
        for i, lab in enumerate(labels):
            for t in lab:
                if t in col:
                    y[i, col[t]] = 1.0
        rate = (y.sum(0) + 0.5) / (len(features) + 1.0)
        self.weight = torch.zeros(self.columns.shape[0], len(self.tags), requires_grad=True)
        self.bias = torch.log(rate / (1 - rate)).requires_grad_(True)
        #: (epochs, P@1, P@3) on ``evaluate`` at the requested epoch counts
        self.curve: list[tuple[int, float, float]] = []
        eval_x = self._design(evaluate[0]) if evaluate else None
        optim = torch.optim.Adam([self.weight, self.bias], lr=lr)
        for epoch in range(1, epochs + 1):
            optim.zero_grad()
            logits = torch.sparse.mm(x, self.weight) + self.bias
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
            if l2:
                loss = loss + l2 * self.weight.pow(2).sum()
            loss.backward()
            optim.step()
            if evaluate is not None and eval_x is not None and epoch in evaluate[2]:
                ranked = self._rank_design(eval_x, 3)
                p1, p3 = label_precision(ranked, evaluate[1])
                self.curve.append((epoch, p1, p3))

    @classmethod
    def tuned(
        cls,
        features: Sequence[ContentFeatures],
        labels: Sequence[frozenset[str]],
        tags: Sequence[str],
        rng: np.random.Generator,
        *,
        l2_grid: Sequence[float] = (0.0, 1e-6, 1e-5, 1e-4, 1e-3),
        epoch_grid: Sequence[int] = (5, 10, 20, 40, 80, 160),
        validation: float = 0.2,
    ) -> SupervisedModel:
        """Choose (l2, epochs) by validation P@1 (then P@3), refit on every item."""
        order = rng.permutation(len(features))
        n_val = max(1, round(validation * len(features)))
        val, fit = order[:n_val], order[n_val:]
        best: tuple[float, float, float, int] | None = None
        for l2 in l2_grid:
            model = cls(
                [features[i] for i in fit],
                [labels[i] for i in fit],
                tags,
                epochs=max(epoch_grid),
                l2=l2,
                evaluate=([features[i] for i in val], [labels[i] for i in val], epoch_grid),
            )
            for epochs, p1, p3 in model.curve:
                # ties go to the stronger penalty and fewer epochs (simpler model)
                key = (p1, p3, l2, -epochs)
                if best is None or key > best:
                    best = key
        assert best is not None
        return cls(features, labels, tags, epochs=-int(best[3]), l2=best[2])

    def _design(self, features: Sequence[ContentFeatures]) -> torch.Tensor:
        idx = np.concatenate([f.indices for f in features])
        val = np.concatenate([f.values for f in features])
        pos = np.minimum(np.searchsorted(self.columns, idx), self.columns.shape[0] - 1)
        val = np.where(self.columns[pos] == idx, val, 0.0).astype(np.float32)
        rows = np.repeat(np.arange(len(features)), [f.nnz for f in features])
        indices = torch.from_numpy(np.stack([rows, pos]).astype(np.int64))
        size = (len(features), self.columns.shape[0])
        return torch.sparse_coo_tensor(
            indices, torch.from_numpy(val), size, check_invariants=False
        ).coalesce()

    def _rank_design(self, x: torch.Tensor, k: int) -> list[list[str]]:
        with torch.no_grad():
            logits = (torch.sparse.mm(x, self.weight) + self.bias).numpy()
        order = np.argsort(-logits, axis=1, kind="stable")[:, :k]
        return [[self.tags[j] for j in row] for row in order]

    def linear_term(self, prior: np.ndarray | None = None) -> LinearTerm:
        """The content weights for the agent's score; with ``prior`` (the agent's prior
        logit per tag) the per-tag bias is kept as its difference to that prior."""
        with torch.no_grad():
            weight = self.weight.detach().numpy().astype(np.float32)
            bias = self.bias.detach().numpy().astype(np.float64)
        offset = None if prior is None else (bias - prior).astype(np.float32)
        return LinearTerm(
            self.columns.astype(np.int64), weight, self.tags, offset, bias.astype(np.float32)
        )

    def rank(self, features: Sequence[ContentFeatures], k: int) -> list[list[str]]:
        return self._rank_design(self._design(features), k)


def label_precision(
    ranked: Sequence[Sequence[str]], labels: Sequence[frozenset[str]]
) -> tuple[float, float]:
    pairs = [precision(list(r), lab) for r, lab in zip(ranked, labels, strict=True)]
    return float(np.mean([p[0] for p in pairs])), float(np.mean([p[1] for p in pairs]))
