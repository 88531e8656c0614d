"""The ``rl_update`` queue: train the tag recommender on new feedback, publish a version.

One updater trains at a time (a PostgreSQL advisory lock); it takes all
pending feedback rows (up to a cap), trains, writes a checkpoint and the API's
numpy scorer to storage, and — in the same transaction that holds the rows —
records the version and marks the rows processed.  A crash before that commit
leaves the rows pending, so nothing is lost; the next update retrains them.
"""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg
import torch

from db import recommender as rec_rows
from pipeline.stages.rl_update import logged_rounds, off_policy_report, training_batch
from pipeline.workers import runtime
from pipeline.workers.resources import db_pool, storage
from recommender import checkpoint
from recommender.agent import Agent
from recommender.content import file_content_features
from recommender.inference import TagScorer
from t2m.queues import UPDATE_RECOMMENDER

log = logging.getLogger(__name__)

# One thread: on a shared 2-core machine more threads made training 3–4x slower.
torch.set_num_threads(1)

UPDATER_LOCK_KEY = 0x7432_6D_726C  # any constant shared by every updater process
MAX_EVENTS_PER_VERSION = 50_000
BATCH_EVENTS = 2048
EVALUATION_ROUNDS = 500
WAIT_RETRY_MS = 2000
MAX_FILES_PER_VERSION = 5000
LABEL_BATCH = 64

_agent: tuple[int, Agent] | None = None


async def _load_agent(version_row: asyncpg.Record | None) -> Agent:
    """The newest version's agent, from this process's memory when it is current."""
    global _agent
    if version_row is None:
        if _agent is None or _agent[0] != 0:
            _agent = (0, Agent())
        return _agent[1]
    version: int = version_row["version"]
    if _agent is None or _agent[0] != version:
        blob = await storage().get_bytes(version_row["checkpoint_key"])
        _agent = (version, await asyncio.to_thread(checkpoint.load, blob))
    return _agent[1]


@runtime.actor(UPDATE_RECOMMENDER, max_retries=5, time_limit=30 * 60 * 1000)
async def update_recommender() -> None:
    global _agent
    pool = await db_pool()
    async with pool.acquire() as lock_conn:
        if not await lock_conn.fetchval("SELECT pg_try_advisory_lock($1)", UPDATER_LOCK_KEY):
            return  # another updater is at work and will take these events too
        try:
            while await _publish_one_version(pool):
                pass
            async with pool.acquire() as conn:
                waiting = await rec_rows.feedback_waiting_for_decisions(conn)
            if waiting:
                # their decisions are still in an API process's batch: come back for them
                update_recommender.send_with_options(delay=WAIT_RETRY_MS)
        except BaseException:
            _agent = None  # the in-memory agent may hold half-applied training
            raise
        finally:
            await lock_conn.execute("SELECT pg_advisory_unlock($1)", UPDATER_LOCK_KEY)


async def _publish_one_version(pool: asyncpg.Pool) -> bool:
    global _agent
    started = time.perf_counter()
    async with pool.acquire() as conn, conn.transaction():
        latest = await rec_rows.latest_model(conn)
        agent = await _load_agent(latest)
        # the model's actions: every vocabulary (it is never shown; the API chooses
        # candidates from the global vocabulary and the requester's own tags)
        counts = await rec_rows.all_tag_counts(conn)
        unknown = [t for t in counts if agent.vocabulary.entry(t) is None]
        if unknown:
            agent.vocabulary.seed(unknown)
        labelled = await rec_rows.claim_tagged_files_to_learn(conn, MAX_FILES_PER_VERSION)
        rows = await rec_rows.claim_unprocessed_feedback(conn, MAX_EVENTS_PER_VERSION)
        if not rows and not labelled:
            return False
        if labelled:
            # owners' tags: full-information labels (the agent's popularity prior too)
            examples = [
                (file_content_features(dict(f), agent.config.features), list(f["tags"]))
                for f in labelled
            ]
            for start in range(0, len(examples), LABEL_BATCH):
                await asyncio.to_thread(agent.learn_labels, examples[start : start + LABEL_BATCH])
            await rec_rows.mark_tags_learned(conn, [f["id"] for f in labelled])
        batch = training_batch(rows, agent.config.features)
        losses = []
        for start in range(0, len(batch.events), BATCH_EVENTS):
            report = await asyncio.to_thread(
                agent.update, batch.events[start : start + BATCH_EVENTS]
            )
            losses.append(report.progressive_loss)
        if batch.new_tags:
            agent.vocabulary.add_user_tags(batch.new_tags)
        version = (latest["version"] if latest else 0) + 1
        checkpoint_blob = await asyncio.to_thread(checkpoint.save, agent)
        scorer_blob = await asyncio.to_thread(agent.export_scorer)
        checkpoint_key = f"models/agent-v{version:06d}.ckpt"
        scorer_key = f"models/scorer-v{version:06d}.npz"
        await storage().put_bytes(checkpoint_key, checkpoint_blob)
        await storage().put_bytes(scorer_key, scorer_blob)
        scorer = TagScorer.from_bytes(scorer_blob)
        rounds = logged_rounds(
            await rec_rows.recent_rounds(conn, EVALUATION_ROUNDS), agent.config.features
        )
        off_policy = await asyncio.to_thread(off_policy_report, scorer, rounds)
        seconds = time.perf_counter() - started
        await rec_rows.insert_model_version(
            conn,
            version=version,
            checkpoint_key=checkpoint_key,
            scorer_key=scorer_key,
            events_trained=len(rows),  # feedback rows (owner-tagged files: in metrics)
            total_events=agent.events_seen,
            loss=sum(losses) / len(losses) if losses else None,
            seconds=seconds,
            metrics={
                "off_policy": off_policy,
                "tag_events": len(batch.events),
                "labelled_files": len(labelled),
            },
        )
        await rec_rows.mark_processed(conn, batch.event_ids, batch.event_rewards)
    _agent = (version, agent)
    log.info("published tag model v%s: %s events in %.2f s", version, len(rows), seconds)
    return True
