"""The recommender learns through the real path: HTTP feedback → worker → new version."""

from __future__ import annotations

import asyncio
import signal

import numpy as np

from recommender.content import file_content_features
from recommender.inference import TagScorer
from t2m.broker import build_broker
from t2m.enqueue import Enqueuer
from t2m.queues import UPDATE_RECOMMENDER
from tests.api.files_helpers import upload
from tests.support.media import png_bytes
from tests.support.polling import until

TOPICS = {
    "Waves rolling onto the sand at dawn": "beach ocean sand",
    "Climbing the north face in winter": "mountain snow hiking",
    "Neon lights and traffic after midnight": "city traffic night",
    "Slow-cooked ragu for a Sunday lunch": "food recipe kitchen",
    "Rocket launch seen from the coast": "rocket stars galaxy",
}
TRUE_TAGS = {"dog", "puppy"}


async def _library(client, user) -> str:
    for i, (title, tags) in enumerate(TOPICS.items()):
        await upload(
            client, user, png_bytes(color=(i, 2 * i, 3 * i)), f"{i}.png", title=title, tags=tags
        )
    await upload(
        client,
        user,
        png_bytes(color=(99, 1, 1)),
        "pets.png",
        title="Our pets",
        tags="dog puppy cat",
    )
    target = await upload(
        client, user, png_bytes(color=(5, 99, 5)), "max.png", title="Max's first day at the lake"
    )
    return target["id"]


async def _pending(db) -> int:
    async with db.acquire() as conn:
        return await conn.fetchval(
            "SELECT count(*) FROM feedback_events WHERE processed_at IS NULL"
        )


async def _feedback(client, user, **event) -> None:
    response = await client.post("/api/v1/feedback", json=event, headers=user.headers)
    assert response.status == 202, await response.text()


async def _recommended(client, user, file_id: str, k: int) -> dict:
    response = await client.get(
        f"/api/v1/files/{file_id}/recommended-tags?k={k}", headers=user.headers
    )
    return (await response.json())["data"]


async def _all_processed(db, timeout_s: float = 60.0) -> None:
    async def drained() -> bool:
        return await _pending(db) == 0

    await until(drained, "every feedback event processed", timeout_s=timeout_s)


async def _latest_scorer(client, db) -> tuple[int, TagScorer]:
    from api.keys import STORAGE

    async with db.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT version, scorer_key FROM model_versions ORDER BY version DESC LIMIT 1"
        )
    return row["version"], TagScorer.from_bytes(
        await client.app[STORAGE].get_bytes(row["scorer_key"])
    )


def _rank_of_true_tags(scorer: TagScorer, file_row: dict) -> list[int]:
    context = file_content_features(file_row, scorer.config)
    tags = scorer.tags
    order = list(np.argsort(-scorer.gated_score(context, tags)))
    return sorted(order.index(tags.index(t)) for t in TRUE_TAGS)


async def test_feedback_teaches_the_agent(client, make_user, db, start_worker):
    user = await make_user()
    target = await _library(client, user)
    start_worker(["rl_update"])
    for round_no in range(40):
        if round_no % 5 == 0:  # now and then the viewer names the tags themselves
            await _feedback(
                client, user, content_id=target, event_type="tag_accept", tags=sorted(TRUE_TAGS)
            )
        body = await _recommended(client, user, target, k=3)
        for shown in body["tags"]:
            await _feedback(
                client,
                user,
                content_id=target,
                event_type="tag_accept" if shown["tag"] in TRUE_TAGS else "tag_reject",
                tags=[shown["tag"]],
                recommendation_id=body["recommendation_id"],
            )
    await _all_processed(db)
    assert await _pending(db) == 0

    version, scorer = await _latest_scorer(client, db)
    assert version >= 1
    async with db.acquire() as conn:
        row = dict(await conn.fetchrow("SELECT * FROM files WHERE id = $1", target))
    assert _rank_of_true_tags(scorer, row) == [0, 1]  # both true tags rank first
    # the answered file is the bandit's now; a library file nobody answered stays cold
    async with db.acquire() as conn:
        other = dict(await conn.fetchrow("SELECT * FROM files WHERE id <> $1 LIMIT 1", target))
    assert scorer.evidence(file_content_features(row, scorer.config)) >= 40
    assert scorer.gate(file_content_features(row, scorer.config)) > 0.9
    assert scorer.gate(file_content_features(other, scorer.config)) == 0.0

    # The API picks the new version up without a restart and now suggests them.
    await asyncio.sleep(2.1)
    hits = 0
    for _ in range(10):
        body = await _recommended(client, user, target, k=2)
        assert body["model_version"] == version
        hits += bool(TRUE_TAGS & {t["tag"] for t in body["tags"]})
    assert hits >= 8

    metrics = await (await client.get("/metrics")).json()
    assert metrics["agent"]["model_version"] == version
    assert metrics["agent"]["pending_events"] == 0
    assert metrics["agent"]["off_policy"]["rounds"] >= 1


