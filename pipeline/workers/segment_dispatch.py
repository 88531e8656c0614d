"""Fan a segmented video's render out: the sound and one message per segment.

Kept apart from the segment actors (pipeline.workers.segments) so the video
actors can dispatch without importing them.  Messages carry ids only: the
job id (the sound) and the segment's index in the plan stored in the
storyboard.  The sound goes first: it is the one piece as long as the whole
timeline, so an idle worker starts it while the others take segments.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import asyncpg

from db import files as file_rows
from pipeline.stages.segment_keys import references_key
from pipeline.stages.segment_plan import Segment, segments
from pipeline.stages.segment_render import segment_key
from pipeline.stages.segment_sound import sound_key
from pipeline.stages.storyboard import Storyboard
from pipeline.workers import runtime
from pipeline.workers.jobs import StageRun
from pipeline.workers.resources import storage
from t2m.errors import ValidationFailed
from t2m.queues import RENDER_SEGMENT, RENDER_SOUND


@dataclass(frozen=True)
class Pieces:
    """What a segmented render is made of, each stored under its content key."""

    parts: list[Segment]
    segment_prefixes: list[str]  # one per part, in order
    sound_prefix: str

    def prefixes(self) -> list[str]:
        return [*self.segment_prefixes, self.sound_prefix]


async def asset_checksums(pool: asyncpg.Pool, sb: Storyboard) -> dict[str, str]:
    """Asset id → content checksum: part of every segment's and the sound's key."""
    ids = {s.background.asset_id for s in sb.scenes if s.background.asset_id}
    if sb.music is not None:
        ids.add(sb.music.asset_id)
    sums: dict[str, str] = {}
    async with pool.acquire() as conn:
        for asset_id in sorted(a for a in ids if a):
            row = await file_rows.file_by_id(conn, asset_id)
            if row is None:
                raise ValidationFailed(f"asset {asset_id} was deleted")
            sums[asset_id] = str(row["blob_sha256"])
    return sums


def pieces(sb: Storyboard, sums: dict[str, str]) -> Pieces:
    parts = segments(sb, list(sb.segments))
    return Pieces(parts, [segment_key(sb, p, sums) for p in parts], sound_key(sb, sums))


async def dispatch_segments(run: StageRun, storyboard: Storyboard) -> None:
    plan = pieces(storyboard, await asset_checksums(run.pool, storyboard))
    # Written before any piece is looked up in storage: segment cleanup keeps
    # what a live job lists (pipeline.maintenance.tasks.clean_segments).
    await storage().put_bytes(
        references_key(run.job["id"]),
        json.dumps({"prefixes": plan.prefixes()}).encode(),
        content_type="application/json",
    )
    await run.log(
        "INFO",
        f"Rendering in {len(plan.parts)} segments",
        segments=len(plan.parts),
        bounds=[[p.first, p.end] for p in plan.parts],
    )
    enqueuer = runtime.enqueuer()
    await enqueuer.send(RENDER_SOUND, run.job["id"])
    for part in plan.parts:
        await enqueuer.send(RENDER_SEGMENT, run.job["id"], part.index)
