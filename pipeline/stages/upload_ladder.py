"""Renditions of an uploaded video below its own resolution, for adaptive playback.

Each rung is H.264/AAC with a keyframe forced every two seconds (the same
GOP as rendered videos), so the HLS packager cuts every rung at the same
instants.  Only rungs below the source's height are made — never an upscale —
and at most ``MAX_RUNGS`` of them, the largest first, so the extra storage of
an upload stays below roughly its own size.  The uploaded original is read
with the upload demuxer/protocol lists like every other read of user media.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipeline.stages.ffmpeg_runner import run_ffmpeg, upload_input_options

LADDER = (1080, 720, 480, 360)
MAX_RUNGS = 2
CRF = {1080: 23, 720: 23, 480: 24, 360: 25}


def rungs_below(height: int) -> list[int]:
    return [h for h in LADDER if h < height][:MAX_RUNGS]


def encode_ladder(
    source: Path,
    out_dir: Path,
    *,
    width: int,
    height: int,
    duration_s: float,
    timeout_s: float | None = None,
    memory_limit_bytes: int | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> dict[str, tuple[Path, int, int]]:
    """``{quality: (file, width, height)}`` for every rung below ``height``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    made: dict[str, tuple[Path, int, int]] = {}
    for rung in rungs_below(height):
        rung_width = max(2, round(width * rung / height / 2) * 2)
        name = f"{rung}p.mp4"
        run_ffmpeg(
            [
                *("-y", *upload_input_options(), "-i", str(source.resolve())),
                # The first video stream and the first audio one if there is
                # one; no subtitle or data streams.
                *("-map", "0:v:0", "-map", "0:a:0?", "-sn", "-dn"),
                *("-vf", f"scale={rung_width}:{rung}"),
                *("-c:v", "libx264", "-preset", "veryfast", "-crf", str(CRF[rung])),
                *("-profile:v", "high", "-pix_fmt", "yuv420p"),
                *("-force_key_frames", "expr:gte(t,n_forced*2)", "-sc_threshold", "0"),
                *("-c:a", "aac", "-b:a", "128k", "-ac", "2"),
                *("-movflags", "+faststart", name),
            ],
            cwd=out_dir,
            total_duration_s=max(duration_s, 0.1),
            log_path=out_dir / f"{rung}p.log",
            timeout_s=timeout_s,
            memory_limit_bytes=memory_limit_bytes,
            should_cancel=should_cancel,
        )
        made[f"{rung}p"] = (out_dir / name, rung_width, rung)
    return made
