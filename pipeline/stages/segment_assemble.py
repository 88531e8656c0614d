"""Join rendered segments and the timeline's sound into the video's renditions.

The join is pure stream copy, in one ffmpeg run for every rendition: per
rendition the segments are read by the concat demuxer (equal encoder
settings and closed GOPs starting each segment make the H.264 stream valid
across joins) and the sound, rendered once for the whole timeline by its own
message (segment_sound), is muxed in, so it runs continuously across joins.
Nothing is decoded or encoded here: the join's cost is the bytes it copies.
The result is checked like a single pass's (size, duration) and reported as
a RenderResult.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pipeline.stages.ffmpeg_runner import run_ffmpeg
from pipeline.stages.render import RenderResult, _collect, finished_render, render_workspace
from pipeline.stages.render_errors import RenderCancelled
from pipeline.stages.storyboard import Storyboard


def assemble_video(
    sb: Storyboard,
    segment_files: Mapping[str, Sequence[Path]],
    sound: Path,
    out_dir: Path,
    *,
    should_cancel: Callable[[], bool] | None = None,
) -> RenderResult:
    """``segment_files``: quality → the segments' video-only MP4s in order;
    ``sound``: the whole timeline's encoded sound (segment_sound)."""
    started = time.monotonic()
    cancelled = should_cancel or (lambda: False)
    with render_workspace(out_dir, ".assemble-") as (work, finals):
        os.symlink(Path(sound).resolve(), work / "sound.m4a")
        args = ["-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
        for rendition in sb.renditions:
            playlist = ["ffconcat version 1.0"]
            for number, path in enumerate(segment_files[rendition.quality]):
                link = work / f"{rendition.quality}_{number:04d}.mp4"
                os.symlink(Path(path).resolve(), link)
                playlist.append(f"file '{link.name}'")
            (work / f"{rendition.quality}.ffconcat").write_text("\n".join(playlist) + "\n")
            args += ["-f", "concat", "-safe", "0", "-i", f"{rendition.quality}.ffconcat"]
        args += ["-i", "sound.m4a"]
        sound_input = len(sb.renditions)
        for number, rendition in enumerate(sb.renditions):
            args += ["-map", f"{number}:v", "-map", f"{sound_input}:a", "-c", "copy"]
            args += ["-movflags", "+faststart", "-t", f"{sb.duration_s:.6f}"]
            args.append(f"out_{rendition.quality}.mp4")
        run_ffmpeg(
            args,
            cwd=work,
            total_duration_s=sb.duration_s,
            log_path=work / "concat.log",
            should_cancel=cancelled,
        )
        outputs = [(r, f"out_{r.quality}.mp4") for r in sb.renditions]
        renditions = _collect(sb, work, out_dir, outputs, finals)
        if cancelled():
            raise RenderCancelled()
        return finished_render(
            sb, out_dir, renditions, finals, started=started, strategy="segments"
        )
