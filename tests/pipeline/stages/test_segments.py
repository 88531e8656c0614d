"""Segmented rendering: plan, per-segment render, stream-copy join + one sound.

The joined video is compared with a single pass of the same storyboard:
same frame count and timestamps, same pictures (within encoder noise) at
every join, the sound continuous across joins.
"""

from __future__ import annotations

import dataclasses
import itertools
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.stages.ffmpeg_runner import ffmpeg_executable
from pipeline.stages.render import render_video
from pipeline.stages.render_budget import segment_dynamic_cap, top_pixels
from pipeline.stages.render_graph import EncodeSettings
from pipeline.stages.script import parse_script
from pipeline.stages.segment_assemble import assemble_video
from pipeline.stages.segment_plan import plan_bounds, segments
from pipeline.stages.segment_render import render_segment, segment_key
from pipeline.stages.segment_sound import render_sound, sound_key
from pipeline.stages.storyboard import Storyboard
from pipeline.stages.storyboard_planner import build_storyboard
from tests.support.media import striped_jpeg

SCENES = [
    "# Opening\nA gradient card.",
    "[background: asset:photo]\nA photo behind text.",
    "Back to a gradient, with a crossfade in.",
    "Another gradient card.",
    "[background: asset:photo]\nThe photo again.",
    "[background: asset:photo]\nPhoto into photo.",
    "A last card.",
]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("media")
    photo = striped_jpeg(root / "photo.jpg", 1000, 700, every=50)
    tone = root / "tone.wav"
    subprocess.run(
        [
            *(ffmpeg_executable(), "-v", "error", "-y", "-f", "lavfi"),
            *("-i", "sine=frequency=440:duration=30", str(tone)),
        ],
        check=True,
    )
    return {"photo": photo, "tone": tone}


def storyboard(music: bool = True) -> Storyboard:
    raw = "\n\n".join(f"[duration: 2s]\n{s}" for s in SCENES)
    if music:
        raw = "[music: asset:tone]\n\n" + raw
    assets = {"photo": "image/jpeg", "tone": "audio/wav"}
    sb = build_storyboard(parse_script(raw.encode()), quality="480p", assets=assets)
    bounds = plan_bounds(sb, single_pass_s=0, target_s=1.0, max_s=2.5)
    return dataclasses.replace(sb, segments=tuple(bounds))


