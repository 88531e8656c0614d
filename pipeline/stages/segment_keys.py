"""Where segmented renders keep their pieces in storage, and what a job lists.

No imports: the maintenance tasks (which the API process loads) read these
names without loading the render code.
"""

from __future__ import annotations

# Every stored segment and timeline sound lives under this storage prefix
# (segment_render.segment_key, segment_sound.sound_key).
SEGMENTS_PREFIX = "segments/"


def references_key(job_id: str) -> str:
    """Where a segmented job lists the segment prefixes it renders and joins
    (JSON ``{"prefixes": [...]}``): what segment cleanup keeps while the job lives."""
    return f"storyboards/{job_id}.segments.json"