async def test_killed_updater_loses_no_event_and_reloads_its_checkpoint(
    client, make_user, db, start_worker, settings
):
    user = await make_user()
    target = await _library(client, user)
    async with db.acquire() as conn:
        await conn.execute(
            """
            INSERT INTO feedback_events (content_id, user_id, event_type, tags)
            SELECT $1, $2, CASE WHEN i % 2 = 0 THEN 'tag_accept' ELSE 'tag_reject' END,
                   ARRAY[CASE WHEN i % 2 = 0 THEN 'dog' ELSE 'city' END]
            FROM generate_series(1, 30000) AS i
            """,
            target,
            user.id,
        )
    enqueuer = Enqueuer(build_broker(settings))
    updater = start_worker(["rl_update"])
    enqueuer.send_now(UPDATE_RECOMMENDER)

    async def training_holds_the_rows() -> int:
        async with db.acquire() as conn:
            return await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            )

    await until(training_holds_the_rows, "the updater's advisory lock", interval_s=0.05)
    await asyncio.sleep(0.5)
    updater.kill(signal.SIGKILL)
    updater.process.wait()
    async with db.acquire() as conn:
        versions = await conn.fetchval("SELECT count(*) FROM model_versions")
    assert versions == 0  # nothing half-published
    assert await _pending(db) == 30000  # nothing lost

    start_worker(["rl_update"])
    enqueuer.send_now(UPDATE_RECOMMENDER)
    await _all_processed(db, timeout_s=120)
    async with db.acquire() as conn:
        trained = await conn.fetchval("SELECT sum(events_trained) FROM model_versions")
    assert trained == 30000

    # A further update runs in a fresh process that must load the checkpoint.
    start_worker(["rl_update"])
    await _feedback(client, user, content_id=target, event_type="tag_accept", tags=["puppy"])
    await _all_processed(db)
    async with db.acquire() as conn:
        rows = await conn.fetch("SELECT version, total_events FROM model_versions ORDER BY version")
    assert rows[-1]["total_events"] > rows[-2]["total_events"]  # training resumed, not restarted


async def test_owner_tags_are_learned_once_as_labels(client, make_user, db, start_worker):
    user = await make_user()
    target = await _library(client, user)
    start_worker(["rl_update"])
    # one event triggers an update; the owners' tags of the library go in with it
    await _feedback(client, user, content_id=target, event_type="view", watch_time_ms=100)
    await _all_processed(db)
    async with db.acquire() as conn:
        unlearned = await conn.fetchval(
            "SELECT count(*) FROM files WHERE tags <> '{}' AND tags_learned_at IS NULL"
        )
        metrics = await conn.fetchval("SELECT metrics FROM model_versions ORDER BY version LIMIT 1")
    assert unlearned == 0
    assert metrics["labelled_files"] == len(TOPICS) + 1
    _, scorer = await _latest_scorer(client, db)
    # a new pet video, never tagged or answered: the owners' "dog" labels carry over
    context = scorer.content_features(title="Our pets at the lake: dog and puppy")
    assert set(scorer.recommend(context, None, 2, explore=False).tags) & TRUE_TAGS
