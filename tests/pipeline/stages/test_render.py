"""Render real videos (tiny, 480p) with the bundled ffmpeg and probe them with PyAV."""

from __future__ import annotations

import itertools
import signal
import struct
import subprocess
import threading
import time
from pathlib import Path

import av
import numpy as np
import psutil
import pytest

from pipeline.stages.ffmpeg_runner import ffmpeg_executable, is_permanent_failure, run_ffmpeg
from pipeline.stages.render import (
    RenderCancelled,
    RenderError,
    RenderTimeout,
    render_video,
    subtitle_cues,
)
from pipeline.stages.render_graph import any_of
from pipeline.stages.script import parse_script
from pipeline.stages.storyboard_planner import build_storyboard
from tests.support.media import striped_jpeg

SCRIPT = b"""# Welcome
Plain text becomes a video.

[background: asset:photo]
A photo pans behind this text.

Third card, back to a gradient.
"""


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("media")
    photo = striped_jpeg(root / "photo.jpg", 1200, 800, every=60)
    tone = root / "tone.wav"
    clip = root / "clip.mp4"
    ff = ffmpeg_executable()
    subprocess.run(
        [ff, "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=3", str(tone)],
        check=True,
    )
    subprocess.run(
        [
            *(ff, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=1.5"),
            *("-c:v", "libx264", "-pix_fmt", "yuv420p", str(clip)),
        ],
        check=True,
    )
    return {"photo": photo, "tone": tone, "clip": clip}


def probe(path: Path) -> dict:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio
        return {
            "duration": (container.duration or 0) / 1_000_000,
            "codec": video.codec_context.name,
            "pix_fmt": video.codec_context.pix_fmt,
            "size": (video.codec_context.width, video.codec_context.height),
            "fps": float(video.average_rate or 0),
            "frames": video.frames,
            "audio": [a.codec_context.name for a in audio],
        }


def top_level_boxes(path: Path) -> list[str]:
    boxes = []
    with open(path, "rb") as handle:
        while header := handle.read(8):
            size, kind = struct.unpack(">I4s", header)
            if size == 1:
                size = struct.unpack(">Q", handle.read(8))[0] - 8
            boxes.append(kind.decode("latin-1"))
            handle.seek(size - 8, 1)
    return boxes


def frame_at(path: Path, t: float) -> np.ndarray:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if frame.time >= t - 1e-6:
                return frame.to_ndarray(format="rgb24").astype(int)
    raise AssertionError(f"no frame at {t}")


def test_render_matches_storyboard(tmp_path, media):
    script = parse_script(SCRIPT + b"\n[music: asset:tone]")
    sb = build_storyboard(
        script,
        quality="480p",
        target_duration=4.5,
        assets={"photo": "image/jpeg", "tone": "audio/wav"},
        subtitles="sidecar",
    )
    seen: list[float] = []
    result = render_video(
        sb,
        tmp_path / "out",
        asset_paths={"photo": media["photo"], "tone": media["tone"]},
        on_progress=seen.append,
    )
    path = result.renditions["480p"]
    facts = probe(path)
    assert facts["duration"] == pytest.approx(sb.duration_s, abs=0.1)
    assert facts["codec"] == "h264" and facts["pix_fmt"] == "yuv420p"
    assert facts["size"] == (854, 480) == result.sizes["480p"]
    assert facts["fps"] == pytest.approx(30)
    assert facts["frames"] == sb.total_frames
    assert facts["audio"] == ["aac"]
    boxes = top_level_boxes(path)
    assert boxes.index("moov") < boxes.index("mdat")  # +faststart
    # Progress: monotonic, in range, ends at exactly 1.0.
    assert seen == sorted(seen) and seen[-1] == 1.0 and all(0 <= p <= 1 for p in seen)
    assert len(seen) >= 3
    # Subtitles: one cue per card, well-formed files.
    vtt = result.subtitle_files["vtt"].read_text()
    srt = result.subtitle_files["srt"].read_text()
    assert vtt.startswith("WEBVTT") and vtt.count(" --> ") == len(sb.scenes)
    assert "00:00:00,000 --> " in srt and "Plain text becomes a video." in srt
    # The poster time is inside a card, outside every fade.
    assert 0 < result.poster_time_s < sb.duration_s
    # Only the outputs remain (no temp files).
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "subtitles.srt",
        "subtitles.vtt",
        "video_480p.mp4",
    ]
    # The photo scene shows the photo (yellow stripes), the others do not.
    photo_scene = sb.scenes[1]
    t = (photo_scene.start_frame + photo_scene.slot_frames * 0.5) / sb.fps
    pixels = frame_at(path, t)
    yellow = (pixels[..., 0] > 180) & (pixels[..., 1] > 180) & (pixels[..., 2] < 100)
    assert yellow.mean() > 0.02


