"""Seek previews: one sprite sheet of frames and a WebVTT thumbnails track.

Players (hls.js based UIs, Video.js, JW, the console) show the tile whose cue
covers the hovered time: each cue's text is ``storyboard.jpg#xywh=x,y,w,h``
(the W3C media-fragment syntax).  One image for the whole video keeps it one
request; the interval grows with the duration so the sheet stays bounded.

Only keyframes are decoded (``-skip_frame nokey``): every rendition has a
keyframe every two seconds, so the nearest keyframe is close enough for a
preview and the sheet costs a fraction of a decode of the video.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from pipeline.stages.ffmpeg_runner import run_ffmpeg

TILE_WIDTH = 160
COLUMNS = 10
MAX_TILES = 100
MIN_INTERVAL_S = 2.0
SPRITE = "storyboard.jpg"
TRACK = "storyboard.vtt"


@dataclass(frozen=True)
class Storyboard:
    sprite: Path
    track: Path
    interval_s: float
    tiles: int
    tile_width: int
    tile_height: int


def interval_for(duration_s: float) -> float:
    """Seconds between tiles: every 2 s, more for videos past 100 tiles."""
    return max(MIN_INTERVAL_S, math.ceil(duration_s / MAX_TILES))


def _timestamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def thumbnails_track(
    duration_s: float, interval_s: float, tiles: int, tile_width: int, tile_height: int
) -> str:
    cues = ["WEBVTT", ""]
    for n in range(tiles):
        start = n * interval_s
        end = min((n + 1) * interval_s, duration_s)
        if end <= start:
            break
        x, y = (n % COLUMNS) * tile_width, (n // COLUMNS) * tile_height
        cues += [
            f"{_timestamp(start)} --> {_timestamp(end)}",
            f"{SPRITE}#xywh={x},{y},{tile_width},{tile_height}",
            "",
        ]
    return "\n".join(cues)


def make_storyboard(
    video: Path, out_dir: Path, *, duration_s: float, width: int, height: int
) -> Storyboard:
    """Write ``storyboard.jpg`` and ``storyboard.vtt`` for ``video`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    interval = interval_for(duration_s)
    tiles = max(1, math.ceil(duration_s / interval))
    tile_height = max(2, round(TILE_WIDTH * height / max(width, 1) / 2) * 2)
    rows = math.ceil(tiles / COLUMNS)
    columns = min(COLUMNS, tiles)
    run_ffmpeg(
        [
            "-y",
            "-skip_frame",
            "nokey",
            "-i",
            str(video.resolve()),
            "-an",
            "-vf",
            f"fps=1/{interval:g},scale={TILE_WIDTH}:{tile_height},tile={columns}x{rows}",
            "-frames:v",
            "1",
            "-q:v",
            "5",
            SPRITE,
        ],
        cwd=out_dir,
        total_duration_s=max(duration_s, 0.1),
        log_path=out_dir / "storyboard.log",
    )
    (out_dir / "storyboard.log").unlink(missing_ok=True)
    track = out_dir / TRACK
    track.write_text(
        thumbnails_track(duration_s, interval, tiles, TILE_WIDTH, tile_height), encoding="ascii"
    )
    return Storyboard(out_dir / SPRITE, track, interval, tiles, TILE_WIDTH, tile_height)
