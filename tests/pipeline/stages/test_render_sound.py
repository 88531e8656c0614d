"""The render's sound: narration placed on the timeline, music ducked under
it, loudness normalised, one AAC stream.  Real speech (espeak-ng), real
ffmpeg, measured with ffmpeg's own EBU R128 meter."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.stages.ffmpeg_runner import ffmpeg_executable
from pipeline.stages.narration_mix import RATE, mix_narration
from pipeline.stages.render import RenderError, render_video
from pipeline.stages.script import parse_script
from pipeline.stages.storyboard import Storyboard
from pipeline.stages.storyboard_planner import build_storyboard
from tests.narration_clips import make_clips

TONE_HZ = 1000
SENTENCES = [
    (0, "Hello, this is the first sentence.", 2.5),
    (1, "And here is the second one, a little later.", 6.5),
]


@pytest.fixture(scope="module")
def sound(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sound")
    tone = root / "tone.wav"
    subprocess.run(
        [
            *(ffmpeg_executable(), "-v", "error", "-y", "-f", "lavfi"),
            *("-i", f"sine=frequency={TONE_HZ}:duration=20", "-af", "volume=0.5", str(tone)),
        ],
        check=True,
    )
    return {"tone": tone, "root": root}


def narrated(sound: dict[str, Path], *, music: bool) -> tuple[Storyboard, dict[str, Path]]:
    raw = b"First scene speaks.\n\nSecond scene speaks too."
    if music:
        raw = b"[music: asset:tone]\n" + raw
    sb = build_storyboard(
        parse_script(raw),
        quality="480p",
        target_duration=11,
        assets={"tone": "audio/wav"} if music else None,
    )
    clips, paths = make_clips(SENTENCES, sound["root"])
    return dataclasses.replace(sb, narration=clips), paths


def ebur128(path: Path) -> tuple[float, float]:
    """(integrated loudness LUFS, true peak dBTP) from ffmpeg's meter."""
    err = subprocess.run(
        [
            *(ffmpeg_executable(), "-hide_banner", "-nostats", "-i", str(path)),
            *("-af", "ebur128=peak=true", "-f", "null", "-"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    summary = err[err.rindex("Summary:") :]
    integrated = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))  # type: ignore[union-attr]
    peak = float(re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1))  # type: ignore[union-attr]
    return integrated, peak


def decode_audio(path: Path) -> tuple[np.ndarray, list[str]]:
    """Mono float samples at RATE and the codec of every audio stream."""
    with av.open(str(path)) as container:
        codecs = [s.codec_context.name for s in container.streams.audio]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        parts = [
            f.to_ndarray().reshape(-1)
            for frame in container.decode(audio=0)
            for f in resampler.resample(frame)
        ]
    return np.concatenate(parts), codecs


def window(samples: np.ndarray, start_s: float, length_s: float = 1.0) -> np.ndarray:
    return samples[round(start_s * RATE) : round((start_s + length_s) * RATE)]


def rms_db(samples: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(samples**2)) + 1e-12))


def tone_db(samples: np.ndarray) -> float:
    """Level of the music (a pure tone) alone: its FFT bin, not the speech."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    bin_ = round(TONE_HZ * len(samples) / RATE)
    return float(20 * np.log10(spectrum[bin_ - 2 : bin_ + 3].max() + 1e-12))


def test_narration_and_ducked_music_at_target_loudness(tmp_path, sound):
    sb, paths = narrated(sound, music=True)
    result = render_video(
        sb, tmp_path / "out", asset_paths={"tone": sound["tone"]}, narration_paths=paths
    )
    for path in result.renditions.values():
        integrated, peak = ebur128(path)
        assert integrated == pytest.approx(-16, abs=1)
        assert peak <= -1.0
        samples, codecs = decode_audio(path)
        assert codecs == ["aac"]
        assert len(samples) / RATE == pytest.approx(sb.duration_s, abs=0.1)
    samples, _ = decode_audio(result.primary)
    first, second = sb.narration
    # Before the first sentence only music plays; during it the tone is
    # ducked well under its solo level while speech is what is heard.
    music_alone = tone_db(window(samples, 1.2, 1.0))
    under_speech = tone_db(window(samples, first.start_s + 0.3, 1.0))
    assert under_speech < music_alone - 6
    # Between the sentences the music comes back (release), then ducks again.
    gap = first.end_s + (second.start_s - first.end_s) / 2
    assert tone_db(window(samples, gap, 0.5)) > under_speech + 3
    assert tone_db(window(samples, second.start_s + 0.3, 1.0)) < music_alone - 6


def test_narration_alone_starts_at_its_time(tmp_path, sound):
    sb, paths = narrated(sound, music=False)
    result = render_video(sb, tmp_path / "out", asset_paths={}, narration_paths=paths)
    integrated, peak = ebur128(result.primary)
    assert integrated == pytest.approx(-16, abs=1) and peak <= -1.0
    samples, codecs = decode_audio(result.primary)
    assert codecs == ["aac"]
    first = sb.narration[0]
    # Silence until the sentence starts (not a shifted or early clip) ...
    assert rms_db(window(samples, 0.1, first.start_s - 0.2)) < -60
    # ... then speech at speaking level.
    assert rms_db(window(samples, first.start_s, 1.0)) > -30


def test_overlapping_clips_add_and_track_is_exact(tmp_path, sound):
    clips, paths = make_clips([(0, "One.", 0.5), (0, "Two, overlapping.", 0.7)], sound["root"])
    out = tmp_path / "n.wav"
    mix_narration(clips, paths, out, 3.0)
    samples, _ = decode_audio(out)
    assert len(samples) == 3 * RATE
    assert rms_db(samples[: int(0.45 * RATE)]) < -80
    assert rms_db(window(samples, 0.8, 0.3)) > -40


def test_missing_clip_is_a_permanent_failure(tmp_path, sound):
    sb, _paths = narrated(sound, music=False)
    with pytest.raises(RenderError) as err:
        render_video(sb, tmp_path / "out", asset_paths={}, narration_paths={})

    assert err.value.permanent
    assert list((tmp_path / "out").glob("*.mp4")) == []
