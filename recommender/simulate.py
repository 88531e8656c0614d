"""Offline simulator: replay a tagged corpus as accept/reject feedback and score policies.

Definitions (used consistently here, in ``rewards`` and in the benchmark)
    *event*: one per-tag feedback event — one shown tag answered with
    ``tag_accept`` (it is one of the item's true tags, reward 1) or
    ``tag_reject`` (reward 0). A *decision* shows k tags and therefore
    produces k events; ``--events 20000`` with ``--k 3`` is 6,667 decisions.

    *online P@1 / P@3 at N events*: mean precision of the decisions actually
    served (exploration on) whose events end in the trailing window
    ``(N - min(N, 2000), N]`` — what a viewer experiences at that point. P@1 is
    whether the first shown tag is true; P@3 the fraction of the shown tags
    that are true.

    *held-out P@1 / P@3*: over the cold items (never requested during the run),
    uniform over items, greedy policy (exploration off), after all events.

Protocol
    Items are split into warm and cold (``--holdout``). Warm items arrive tagged by
    their owners (``--labelled`` of them, default all): the agent learns those
    tags as full-information labels (``Agent.learn_labels``, ``--label-epochs``
    passes), exactly the labels the supervised reference gets. Requests then
    sample warm items by ``weight``. The agent's vocabulary is seeded with every
    tag of the corpus (as an admin would). Decisions are made by the *exported
    numpy* ``TagScorer``; feedback goes to ``Agent.update`` in batches of
    ``--batch`` events and a new scorer is exported after each, like the
    worker/API pair. Every item has a content key, as every file has an id; the
    held-out items are never requested, so the model has had no feedback for
    them and ranks them the way it ranks a new upload (the cold/warm gate of
    ``inference``: the classifier fitted on the owners' tags), through the same
    ``TagScorer.recommend``. Baselines on the same request stream:

    * random: k uniformly random tags (exact expected precision, |T|/V);
    * popularity: the best constant ranking from the warm items' true tags
      (request-weighted for online, item counts for held-out) — an oracle
      popularity, stronger than any learned counter;
    * supervised: one-vs-rest logistic regression on the same content
      features, trained with full information on the warm items' true tags,
      its L2 penalty and number of epochs chosen on a validation split of the
      warm items (held-out figures only) — the reference the agent must meet.

    The text output also runs off-policy evaluation (``evaluation``) on the
    decisions of the last window: the uniform policy's IPS estimate can be
    checked against its exact value, which tests the logged propensities.

Figures per catalogue and feature set: ``bench/bench_recommender_catalogues.py``
and the README.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from recommender.agent import Agent, AgentConfig
from recommender.evaluation import LoggedRound, evaluate_policies, scorer_policy
from recommender.features import (
    ContentFeatures,
    FeatureConfig,
    IdfTable,
    build_content_features,
    content_key,
    normalize_tag,
)
from recommender.inference import TagScorer
from recommender.rewards import EventType, FeedbackEvent, tag_feedback_reward
from recommender.supervised import SupervisedModel, precision
from recommender.synthetic import generate_items, write_csv
from recommender.vocabulary import Vocabulary

__all__ = ["SimItem", "SupervisedModel", "main", "read_items", "run_simulation"]

CHECKPOINTS = (1000, 5000, 20000)
LABEL_BATCH = 64
ONLINE_WINDOW = 2000


@dataclass(eq=False)
class SimItem:
    text: str
    tags: frozenset[str]
    weight: float
    title: str = ""
    media_type: str | None = None
    duration_s: float | None = None
    embedding: npt.NDArray[np.float32] | None = None
    features: ContentFeatures | None = None
    _idf: IdfTable | None = None
    #: ``content_key`` of the item (set by ``run_simulation``), as a file's id is
    key: int = 0

    def featurize(self, config: FeatureConfig, idf: IdfTable | None = None) -> ContentFeatures:
        if (
            self.features is None
            or self.features.config != config
            or self._idf is not idf
            or self.features.key != self.key
        ):
            features = build_content_features(
                self.title or None,
                self.text,
                None,
                self.media_type,
                self.duration_s,
                config,
                idf=idf,
                embedding=self.embedding,
            )
            self.features = dataclasses.replace(features, key=self.key)
            self._idf = idf
        return self.features


def read_items(path: str | Path) -> list[SimItem]:
    """CSV with ``text``, ``tags`` (space separated) and optional ``weight``, ``title``,
    ``media_type``, ``duration_s`` columns. Rows without tags are skipped."""
    items = []
    with Path(path).open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            tags = frozenset(t for t in (normalize_tag(x) for x in row["tags"].split()) if t)
            if not tags:
                continue
            weight = float(row.get("weight") or 1.0)
            duration = row.get("duration_s")
            items.append(
                SimItem(
                    text=row.get("text") or "",
                    tags=tags,
                    weight=max(weight, 0.0),
                    title=row.get("title") or "",
                    media_type=row.get("media_type") or None,
                    duration_s=float(duration) if duration else None,
                )
            )
    return items


def _split(
    items: Sequence[SimItem], holdout: float, rng: np.random.Generator
) -> tuple[list[SimItem], list[SimItem]]:
    order = rng.permutation(len(items))
    n_cold = round(holdout * len(items))
    if len(items) > 1:
        n_cold = min(max(n_cold, 1 if holdout > 0 else 0), len(items) - 1)
    cold = [items[i] for i in order[:n_cold]]
    warm = [items[i] for i in order[n_cold:]]
    return warm, cold


def _window_mean(ends: np.ndarray, values: np.ndarray, at: int) -> float:
    lo = at - min(at, ONLINE_WINDOW)
    mask = (ends > lo) & (ends <= at)
    return float(values[mask].mean()) if mask.any() else float("nan")


def run_simulation(
    items: Sequence[SimItem],
    *,
    events: int = 20_000,
    k: int = 3,
    seed: int = 0,
    holdout: float = 0.2,
    batch_size: int = 256,
    config: AgentConfig | None = None,
    supervised: bool = True,
    labelled: float = 1.0,
    label_epochs: int = 3,
    fit_idf: bool = False,
) -> dict[str, Any]:
    """Run agent and baselines on one request stream; returns the JSON-able result.

    ``fit_idf``: weight words by an idf table fitted on the warm items' texts.
    """
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    cfg = config or AgentConfig(seed=seed)
    warm, cold = _split(items, holdout, rng)
    if not warm:
        raise ValueError("no warm items to simulate")
    idf = IdfTable.fit(f"{it.title} {it.text}" for it in warm) if fit_idf else None
    all_tags = sorted({t for it in items for t in it.tags})
    vocab = Vocabulary()
    vocab.seed(all_tags)
    agent = Agent(cfg, vocab)
    for i, it in enumerate(items):
        # every item has a key, as every file has an id; held-out items are never
        # requested, so the model has no feedback for theirs (the gate sees them cold)
        it.key = content_key(f"sim-{i}")
        it.featurize(cfg.features, idf)

    weights = np.array([it.weight for it in warm], dtype=np.float64)
    weights = weights / weights.sum() if weights.sum() > 0 else np.full(len(warm), 1 / len(warm))
    weighted_pop: dict[str, float] = dict.fromkeys(all_tags, 0.0)
    item_pop: Counter[str] = Counter()
    for it, w in zip(warm, weights, strict=True):
        for t in it.tags:
            weighted_pop[t] += float(w)
            item_pop[t] += 1
    pop_online = sorted(all_tags, key=lambda t: (-weighted_pop[t], t))[:k]
    pop_heldout = sorted(all_tags, key=lambda t: (-item_pop[t], t))[:k]
    n_tags = len(all_tags)

    # owners' tags of the warm items: the same labels the supervised model gets
    n_labelled = round(labelled * len(warm))
    for epoch in range(label_epochs if n_labelled else 0):
        order = rng.permutation(n_labelled)
        for lo in range(0, n_labelled, LABEL_BATCH):
            chunk = [warm[int(i)] for i in order[lo : lo + LABEL_BATCH]]
            agent.learn_labels(
                [(it.featurize(cfg.features, idf), sorted(it.tags)) for it in chunk],
                count=epoch == 0,
            )
    supervised_choice: dict[str, Any] = {}
    scorer = TagScorer.from_bytes(agent.export_scorer())
    cumulative = np.cumsum(weights)
    logged: list[LoggedRound] = []
    pending: list[FeedbackEvent] = []
    rows: list[tuple[int, float, float, float, float, float, float]] = []
    n_events = 0
    updates = []
    while n_events < events:
        pick = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
        item = warm[min(pick, len(warm) - 1)]
        feats = item.featurize(cfg.features, idf)
        # the last decision shows fewer tags so that exactly ``events`` events happen
        decision = scorer.recommend(feats, None, min(k, events - n_events), rng)
        for tag in decision.tags:
            kind = EventType.TAG_ACCEPT if tag in item.tags else EventType.TAG_REJECT
            pending.append(
                FeedbackEvent(feats, tag, tag_feedback_reward(kind), decision.propensities[tag])
            )
        n_events += len(decision.tags)
        if decision.tags and n_events > events - ONLINE_WINDOW:
            logged.append(
                LoggedRound(
                    context=feats,
                    candidates=tuple(scorer.tags),
                    shown=decision.tags,
                    propensities=tuple(decision.propensities[t] for t in decision.tags),
                    rewards=tuple(float(t in item.tags) for t in decision.tags),
                    k=len(decision.tags),
                )
            )
        a1, a3 = precision(decision.tags, item.tags)
        p1, p3 = precision(pop_online, item.tags)
        r = len(item.tags & set(all_tags)) / n_tags
        rows.append((n_events, a1, a3, r, r, p1, p3))
        if len(pending) >= batch_size or n_events >= events:
            updates.append(agent.update(pending))
            pending = []
            scorer = TagScorer.from_bytes(agent.export_scorer())
        if not decision.tags:
            break

    table = np.array(rows, dtype=np.float64).reshape(-1, 7)
    ends = table[:, 0]
    checkpoints = [c for c in CHECKPOINTS if c <= events]
    online: dict[str, dict[str, dict[str, float]]] = {}
    for name, c1, c3 in (("agent", 1, 2), ("random", 3, 4), ("popularity", 5, 6)):
        online[name] = {
            "online_p1": {str(c): _window_mean(ends, table[:, c1], c) for c in checkpoints},
            "online_p3": {str(c): _window_mean(ends, table[:, c3], c) for c in checkpoints},
        }

    heldout: dict[str, tuple[float, float]] = {}
    if cold:
        cold_feats = [it.featurize(cfg.features, idf) for it in cold]
        greedy = [scorer.recommend(f, None, k, explore=False).tags for f in cold_feats]
        heldout["agent"] = _mean_precision(greedy, cold)
        rand = float(np.mean([len(it.tags & set(all_tags)) / n_tags for it in cold]))
        heldout["random"] = (rand, rand)
        heldout["popularity"] = _mean_precision([pop_heldout] * len(cold), cold)
        if supervised:
            # the procedure the agent's cold classifier follows, so that the gate's
            # share of the agent is compared with the reference on equal terms: the
            # labelled warm items in content-key order, their tags
            labelled_warm = sorted(warm[:n_labelled] or warm, key=lambda it: it.key)
            sup = SupervisedModel.tuned(
                [it.featurize(cfg.features, idf) for it in labelled_warm],
                [it.tags for it in labelled_warm],
                sorted({t for it in labelled_warm for t in it.tags}),
                np.random.default_rng(seed + 1),
            )
            supervised_choice = {"l2": sup.l2, "epochs": sup.epochs}
            heldout["supervised"] = _mean_precision(sup.rank(cold_feats, k), cold)

    # off-policy evaluation on the last window's log: the uniform policy's IPS estimate
    # can be checked against its exact value (the online "random" figure)
    ope = evaluate_policies(logged, {"final_greedy": scorer_policy(scorer, explore=False)})
    ope["uniform_exact"] = _window_mean(ends, table[:, 3], n_events)
    policies: dict[str, dict[str, Any]] = {}
    for name in ("agent", "random", "popularity", "supervised"):
        entry: dict[str, Any] = dict(online.get(name, {}))
        if name in heldout:
            entry["heldout_p1"], entry["heldout_p3"] = heldout[name]
        else:
            entry["heldout_p1"] = entry["heldout_p3"] = None
        policies[name] = entry
    return {
        "policies": policies,
        "events": n_events,
        "seconds": round(time.perf_counter() - start, 3),
        "decisions": len(rows),
        "warm_items": len(warm),
        "cold_items": len(cold),
        "tags": n_tags,
        "final_progressive_loss": updates[-1].progressive_loss if updates else None,
        "supervised_choice": supervised_choice,
        "labelled_items": n_labelled,
        "ope": ope,
    }


def _mean_precision(
    ranked: Sequence[Sequence[str]], items: Sequence[SimItem]
) -> tuple[float, float]:
    pairs = [precision(list(r), it.tags) for r, it in zip(ranked, items, strict=True)]
    return float(np.mean([p[0] for p in pairs])), float(np.mean([p[1] for p in pairs]))


def _format_table(result: dict[str, Any]) -> str:
    policies = result["policies"]
    checkpoints = list(policies["agent"]["online_p1"])
    head = ["policy"] + [f"P@1@{c}" for c in checkpoints] + [f"P@3@{c}" for c in checkpoints]
    head += ["heldout P@1", "heldout P@3"]

    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    lines = ["  ".join(f"{h:>12}" for h in head)]
    for name, entry in policies.items():
        cells = [name]
        cells += [fmt(entry.get("online_p1", {}).get(c)) for c in checkpoints]
        cells += [fmt(entry.get("online_p3", {}).get(c)) for c in checkpoints]
        cells += [fmt(entry["heldout_p1"]), fmt(entry["heldout_p3"])]
        lines.append("  ".join(f"{c:>12}" for c in cells))
    ope = result.get("ope")
    if ope and ope.get("logged") == ope.get("logged"):  # not NaN
        lines.append(
            f"off-policy evaluation on the last {ope['uniform']['rounds']} logged decisions "
            f"(reward per shown tag): logged {ope['logged']:.3f}; uniform IPS "
            f"{ope['uniform']['ips']:.3f} / SNIPS {ope['uniform']['snips']:.3f} "
            f"(exact {fmt(ope['uniform_exact'])}); final greedy policy IPS "
            f"{ope['final_greedy']['ips']:.3f} / SNIPS {ope['final_greedy']['snips']:.3f}"
        )
    if result.get("supervised_choice"):
        choice = result["supervised_choice"]
        lines.append(
            f"supervised reference tuned on a validation split: l2={choice['l2']:g} "
            f"epochs={choice['epochs']}; agent learned {result['labelled_items']} owner-tagged"
            " items"
        )
    lines.append(
        f"events={result['events']} decisions={result['decisions']} warm={result['warm_items']} "
        f"cold={result['cold_items']} tags={result['tags']} seconds={result['seconds']}"
    )
    return "\n".join(lines)


def _compact(result: dict[str, Any]) -> dict[str, Any]:
    """The documented JSON shape (supervised: held-out figures only)."""
    policies = {}
    for name, entry in result["policies"].items():
        keep = {
            k: v for k, v in entry.items() if not (name == "supervised" and k.startswith("online"))
        }
        policies[name] = keep
    return {"policies": policies, "events": result["events"], "seconds": result["seconds"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="t2m recommender simulate",
        description="Simulate accept/reject feedback on a tagged corpus and compare policies.",
    )
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--csv", help="CSV with columns text, tags (space separated), [weight]")
    src.add_argument("--synthetic", type=int, metavar="N", help="generate N synthetic items")
    parser.add_argument("--events", type=int, default=20_000, help="per-tag feedback events")
    parser.add_argument("--k", type=int, default=3, help="tags shown per decision")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--holdout", type=float, default=0.2, help="fraction of cold items")
    parser.add_argument("--batch", type=int, default=256, help="events per agent update")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument(
        "--labelled", type=float, default=1.0, help="fraction of warm items owner-tagged"
    )
    parser.add_argument("--label-epochs", type=int, default=3, help="passes over owner tags")
    parser.add_argument("--write-synthetic", metavar="PATH", help="also save the synthetic CSV")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.events <= 0 or args.k <= 0 or not 0.0 <= args.holdout < 1.0:
        parser.error("--events and --k must be positive, --holdout in [0, 1)")
    if not 0.0 <= args.labelled <= 1.0 or args.label_epochs < 0:
        parser.error("--labelled must be in [0, 1], --label-epochs non-negative")
    torch.set_num_threads(max(1, args.threads))

    if args.synthetic is not None:
        generated = generate_items(args.synthetic, seed=args.seed)
        if args.write_synthetic:
            write_csv(args.write_synthetic, generated)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "synthetic.csv"
            write_csv(path, generated)
            items = read_items(path)
    else:
        items = read_items(args.csv)
    if len(items) < 2:
        print("need at least two tagged items", file=sys.stderr)
        return 2
    result = run_simulation(
        items,
        events=args.events,
        k=args.k,
        seed=args.seed,
        holdout=args.holdout,
        batch_size=args.batch,
        config=AgentConfig(seed=args.seed),
        labelled=args.labelled,
        label_epochs=args.label_epochs,
    )
    if args.json:
        print(json.dumps(_compact(result)))
    else:
        print(_format_table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
