"""Tag recommendations in the API process: numpy inference, no torch.

The newest model version's exported scorer is loaded from storage and kept in
memory; a newer version is picked up at most ``REFRESH_S`` after the updater
publishes it, without a restart.  Before the first version exists the
cold-start policy (popularity and text similarity) answers.  Every decision is
logged with its candidates and propensities for off-policy evaluation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np

from db import recommender as rec_rows
from recommender.content import file_content_features
from recommender.inference import TagScorer
from t2m.ids import new_id
from t2m.storage import Storage

log = logging.getLogger(__name__)

REFRESH_S = 2.0
MAX_K = 20


@dataclass
class _Loaded:
    version: int
    scorer: TagScorer
    checked_at: float


class ScorerCache:
    def __init__(self, pool: asyncpg.Pool, storage: Storage) -> None:
        self.pool = pool
        self.storage = storage
        self._loaded: _Loaded | None = None
        self._lock = asyncio.Lock()
        self._rng = np.random.default_rng()

    async def current(self) -> tuple[int, TagScorer]:
        loaded = self._loaded
        if loaded is not None and time.monotonic() - loaded.checked_at < REFRESH_S:
            return loaded.version, loaded.scorer
        async with self._lock:
            loaded = self._loaded
            if loaded is not None and time.monotonic() - loaded.checked_at < REFRESH_S:
                return loaded.version, loaded.scorer
            async with self.pool.acquire() as conn:
                latest = await rec_rows.latest_model(conn)
                counts = None if latest is not None else await rec_rows.tag_counts(conn)
            if latest is None:
                assert counts is not None
                scorer = TagScorer.untrained(counts)
                self._loaded = _Loaded(0, scorer, time.monotonic())
            elif loaded is None or loaded.version != latest["version"]:
                blob = await self.storage.get_bytes(latest["scorer_key"])
                scorer = await asyncio.to_thread(TagScorer.from_bytes, blob)
                log.info("serving tag model version %s", latest["version"])
                self._loaded = _Loaded(latest["version"], scorer, time.monotonic())
            else:
                loaded.checked_at = time.monotonic()
            assert self._loaded is not None
            return self._loaded.version, self._loaded.scorer

    async def recommend(
        self, file_row: asyncpg.Record, *, user_id: str | None, k: int
    ) -> dict[str, Any]:
        version, scorer = await self.current()
        context = file_content_features(dict(file_row), scorer.config)
        existing = list(file_row["tags"])
        decision = scorer.recommend(context, k=min(k, MAX_K), rng=self._rng, exclude=existing)
        candidates = [t for t in scorer.tags if t not in set(existing)]
        recommendation_id = new_id("rec")
        async with self.pool.acquire() as conn:
            await rec_rows.insert_recommendation(
                conn,
                id=recommendation_id,
                content_id=file_row["id"],
                user_id=user_id,
                model_version=version,
                tags=list(decision.tags),
                candidates=candidates,
                k=k,
                scores=[decision.scores[t] for t in decision.tags],
                propensities=[decision.propensities[t] for t in decision.tags],
                explored=decision.explored,
            )
        return {
            "content_id": file_row["id"],
            "recommendation_id": recommendation_id,
            "model_version": version,
            "explored": decision.explored,
            "tags": [
                {
                    "tag": tag,
                    "score": round(decision.scores[tag], 6),
                    "propensity": round(decision.propensities[tag], 6),
                }
                for tag in decision.tags
            ],
            "existing_tags": existing,
        }
