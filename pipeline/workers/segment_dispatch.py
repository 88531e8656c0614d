"""Fan a segmented video's render out: one ``render`` message per segment.

Kept apart from the segment actors (pipeline.workers.segments) so the video
actors can dispatch without importing them.  Messages carry ids only: the
job id and the segment's index in the plan stored in the storyboard.
"""

from __future__ import annotations

from pipeline.stages.segment_plan import segments
from pipeline.stages.storyboard import Storyboard
from pipeline.workers import runtime
from pipeline.workers.jobs import StageRun
from t2m.enqueue import Enqueuer
from t2m.queues import RENDER_SEGMENT


async def dispatch_segments(run: StageRun, storyboard: Storyboard) -> None:
    parts = segments(storyboard, list(storyboard.segments))
    await run.log(
        "INFO",
        f"Rendering in {len(parts)} segments",
        segments=len(parts),
        bounds=[[p.first, p.end] for p in parts],
    )
    enqueuer = Enqueuer(runtime.broker)
    for part in parts:
        await enqueuer.send(RENDER_SEGMENT, run.job["id"], part.index)
