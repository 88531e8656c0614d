"""Recommender core: updater throughput and numpy inference latency, in one run.

    .venv/bin/python bench/bench_recommender_core.py [--threads 2] [--batches 40]

Updater (what the training worker does per batch of feedback):
  * ``update``      — ``Agent.update`` on a batch of per-tag feedback events;
  * ``update+export`` — plus ``Agent.export_scorer`` (the npz the API loads);
  * ``end-to-end``  — from raw feedback rows (content text, event type, tag,
    logged propensity): featurise each distinct content of the batch, map rewards
    (``attribute_rewards``), update, export. Twice: featurising every content of
    every batch (uniform traffic, worst case), and through a ``FeatureCache`` with
    Zipf-weighted traffic (what a long-running worker sees).
  Events are per-tag feedback events (the unit defined in ``rewards``); the agent
  is warmed up first so the replay buffer is full-sized.

Inference (what the API does per request, numpy only): ``TagScorer.from_bytes``
time and size, content featurisation, and ``TagScorer.recommend(k=3)`` with
exploration (Thompson draw + Monte-Carlo propensities) — p50/p99 — for the
synthetic 40-tag vocabulary and a 1,000-tag one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# One BLAS thread: the API and the worker score small matrices, where OpenBLAS's
# thread pool costs more than it saves (10x slower under load, measured here).
# Set before numpy is imported; deployments should do the same (env).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recommender.agent import Agent
from recommender.features import FeatureCache, build_content_features
from recommender.inference import TagScorer
from recommender.rewards import (
    FeedbackEvent,
    LoggedDecision,
    attribute_rewards,
    feedback_events,
)
from recommender.synthetic import generate_items
from recommender.vocabulary import Vocabulary

Row = tuple[int, str, str, float]  # (item index, event type, tag, propensity)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def make_rows(
    items: list, tags: list[str], n: int, rng: np.random.Generator, p: np.ndarray | None = None
) -> list[Row]:
    """Feedback rows for decisions of 3 tags on items drawn uniformly or with ``p``."""
    rows: list[Row] = []
    while len(rows) < n:
        i = int(rng.choice(len(items), p=p))
        for tag in rng.choice(tags, 3, replace=False):
            kind = "tag_accept" if tag in items[i].tags else "tag_reject"
            rows.append((i, kind, str(tag), float(rng.uniform(0.05, 1.0))))
    return rows[:n]


def to_events(rows: list[Row], items: list, features: Callable[[int], Any]) -> list[FeedbackEvent]:
    """Group rows by content, get each content's features once, map rewards."""
    contents: dict[int, Any] = {}
    events: list[FeedbackEvent] = []
    for i, kind, tag, prop in rows:
        feats = contents.get(i)
        if feats is None:
            feats = contents[i] = features(i)
        decision = LoggedDecision((tag,), {tag: prop})
        events.extend(feedback_events(feats, attribute_rewards(kind, tag=tag, decision=decision)))
    return events


def bench_updater(args: argparse.Namespace) -> dict[str, float]:
    rng = np.random.default_rng(0)
    items = generate_items(args.items, seed=0)
    tags = sorted({t for it in items for t in it.tags})
    prebuilt = {i: build_content_features(None, it.text) for i, it in enumerate(items)}
    zipf = np.array([it.weight for it in items])
    zipf /= zipf.sum()
    vocab = Vocabulary()
    vocab.seed(tags)
    agent = Agent(vocabulary=vocab)
    for _ in range(args.warmup):
        agent.update(to_events(make_rows(items, tags, args.batch, rng), items, prebuilt.get))
    update_s = export_s = update_cpu = export_cpu = 0.0
    losses = []
    for _ in range(args.batches):
        events = to_events(make_rows(items, tags, args.batch, rng), items, prebuilt.get)
        t0, c0 = time.perf_counter(), time.process_time()
        report = agent.update(events)
        t1, c1 = time.perf_counter(), time.process_time()
        blob = agent.export_scorer()
        t2, c2 = time.perf_counter(), time.process_time()
        update_s, update_cpu = update_s + t1 - t0, update_cpu + c1 - c0
        export_s, export_cpu = export_s + t2 - t1, export_cpu + c2 - c1
        losses.append(report.progressive_loss)

    def end_to_end(features: Callable[[int], Any], p: np.ndarray | None) -> tuple[float, float]:
        wall = cpu = 0.0
        for _ in range(args.batches):
            rows = make_rows(items, tags, args.batch, rng, p)
            t0, c0 = time.perf_counter(), time.process_time()
            agent.update(to_events(rows, items, features))
            agent.export_scorer()
            wall, cpu = wall + time.perf_counter() - t0, cpu + time.process_time() - c0
        return wall, cpu

    cold_wall, cold_cpu = end_to_end(lambda i: build_content_features(None, items[i].text), None)
    cache = FeatureCache(maxsize=args.cache)
    for _ in range(args.warmup):  # a worker that has been running for a while
        for i, *_ in make_rows(items, tags, args.batch, rng, zipf):
            cache.get(i, None, items[i].text)
    hits0, misses0 = cache.hits, cache.misses
    cached_wall, cached_cpu = end_to_end(lambda i: cache.get(i, None, items[i].text), zipf)
    hits, misses = cache.hits - hits0, cache.misses - misses0
    n = args.batches * args.batch
    return {
        "batch": args.batch,
        "events_timed": n,
        "update_events_per_s": n / update_s,
        "update_export_events_per_s": n / (update_s + export_s),
        "update_export_events_per_cpu_s": n / (update_cpu + export_cpu),
        "end_to_end_uncached_events_per_s": n / cold_wall,
        "end_to_end_uncached_events_per_cpu_s": n / cold_cpu,
        "end_to_end_cached_events_per_s": n / cached_wall,
        "end_to_end_cached_events_per_cpu_s": n / cached_cpu,
        "cache_hit_rate": hits / max(hits + misses, 1),
        "update_ms_per_batch": 1e3 * update_s / args.batches,
        "export_ms": 1e3 * export_s / args.batches,
        "export_mb": len(blob) / 1e6,
        "progressive_loss_first": losses[0],
        "progressive_loss_last": losses[-1],
    }