def test_renditions_silent_audio_and_crossfade(tmp_path):
    raw = (
        b"[background: #FF0000 #FF0000]\n[duration: 1.5s]\n\n"
        b"[background: #0000FF #0000FF]\n[duration: 1.5s]"
    )
    sb = build_storyboard(parse_script(raw), quality="720p")
    assert [r.quality for r in sb.renditions] == ["720p", "480p"]
    result = render_video(sb, tmp_path, asset_paths={}, strategy="separate")
    assert probe(result.renditions["720p"])["size"] == (1280, 720)
    small = probe(result.renditions["480p"])
    assert small["size"] == (854, 480)
    assert small["audio"] == ["aac"]  # a silent track when there is no music
    assert small["duration"] == pytest.approx(3.0, abs=0.1)
    # The crossfade: red before, a red/blue mix in the middle, blue after.
    second = sb.scenes[1]
    start, fade = second.start_frame / 30, second.transition_in_frames / 30
    before = frame_at(result.renditions["480p"], start - 0.3)[240, 427]
    middle = frame_at(result.renditions["480p"], start + fade / 2)[240, 427]
    after = frame_at(result.renditions["480p"], start + fade + 0.2)[240, 427]
    assert before[0] > 150 and before[2] < 60
    assert after[2] > 150 and after[0] < 60
    assert 50 < middle[0] < 200 and 50 < middle[2] < 200


def test_video_background_and_burned_subtitles(tmp_path, media):
    raw = b"[background: asset:clip]\n[duration: 2s]\nCaptioned clip.\n\nThe end."
    sb = build_storyboard(
        parse_script(raw),
        quality="720p",
        renditions=["720p", "480p"],
        assets={"clip": "video/mp4"},
        subtitles="burned",
    )
    # One ffmpeg run, split into two renditions (the default strategy).
    result = render_video(sb, tmp_path, asset_paths={"clip": media["clip"]})
    facts = probe(result.primary)
    assert facts["duration"] == pytest.approx(sb.duration_s, abs=0.1)
    assert probe(result.renditions["480p"])["size"] == (854, 480)
    assert result.subtitle_files == {}
    # The clip moves (and loops past its 1.5 s): frames differ over time.
    a, b = frame_at(result.primary, 0.5), frame_at(result.primary, 1.7)
    assert np.abs(a - b).mean() > 5


def test_cancel_stops_ffmpeg_quickly_and_leaves_nothing(tmp_path):
    text = b"\n\n".join(b"Scene %d has a little text on it." % i for i in range(12))
    sb = build_storyboard(parse_script(text), quality="480p", target_duration=90)
    out = tmp_path / "out"
    asked: list[float] = []
    lock = threading.Lock()

    def on_progress(fraction: float) -> None:
        with lock:
            if fraction > 0.08 and not asked:
                asked.append(time.monotonic())

    def should_cancel() -> bool:
        with lock:
            return bool(asked)

    with pytest.raises(RenderCancelled):
        render_video(sb, out, asset_paths={}, on_progress=on_progress, should_cancel=should_cancel)
    stopped = time.monotonic()
    assert asked, "never got far enough to cancel"
    assert stopped - asked[0] < 2.0
    assert list(out.iterdir()) == []