def frames(path: Path) -> tuple[list[float], list[np.ndarray]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times, pictures = [], []
        assert stream.time_base is not None
        for frame in container.decode(stream):
            assert frame.pts is not None
            times.append(round(float(frame.pts * stream.time_base), 4))
            pictures.append(frame.to_ndarray(format="gray").astype(np.int16))
    return times, pictures


def sound(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        chunks = [
            f.to_ndarray().reshape(-1)[::2] if f.format.is_planar is False else f.to_ndarray()[0]
            for f in container.decode(audio=0)
        ]
    return np.concatenate(chunks)


def test_plan_cuts_only_where_a_segment_can_start() -> None:
    sb = storyboard()
    parts = segments(sb, list(sb.segments))
    assert len(parts) >= 2
    assert parts[0].start_frame == 0 and parts[-1].end_frame == sb.total_frames
    # Every scene its own segment here: every kind of join (card/photo into
    # card/photo, with its crossfade) is exercised below.
    assert len(parts) == len(sb.scenes)
    for a, b in itertools.pairwise(parts):
        assert a.end_frame == b.start_frame and a.end == b.first
        assert b.lead == (sb.scenes[b.first].transition_in_frames > 0)
    # Short videos stay one pass (no extra hop).
    assert plan_bounds(storyboard()) == [(0, len(sb.scenes))]


def test_the_per_segment_cap_bounds_photos_per_segment() -> None:
    raw = "\n\n".join(f"[background: asset:p]\n[duration: 5s]\nScene {i}" for i in range(40))
    sb = build_storyboard(parse_script(raw.encode()), quality="720p", assets={"p": "image/png"})
    cap = segment_dynamic_cap(top_pixels("720p"))
    bounds = plan_bounds(sb)
    assert len(bounds) > 1
    assert all(b - a <= cap for a, b in bounds)


def test_segment_keys_follow_content_only(media: dict[str, Path]) -> None:
    sb = storyboard()
    parts = segments(sb, list(sb.segments))
    sums = {"photo": "a" * 64}
    keys = [segment_key(sb, p, sums) for p in parts]
    assert len(set(keys)) == len(keys)
    assert keys == [segment_key(storyboard(), p, sums) for p in parts]
    # Another photo changes only the segments that show it.
    other = [segment_key(sb, p, {"photo": "b" * 64}) for p in parts]
    photo_in = [
        any(s.background.asset_id for s in sb.scenes[p.first - p.lead : p.end]) for p in parts
    ]
    assert [k != o for k, o in zip(keys, other, strict=True)] == photo_in
    assert segment_key(sb, parts[0], sums, EncodeSettings(preset="medium")) != keys[0]


def test_the_sound_key_follows_the_sound_inputs_only() -> None:
    sb = storyboard()
    sums = {"photo": "a" * 64, "tone": "c" * 64}
    key = sound_key(sb, sums)
    assert key.startswith("segments/")
    assert key not in {segment_key(sb, p, sums) for p in segments(sb, list(sb.segments))}
    # Another photo or an edited card text leaves the sound as it was ...
    assert sound_key(sb, {**sums, "photo": "b" * 64}) == key
    edited = dataclasses.replace(
        sb, scenes=(dataclasses.replace(sb.scenes[0], lines=("Edited.",)), *sb.scenes[1:])
    )
    assert sound_key(edited, sums) == key
    # ... other music, a louder one, no music or another length do not.
    assert sound_key(sb, {**sums, "tone": "d" * 64}) != key
    assert sb.music is not None
    louder = dataclasses.replace(sb, music=dataclasses.replace(sb.music, volume=1.0))
    assert sound_key(louder, sums) != key
    assert sound_key(storyboard(music=False), sums) != key
    assert sound_key(dataclasses.replace(sb, total_frames=sb.total_frames + 1), sums) != key
    assert sound_key(sb, sums, EncodeSettings(audio_bitrate="96k")) != key


def test_joined_segments_match_a_single_pass(tmp_path: Path, media: dict[str, Path]) -> None:
    sb = storyboard()
    assets = {"photo": media["photo"], "tone": media["tone"]}
    single = render_video(sb, tmp_path / "single", asset_paths=assets)
    parts = segments(sb, list(sb.segments))
    files: dict[str, list[Path]] = {r.quality: [] for r in sb.renditions}
    for part in parts:
        out = render_segment(sb, part, tmp_path / f"seg{part.index}", asset_paths=assets)
        for quality, path in out.items():
            files[quality].append(path)
    track = render_sound(sb, tmp_path / "sound", asset_paths=assets)
    joined = assemble_video(sb, files, track, tmp_path / "joined")
    for quality in single.renditions:
        times_a, pics_a = frames(single.renditions[quality])
        times_b, pics_b = frames(joined.renditions[quality])
        assert len(times_b) == len(times_a) == sb.total_frames
        assert times_b == times_a  # no frozen or dropped frame, no timestamp jump
        # Same pictures (two encodes of the same frames differ by noise only);
        # a shifted or repeated frame at a join would differ by far more.
        for n in {p.start_frame for p in parts} | {p.start_frame - 1 for p in parts[1:]}:
            assert np.abs(pics_a[n] - pics_b[n]).mean() < 3, (quality, n)
    # The sound is the single pass's sound: continuous, no click at a join.
    a = sound(single.renditions["480p"])
    b = sound(joined.renditions["480p"])
    assert abs(len(a) - len(b)) <= 1024
    n = min(len(a), len(b))
    assert np.abs(a[:n] - b[:n]).max() < 0.02
    jumps = np.abs(np.diff(b[:n]))
    assert jumps.max() < 0.2  # a 440 Hz tone moves < 0.06 per sample at 48 kHz