def bench_inference(args: argparse.Namespace, n_tags: int) -> dict[str, float]:
    rng = np.random.default_rng(1)
    items = generate_items(args.items, seed=0)
    tags = sorted({t for it in items for t in it.tags})
    extra = [f"topic-{i:04d}" for i in range(max(0, n_tags - len(tags)))]
    vocab = Vocabulary()
    vocab.seed(tags + extra)
    agent = Agent(vocabulary=vocab)
    cache = {i: build_content_features(None, it.text) for i, it in enumerate(items)}
    for _ in range(10):
        agent.update(to_events(make_rows(items, tags, args.batch, rng), items, cache.get))
    blob = agent.export_scorer()
    loads = []
    for _ in range(5):
        t0 = time.perf_counter()
        scorer = TagScorer.from_bytes(blob)
        loads.append(time.perf_counter() - t0)
    scorer.recommend(cache[0], None, 3, rng)  # builds the candidate cache once
    feat_ms: list[float] = []
    rec_ms: list[float] = []
    for r in range(args.requests):
        item = items[r % len(items)]
        t0 = time.perf_counter()
        feats = build_content_features(f"video {r}", item.text, None, "video", 60.0)
        t1 = time.perf_counter()
        scorer.recommend(feats, None, 3, rng)
        t2 = time.perf_counter()
        feat_ms.append(1e3 * (t1 - t0))
        rec_ms.append(1e3 * (t2 - t1))
    return {
        "tags": len(scorer.tags),
        "export_mb": len(blob) / 1e6,
        "from_bytes_ms": 1e3 * statistics.median(loads),
        "featurize_p50_ms": percentile(feat_ms, 50),
        "featurize_p99_ms": percentile(feat_ms, 99),
        "recommend_p50_ms": percentile(rec_ms, 50),
        "recommend_p99_ms": percentile(rec_ms, 99),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=256, help="events per update")
    parser.add_argument("--warmup", type=int, default=60, help="untimed batches first")
    parser.add_argument("--batches", type=int, default=40, help="timed batches")
    parser.add_argument("--requests", type=int, default=2000, help="timed recommendations")
    parser.add_argument("--cache", type=int, default=1000, help="FeatureCache size")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = {
        "threads": args.threads,
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "loadavg_before": list(os.getloadavg()),
        "updater": bench_updater(args),
        "inference": [bench_inference(args, 40), bench_inference(args, 1000)],
        "loadavg_after": list(os.getloadavg()),
    }
    if args.json:
        print(json.dumps(result))
        return 0
    up = result["updater"]
    print(
        f"torch threads {args.threads}, OPENBLAS_NUM_THREADS={result['openblas_threads']}, "
        f"load average {result['loadavg_before'][0]:.2f} (machine has {os.cpu_count()} cores)"
    )
    print(
        f"updater, batches of {up['batch']} events ({up['events_timed']} timed):\n"
        f"  update only      {up['update_events_per_s']:8.0f} events/s"
        f"  ({up['update_ms_per_batch']:.1f} ms/batch)\n"
        f"  update + export  {up['update_export_events_per_s']:8.0f} events/s wall,"
        f" {up['update_export_events_per_cpu_s']:.0f} per CPU-second"
        f"  (export {up['export_ms']:.1f} ms, {up['export_mb']:.2f} MB)\n"
        f"  end-to-end       {up['end_to_end_uncached_events_per_s']:8.0f} events/s wall,"
        f" {up['end_to_end_uncached_events_per_cpu_s']:.0f} per CPU-second"
        f"  (featurise every content of every batch + rewards + update + export)\n"
        f"  end-to-end       {up['end_to_end_cached_events_per_s']:8.0f} events/s wall,"
        f" {up['end_to_end_cached_events_per_cpu_s']:.0f} per CPU-second"
        f"  (FeatureCache({args.cache}), Zipf-weighted content, "
        f"{100 * up['cache_hit_rate']:.0f}% hits)\n"
        f"  progressive loss {up['progressive_loss_first']:.3f} -> "
        f"{up['progressive_loss_last']:.3f}"
    )
    for inf in result["inference"]:
        print(
            f"inference, {inf['tags']} tags: from_bytes {inf['from_bytes_ms']:.1f} ms "
            f"({inf['export_mb']:.2f} MB); featurise p50 {inf['featurize_p50_ms']:.2f} ms "
            f"p99 {inf['featurize_p99_ms']:.2f} ms; recommend(k=3, explore) "
            f"p50 {inf['recommend_p50_ms']:.2f} ms p99 {inf['recommend_p99_ms']:.2f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
