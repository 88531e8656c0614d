"""Join rendered segments into the video's renditions, with the sound made once.

Per rendition the segments are joined by ffmpeg's concat demuxer with stream
copy (no re-encode: equal encoder settings and closed GOPs starting each
segment make the H.264 stream valid across joins), and the sound of the
whole timeline (music and narration mixed, normalised as in a single pass:
render._mix_sound) is muxed in, so it runs continuously across joins.
The result is checked like a single pass's (size, duration) and reported as
a RenderResult.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pipeline.stages.ffmpeg_runner import run_ffmpeg
from pipeline.stages.narration_mix import mix_narration
from pipeline.stages.render import (
    RenderResult,
    _mix_sound,
    _safe_suffix,
    _verify,
    finished_render,
)
from pipeline.stages.render_errors import RenderCancelled
from pipeline.stages.render_graph import EncodeSettings, GraphInputs, sound_job
from pipeline.stages.storyboard import Storyboard


def assemble_video(
    sb: Storyboard,
    segment_files: Mapping[str, Sequence[Path]],
    out_dir: Path,
    *,
    asset_paths: Mapping[str, Path],
    narration_paths: Mapping[str, Path] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    encode: EncodeSettings | None = None,
) -> RenderResult:
    """``segment_files``: quality → the segments' video-only MP4s in order."""
    started = time.monotonic()
    cancelled = should_cancel or (lambda: False)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".assemble-", dir=out_dir))
    finals: list[Path] = []
    try:
        sound = _sound(sb, work, asset_paths, narration_paths or {}, cancelled, encode)
        renditions: dict[str, Path] = {}
        for rendition in sb.renditions:
            files = segment_files[rendition.quality]
            playlist = ["ffconcat version 1.0"]
            for number, path in enumerate(files):
                link = work / f"{rendition.quality}_{number:04d}.mp4"
                os.symlink(Path(path).resolve(), link)
                playlist.append(f"file '{link.name}'")
            (work / f"{rendition.quality}.ffconcat").write_text("\n".join(playlist) + "\n")
            name = f"out_{rendition.quality}.mp4"
            run_ffmpeg(
                [
                    *("-hide_banner", "-nostdin", "-y", "-loglevel", "error"),
                    *("-f", "concat", "-safe", "0", "-i", f"{rendition.quality}.ffconcat"),
                    *("-i", sound, "-map", "0:v", "-map", "1:a", "-c", "copy"),
                    *("-movflags", "+faststart", "-t", f"{sb.duration_s:.6f}", name),
                ],
                cwd=work,
                total_duration_s=sb.duration_s,
                log_path=work / "concat.log",
                should_cancel=cancelled,
            )
            _verify(work / name, rendition, sb.duration_s)
            final = out_dir / f"video_{rendition.quality}.mp4"
            os.replace(work / name, final)
            finals.append(final)
            renditions[rendition.quality] = final
        if cancelled():
            raise RenderCancelled()
        return finished_render(
            sb, out_dir, renditions, finals, started=started, strategy="segments"
        )
    except BaseException:
        for path in finals:
            path.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _sound(
    sb: Storyboard,
    work: Path,
    asset_paths: Mapping[str, Path],
    narration_paths: Mapping[str, Path],
    cancelled: Callable[[], bool],
    encode: EncodeSettings | None,
) -> str:
    """Encode the timeline's sound to ``sound.m4a`` (the single pass's sound code)."""
    music = None
    if sb.music is not None:
        source = Path(asset_paths[sb.music.asset_id])
        music = f"music{_safe_suffix(source)}"
        os.symlink(source.resolve(), work / music)
    narration = None
    if sb.narration:
        narration = "narration.wav"
        mix_narration(
            sb.narration, narration_paths, work / narration, sb.duration_s, cancelled=cancelled
        )
    inputs = GraphInputs(cards={}, music=music, narration=narration)
    inputs, gain_db = _mix_sound(sb, inputs, work, cancelled)
    job = sound_job(sb, inputs, "sound.m4a", encode=encode, gain_db=gain_db)
    for name, content in job.files.items():
        (work / name).write_text(content, encoding="utf-8")
    run_ffmpeg(
        job.args,
        cwd=work,
        total_duration_s=sb.duration_s,
        log_path=work / "sound.log",
        should_cancel=cancelled,
    )
    return "sound.m4a"