def test_timeout_is_transient(tmp_path):
    sb = build_storyboard(parse_script(b"A\n\nB\n\nC"), quality="480p", target_duration=60)
    with pytest.raises(RenderTimeout) as info:
        render_video(sb, tmp_path, asset_paths={}, timeout_s=1.0)
    assert info.value.permanent is False
    assert list(tmp_path.iterdir()) == []


def test_bad_assets_are_permanent_failures(tmp_path):
    raw = b"[background: asset:x]\nHello"
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    sb = build_storyboard(parse_script(raw), quality="480p", assets={"x": "video/mp4"})
    with pytest.raises(RenderError) as info:
        render_video(sb, tmp_path / "o1", asset_paths={"x": bad})
    assert info.value.permanent
    assert list((tmp_path / "o1").iterdir()) == []

    img_sb = build_storyboard(parse_script(raw), quality="480p", assets={"x": "image/png"})
    with pytest.raises(RenderError, match="cannot be read") as info:
        render_video(img_sb, tmp_path / "o2", asset_paths={"x": bad})
    assert info.value.permanent
    with pytest.raises(RenderError, match="no local file") as info:
        render_video(img_sb, tmp_path / "o3", asset_paths={})
    assert info.value.permanent


def test_failure_classification():
    assert is_permanent_failure(1, "x.mp4: Invalid data found when processing input")
    assert not is_permanent_failure(1, "av_interleaved_write_frame(): No space left on device")
    assert is_permanent_failure(-9, "")  # the OOM killer: the same plan would die again
    assert not is_permanent_failure(-15, "")  # a shutdown
    assert not is_permanent_failure(1, "something odd happened")


def test_subtitle_cues_switch_mid_fade():
    sb = build_storyboard(parse_script(b"One.\n\nTwo.\n\nThree."), quality="480p")
    cues = subtitle_cues(sb)
    assert [c.text for c in cues] == ["One.", "Two.", "Three."]
    assert cues[0].start_s == 0 and cues[-1].end_s == pytest.approx(sb.duration_s)
    for a, b in itertools.pairwise(cues):
        assert a.end_s == b.start_s


def test_long_enable_expressions_parse_in_ffmpeg():
    # ffmpeg rejects a flat sum of ~100 terms; a 10-minute video has more fades.
    expr = any_of([f"eq(n,{i * 7})" for i in range(400)])
    ff = ffmpeg_executable()
    graph = f"[0:v][1:v]blend=all_mode=normal:enable='{expr}'"
    src = ["-f", "lavfi", "-i", "color=s=32x32:d=0.2"]
    done = subprocess.run(
        [ff, "-v", "error", *src, *src, "-filter_complex", graph, "-f", "null", "-"],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_an_ffmpeg_killed_like_the_oom_killer_does_is_permanent(tmp_path):
    """SIGKILL from outside (as the OOM killer sends it) ends the plan: no retry loop."""
    killed: list[int] = []

    def kill_ffmpeg(fraction: float) -> None:
        if killed:
            return
        for child in psutil.Process().children(recursive=True):
            if "ffmpeg" in child.name():
                child.send_signal(signal.SIGKILL)
                killed.append(child.pid)

    with pytest.raises(RenderError, match="SIGKILL") as info:
        run_ffmpeg(
            [
                "-re",
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=64x48:rate=25",
                "-t",
                "600",
                "-f",
                "null",
                "-",
            ],
            cwd=tmp_path,
            total_duration_s=600,
            log_path=tmp_path / "ffmpeg.log",
            on_progress=kill_ffmpeg,
        )
    assert killed
    assert info.value.permanent
