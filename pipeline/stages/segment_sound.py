"""The sound of a segmented video: made once for the whole timeline, stored by content.

Music and narration run on across segment joins, so the sound is not cut
into segments: it is one piece of its own, rendered by any render worker in
parallel with the video segments (never after them), with the single pass's
sound code (music ducked under the narration, normalised: render._mix_sound)
and encoder settings.  Like a segment it is stored under a key derived from
all that shapes it: the music plan and its checksum, the narration clips
(their audio is content-addressed under ``tts/``) and timing, the length,
the audio encoder settings and the code version.  A re-render whose sound
inputs did not change (an edited card text, a changed photo) reuses it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from pipeline.stages.ffmpeg_runner import run_ffmpeg
from pipeline.stages.narration_mix import mix_narration
from pipeline.stages.narration_plan import clips_to_list
from pipeline.stages.render import _mix_sound, _safe_suffix, render_workspace
from pipeline.stages.render_errors import RenderCancelled, RenderError
from pipeline.stages.render_graph import EncodeSettings, GraphInputs, sound_job
from pipeline.stages.segment_keys import SEGMENTS_PREFIX
from pipeline.stages.storyboard import Storyboard

# Part of the sound's content key: bump when the mix, the normalisation or
# the encoder arguments change what the sound is.
SOUND_CODE_VERSION = "sound-1"
SOUND_FILE = "sound.m4a"


def sound_key(
    sb: Storyboard, asset_checksums: Mapping[str, str], encode: EncodeSettings | None = None
) -> str:
    """Storage prefix of the timeline's sound (the object is ``{prefix}/sound.m4a``)."""
    encode = encode or EncodeSettings()
    music = sb.to_dict()["music"]
    spec = {
        "kind": "sound",
        "total_frames": sb.total_frames,
        "fps": sb.fps,
        "music": music,
        "music_sha256": asset_checksums.get(sb.music.asset_id, "") if sb.music else None,
        "narration": clips_to_list(sb.narration),
        "audio_bitrate": encode.audio_bitrate,
        "code": SOUND_CODE_VERSION,
    }
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    return f"{SEGMENTS_PREFIX}{digest[:2]}/{digest}"


def sound_assets(sb: Storyboard) -> list[str]:
    """The asset ids the sound reads (the music, if any)."""
    return [sb.music.asset_id] if sb.music is not None else []


def render_sound(
    sb: Storyboard,
    out_dir: Path,
    *,
    asset_paths: Mapping[str, Path],
    narration_paths: Mapping[str, Path] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    encode: EncodeSettings | None = None,
) -> Path:
    """Encode the whole timeline's sound to ``out_dir/sound.m4a``."""
    cancelled = should_cancel or (lambda: False)
    with render_workspace(out_dir, ".sound-") as (work, finals):
        music = None
        if sb.music is not None:
            source = asset_paths.get(sb.music.asset_id)
            if source is None or not Path(source).is_file():
                raise RenderError(f"asset {sb.music.asset_id!r} has no local file", permanent=True)
            music = f"music{_safe_suffix(Path(source))}"
            os.symlink(Path(source).resolve(), work / music)
        narration = None
        if sb.narration:
            narration = "narration.wav"
            mix_narration(
                sb.narration,
                narration_paths or {},
                work / narration,
                sb.duration_s,
                cancelled=cancelled,
            )
        inputs = GraphInputs(cards={}, music=music, narration=narration)
        inputs, gain_db = _mix_sound(sb, inputs, work, cancelled)
        job = sound_job(sb, inputs, SOUND_FILE, encode=encode, gain_db=gain_db)
        for name, content in job.files.items():
            (work / name).write_text(content, encoding="utf-8")
        run_ffmpeg(
            job.args,
            cwd=work,
            total_duration_s=sb.duration_s,
            log_path=work / "sound.log",
            should_cancel=cancelled,
        )
        if cancelled():
            raise RenderCancelled()
        final = out_dir / SOUND_FILE
        os.replace(work / SOUND_FILE, final)
        finals.append(final)
        return final
