"""Tag recommendations in the API process: numpy inference, no torch.

Scorer
    The newest model version's exported scorer is loaded from storage and kept in
    memory; a newer version is picked up at most ``REFRESH_S`` after the updater
    publishes it, without a restart. Before the first version exists the
    cold-start policy (tag prior from the global vocabulary's counts, and text
    similarity) answers.

Private vocabularies
    Candidates are the global vocabulary (what administrators curated or
    promoted) plus the *requesting* user's own tags — never another user's: a
    user may see a file that is not theirs, and its owner's private tags must not
    leak through suggestions. Both lists are kept in memory (the global one with
    the scorer, each user's for ``REFRESH_S``) and each has its own cached block
    of tag vectors in the scorer, so a request does no database read for them in
    the steady state and no per-request block building.

Decision log
    Every decision is logged with its candidates and propensities for
    off-policy evaluation and reward attribution, but not in the request: rows
    are batched (``DecisionLog``) and written every ``FLUSH_S`` or
    ``FLUSH_ROWS`` rows, in one statement. Feedback may refer to a decision not
    yet written: the recommendation id carries a MAC of (id, content id), so the
    feedback endpoint accepts it without the row, and the updater waits for the
    row (``db.recommender.claim_unprocessed_feedback``) before training on it.
    A decision still pending in this process is written before its feedback.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np
from aiohttp import web

from db import recommender as rec_rows
from recommender.content import file_content_features
from recommender.features import ContentFeatures, normalize_tag
from recommender.inference import TagScorer
from t2m.storage import Storage

log = logging.getLogger(__name__)

REFRESH_S = 2.0
MAX_K = 20
#: Decision rows are written at least this often, or as soon as this many wait.
FLUSH_S = 0.2
FLUSH_ROWS = 500
#: Beyond this many unwritten rows (database down) the oldest are dropped.
MAX_PENDING = 50_000
#: Featurised files kept in memory (hashing a file's text and embedding costs about
#: 1 ms a request otherwise; a file's features change only with its row).
MAX_CACHED_FEATURES = 20_000
MAX_CACHED_USERS = 10_000


@dataclass
class _Loaded:
    version: int
    scorer: TagScorer
    global_tags: tuple[str, ...]
    checked_at: float


class DecisionLog:
    """Logged decisions, written to PostgreSQL in batches by one background task."""

    def __init__(
        self, pool: asyncpg.Pool, *, flush_s: float = FLUSH_S, flush_rows: int = FLUSH_ROWS
    ) -> None:
        self.pool = pool
        self.flush_s = flush_s
        self.flush_rows = flush_rows
        self._pending: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.written = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="decision-log")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    def add(self, row: dict[str, Any]) -> None:
        self._pending[row["id"]] = row
        if len(self._pending) > MAX_PENDING:
            self._pending.popitem(last=False)
            log.warning("decision log over %s rows: dropping the oldest", MAX_PENDING)
        if len(self._pending) >= self.flush_rows:
            self._wake.set()

    def is_pending(self, recommendation_id: str) -> bool:
        return recommendation_id in self._pending

    async def flush(self) -> None:
        """Write every pending row now (the next ones wait for the next batch)."""
        async with self._lock:
            if not self._pending:
                return
            rows = list(self._pending.values())
            async with self.pool.acquire() as conn:
                await rec_rows.insert_recommendations(conn, rows)
            for row in rows:
                self._pending.pop(row["id"], None)
            self.written += len(rows)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_s)
            self._wake.clear()
            try:
                await self.flush()
            except (OSError, asyncpg.PostgresError):
                # kept pending: the next round retries
                log.warning("could not write logged decisions; retrying", exc_info=True)


class ScorerCache:
    def __init__(
        self,
        pool: asyncpg.Pool,
        storage: Storage,
        *,
        secret: str = "",
        flush_s: float = FLUSH_S,
    ) -> None:
        self.pool = pool
        self.storage = storage
        self._loaded: _Loaded | None = None
        self._lock = asyncio.Lock()
        self._rng = np.random.default_rng()
        self._users: OrderedDict[str, tuple[tuple[str, ...], float]] = OrderedDict()
        self._features: OrderedDict[tuple[Any, ...], ContentFeatures] = OrderedDict()
        # a per-process secret still lets this process check its own ids
        self._secret = (secret or secrets.token_hex(16)).encode()
        self.decisions = DecisionLog(pool, flush_s=flush_s)

    # --- recommendation ids ---------------------------------------------------------------

    def _mac(self, nonce: str, content_id: str) -> str:
        msg = f"{nonce}:{content_id}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()[:8]

    def new_recommendation_id(self, content_id: str) -> str:
        """``rec_`` + 16 hex of nonce + 8 hex of MAC (the shape of every T2M id)."""
        nonce = secrets.token_hex(8)
        return f"rec_{nonce}{self._mac(nonce, content_id)}"

    def issued_here(self, recommendation_id: str, content_id: str) -> bool:
        """Whether this service issued the id for this content (row written or not)."""
        body = recommendation_id.removeprefix("rec_")
        if len(body) != 24 or not recommendation_id.startswith("rec_"):
            return False
        return hmac.compare_digest(body[16:], self._mac(body[:16], content_id))

    # --- scorer and vocabularies ----------------------------------------------------------

    async def current(self) -> tuple[int, TagScorer]:
        loaded = await self._current()
        return loaded.version, loaded.scorer

    async def _current(self) -> _Loaded:
        loaded = self._loaded
        if loaded is not None and time.monotonic() - loaded.checked_at < REFRESH_S:
            return loaded
        async with self._lock:
            loaded = self._loaded
            if loaded is not None and time.monotonic() - loaded.checked_at < REFRESH_S:
                return loaded
            async with self.pool.acquire() as conn:
                latest = await rec_rows.latest_model(conn)
                counts = await rec_rows.tag_counts(conn)
            global_tags = tuple(dict.fromkeys(n for n in map(normalize_tag, counts) if n))
            if latest is None:
                scorer = TagScorer.untrained(counts)
                self._loaded = _Loaded(0, scorer, global_tags, time.monotonic())
            elif loaded is None or loaded.version != latest["version"]:
                blob = await self.storage.get_bytes(latest["scorer_key"])
                scorer = await asyncio.to_thread(TagScorer.from_bytes, blob)
                log.info("serving tag model version %s", latest["version"])
                self._loaded = _Loaded(latest["version"], scorer, global_tags, time.monotonic())
            else:
                self._loaded = _Loaded(loaded.version, loaded.scorer, global_tags, time.monotonic())
            return self._loaded

    async def user_tags(self, user_id: str) -> tuple[str, ...]:
        """The user's private vocabulary (cached for ``REFRESH_S``)."""
        hit = self._users.get(user_id)
        now = time.monotonic()
        if hit is not None and now - hit[1] < REFRESH_S:
            self._users.move_to_end(user_id)
            return hit[0]
        async with self.pool.acquire() as conn:
            counts = await rec_rows.user_tag_counts(conn, user_id)
        tags = tuple(dict.fromkeys(n for n in map(normalize_tag, counts) if n))
        self._users[user_id] = (tags, now)
        self._users.move_to_end(user_id)
        if len(self._users) > MAX_CACHED_USERS:
            self._users.popitem(last=False)
        return tags

    def forget_global(self) -> None:
        """The global vocabulary changed: reload it (and check the model) next time."""
        loaded = self._loaded
        if loaded is not None:
            loaded.checked_at = -REFRESH_S

    def forget_user(self, user_id: str) -> None:
        """The user's vocabulary changed in this process: read it again next time."""
        self._users.pop(user_id, None)

    def _content_features(self, file_row: asyncpg.Record, scorer: TagScorer) -> ContentFeatures:
        """The file's features for this model, cached: every write to a file row that
        changes what they read (title, description, metadata) also moves updated_at."""
        key = (
            file_row["id"], file_row["updated_at"], file_row["title"], file_row["description"],
            id(scorer.config),
        )  # fmt: skip
        feats = self._features.get(key)
        if feats is None or feats.config != scorer.config:
            feats = file_content_features(dict(file_row), scorer.config)
            self._features[key] = feats
            if len(self._features) > MAX_CACHED_FEATURES:
                self._features.popitem(last=False)
        else:
            self._features.move_to_end(key)
        return feats

    # --- decisions ------------------------------------------------------------------------

    async def recommend(self, file_row: asyncpg.Record, *, user_id: str, k: int) -> dict[str, Any]:
        loaded = await self._current()
        scorer = loaded.scorer
        own = await self.user_tags(user_id)
        context = self._content_features(file_row, scorer)
        existing = list(file_row["tags"])
        decision = scorer.recommend(
            context,
            k=min(k, MAX_K),
            rng=self._rng,
            exclude=existing,
            candidate_groups=(loaded.global_tags, own),
        )
        recommendation_id = self.new_recommendation_id(file_row["id"])
        self.decisions.add(
            {
                "id": recommendation_id,
                "content_id": file_row["id"],
                "user_id": user_id,
                "model_version": loaded.version,
                "tags": list(decision.tags),
                "candidates": list(decision.candidates),
                "k": k,
                "scores": [decision.scores[t] for t in decision.tags],
                "propensities": [decision.propensities[t] for t in decision.tags],
                "explored": decision.explored,
            }
        )
        return {
            "content_id": file_row["id"],
            "recommendation_id": recommendation_id,
            "model_version": loaded.version,
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


SCORER_CACHE = web.AppKey("scorer_cache", ScorerCache)
