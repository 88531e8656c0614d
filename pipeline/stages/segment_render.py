"""Render one segment of a storyboard, and the content key it is stored under.

A segment renders as a small storyboard of its own (its scenes, plus a
static lead scene when it starts with a crossfade; see segment_plan) with
the frame numbers rebased, so the composition of every frame is exactly the
single pass's.  It is encoded video only, with the renditions' encoder
settings and keyframes on the whole video's 2-second grid, so segments join
by stream copy (segment_assemble).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import av

from pipeline.stages.ffmpeg_runner import MonotonicProgress, run_ffmpeg
from pipeline.stages.render import CARD_SHARE, _prepare_inputs, _release_memory, _scaled
from pipeline.stages.render_errors import RenderCancelled, RenderError
from pipeline.stages.render_graph import EncodeSettings, Window, build_ffmpeg_job
from pipeline.stages.segment_keys import SEGMENTS_PREFIX
from pipeline.stages.segment_plan import Segment
from pipeline.stages.storyboard import Storyboard

# Part of every segment's content key: bump when a change to the graph or the
# encoder arguments changes what a segment's frames look like.
SEGMENT_CODE_VERSION = "seg-1"


def sub_storyboard(sb: Storyboard, seg: Segment) -> tuple[Storyboard, Window]:
    """The segment as a storyboard of its own, and what part of it to encode."""
    lo = seg.first - 1 if seg.lead else seg.first
    base = sb.scenes[lo].start_frame
    scenes = []
    for k, scene in enumerate(sb.scenes[lo : seg.end]):
        moved = dataclasses.replace(scene, index=k, start_frame=scene.start_frame - base)
        if k == 0:  # nothing fades into the first picture here (a lead's own fade is trimmed)
            moved = dataclasses.replace(moved, transition_in="none", transition_in_frames=0)
        scenes.append(moved)
    sub = dataclasses.replace(
        sb,
        scenes=tuple(scenes),
        total_frames=seg.end_frame - base,
        narration=(),
        music=None,
        segments=(),
        subtitles="none" if sb.subtitles == "sidecar" else sb.subtitles,
    )
    window = Window(
        skip_frames=seg.start_frame - base,
        fade_in=seg.first == 0,
        fade_out=seg.end == len(sb.scenes),
        audio=False,
        keyframe_offset_frames=seg.start_frame,
    )
    return sub, window


def segment_key(
    sb: Storyboard,
    seg: Segment,
    asset_checksums: Mapping[str, str],
    encode: EncodeSettings | None = None,
) -> str:
    """Storage prefix of a segment's renditions, derived from all that shapes
    its frames: the sub-storyboard, the encoded window, the inputs' checksums,
    the encoder settings and the code version.  Equal content, equal key:
    across retries, redeliveries and re-renders of an edited script."""
    sub, window = sub_storyboard(sb, seg)
    assets = sorted({s.background.asset_id for s in sub.scenes if s.background.asset_id})
    spec = {
        "storyboard": {**sub.to_dict(), "warnings": []},
        "window": dataclasses.asdict(window),
        "assets": {a: asset_checksums.get(a, "") for a in assets},
        "encode": dataclasses.asdict(encode or EncodeSettings()),
        "code": SEGMENT_CODE_VERSION,
    }
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    return f"{SEGMENTS_PREFIX}{digest[:2]}/{digest}"


def render_segment(
    sb: Storyboard,
    seg: Segment,
    out_dir: Path,
    *,
    asset_paths: Mapping[str, Path],
    on_progress: Callable[[float], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    encode: EncodeSettings | None = None,
    timeout_s: float | None = None,
    memory_limit_bytes: int | None = None,
) -> dict[str, Path]:
    """Render ``seg`` into ``out_dir``: quality → video-only MP4, best first.

    Cancel, progress and failures behave as in ``render_video``."""
    started = time.monotonic()
    progress = MonotonicProgress(on_progress)
    cancelled = should_cancel or (lambda: False)
    sub, window = sub_storyboard(sb, seg)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".segment-", dir=out_dir))
    try:
        inputs = _prepare_inputs(sub, work, asset_paths, {}, progress, cancelled)
        _release_memory()
        outputs = [(r, f"seg_{r.quality}.mp4") for r in sb.renditions]
        job = build_ffmpeg_job(sub, inputs, outputs, encode=encode, window=window)
        for name, content in job.files.items():
            (work / name).write_text(content, encoding="utf-8")
        run_ffmpeg(
            job.args,
            cwd=work,
            total_duration_s=sub.duration_s,
            log_path=work / "ffmpeg.log",
            on_progress=_scaled(progress, CARD_SHARE, 1 - CARD_SHARE - 0.01),
            should_cancel=cancelled,
            timeout_s=None
            if timeout_s is None
            else max(1.0, timeout_s - (time.monotonic() - started)),
            memory_limit_bytes=memory_limit_bytes,
        )
        result: dict[str, Path] = {}
        for rendition, name in outputs:
            produced = work / name
            frames = count_frames(produced)
            if frames != seg.frames:
                raise RenderError(
                    f"{seg.describe()}: {rendition.quality} has {frames} frames,"
                    f" expected {seg.frames}",
                    permanent=True,
                )
            final = out_dir / f"{rendition.quality}.mp4"
            produced.replace(final)
            result[rendition.quality] = final
        if cancelled():
            raise RenderCancelled()
        progress(1.0)
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def count_frames(path: Path) -> int:
    """Video frames in a file, counted from its packets (no decoding)."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return sum(1 for p in container.demux(stream) if p.size)
    except (av.error.FFmpegError, IndexError) as exc:
        raise RenderError(f"segment output is unreadable: {exc}", permanent=False) from exc
