"""Captions from the voice: sentence cues at the speech's times, at most two
lines at the frame's width, WebVTT word timestamps, sentence-level SRT."""

from __future__ import annotations

import dataclasses
import itertools
import re
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.stages.captions import caption_metrics, card_cues, subtitle_cues, to_srt, to_webvtt
from pipeline.stages.fonts import resolve_chain
from pipeline.stages.narration_plan import SpeechClip, SpokenWord
from pipeline.stages.render import render_video
from pipeline.stages.script import parse_script
from pipeline.stages.storyboard import Storyboard
from pipeline.stages.storyboard_planner import build_storyboard
from pipeline.stages.text_cards import TextMeasurer
from tests.narration_clips import make_clips

LONG = (
    "This sentence is deliberately long, so long that at the width of a small "
    "frame it cannot fit on two caption lines and must be shown as several cues."
)


def storyboard(clips: tuple[SpeechClip, ...], *, subtitles: str = "none") -> Storyboard:
    sb = build_storyboard(
        parse_script(b"One.\n\nTwo."), quality="480p", target_duration=16, subtitles=subtitles
    )
    return dataclasses.replace(sb, narration=clips)


def stamp(text: str) -> float:
    h, m, s = text.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s.replace(",", "."))


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> tuple[tuple[SpeechClip, ...], dict]:
    return make_clips(
        [(0, "Short and sweet.", 0.5), (1, LONG, 3.0)], tmp_path_factory.mktemp("tts")
    )


def test_cues_follow_the_speech_and_fit_two_lines(clips):
    narration, _ = clips
    sb = storyboard(narration)
    cues = subtitle_cues(sb)
    short, long = narration
    # The first sentence is one cue, exactly while it is spoken.
    assert (cues[0].start_s, cues[0].end_s, cues[0].text) == (
        short.start_s,
        short.end_s,
        "Short and sweet.",
    )
    # The long one: several cues of at most two lines, each no wider than the
    # caption box, together exactly the sentence, covering its clip.
    rest = cues[1:]
    assert len(rest) >= 2
    assert rest[0].start_s == long.start_s and rest[-1].end_s == pytest.approx(long.end_s)
    assert all(a.end_s == b.start_s for a, b in itertools.pairwise(rest))
    metrics = caption_metrics(sb)
    measurer = TextMeasurer(resolve_chain(metrics.family), metrics.body_px)
    for cue in rest:
        lines = cue.text.split("\n")
        assert 1 <= len(lines) <= 2
        assert all(measurer.width(line) <= metrics.box_width for line in lines)
    assert " ".join(c.text.replace("\n", " ") for c in rest) == LONG
    # No cue while nothing is spoken.
    for cue in cues:
        assert any(c.start_s <= cue.start_s and cue.end_s <= c.end_s + 1e-9 for c in narration)


def test_webvtt_has_word_timestamps_and_srt_is_sentence_level(clips):
    narration, _ = clips
    cues = subtitle_cues(storyboard(narration))
    vtt = to_webvtt(cues)
    assert vtt.startswith("WEBVTT\n")
    blocks = vtt.strip().split("\n\n")[1:]
    assert len(blocks) == len(cues)
    for block in blocks:
        _, timing, *payload = block.split("\n")
        start, end = (stamp(t) for t in timing.split(" --> "))
        inline = [stamp(t) for t in re.findall(r"<(\d\d:\d\d:\d\d\.\d\d\d)>", "\n".join(payload))]
        words = " ".join(payload).split()
        assert len(inline) == len(words) - 1  # every word but the first, which starts the cue
        assert inline == sorted(inline) and all(start < t < end for t in inline)
    # "sweet." starts at its spoken time on the timeline.
    sweet = narration[0].start_s + narration[0].words[2].start_s
    assert f"<{to_stamp(sweet)}>sweet." in vtt
    srt = to_srt(cues)
    assert "<" not in srt and srt.count(" --> ") == len(cues)
    assert "00:00:00,500 --> " in srt


def to_stamp(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def test_unspaced_text_and_missing_word_timings():
    clip = SpeechClip(0, "今日は良い天気です。", "tts/x.wav", 1.0, 2.0)
    cues = subtitle_cues(storyboard((clip,)))
    assert [c.text for c in cues] == ["今日は良い天気です。"]
    assert (cues[0].start_s, cues[0].end_s) == (1.0, 3.0)
    timed = SpeechClip(
        0,
        "今日は 天気",
        "tts/y.wav",
        0.0,
        1.0,
        words=(SpokenWord("今日は", 0.0, 0.4), SpokenWord("天気", 0.5, 1.0)),
    )
    assert "今日は<00:00:00.500>" not in to_webvtt(subtitle_cues(storyboard((timed,))))
    assert "今日は <00:00:00.500>天気" in to_webvtt(subtitle_cues(storyboard((timed,))))


def test_silent_videos_keep_reading_speed_cues():
    sb = build_storyboard(parse_script(b"One.\n\nTwo."), quality="480p", subtitles="sidecar")
    assert subtitle_cues(sb) == card_cues(sb)
    assert "<" not in to_webvtt(subtitle_cues(sb))


def test_a_narrated_render_always_writes_captions(tmp_path: Path):
    narration, paths = make_clips([(0, "Captions are always there.", 0.4)], tmp_path)
    sb = build_storyboard(parse_script(b"Captions."), quality="480p", target_duration=3)
    sb = dataclasses.replace(sb, narration=narration)
    result = render_video(sb, tmp_path / "out", asset_paths={}, narration_paths=paths)
    assert sorted(result.subtitle_files) == ["srt", "vtt"]
    assert "Captions are always there." in result.subtitle_files["srt"].read_text()
    assert "<00:00:" in result.subtitle_files["vtt"].read_text()


def _highlight(frame: np.ndarray) -> np.ndarray:
    """Pixels of the karaoke highlight colour (#FFD54A) in the lower third."""
    lower = frame[frame.shape[0] * 2 // 3 :]
    r, g, b = lower[..., 0], lower[..., 1], lower[..., 2]
    return (r > 200) & (g > 170) & (g < 235) & (b < 130)


def test_karaoke_highlights_the_word_being_spoken(tmp_path: Path):
    narration, paths = make_clips([(0, "One two three four five six.", 0.8)], tmp_path)
    sb = build_storyboard(
        parse_script(b"[background: #202020 #202020]\nOne two three four five six."),
        quality="480p",
        target_duration=5,
        subtitles="karaoke",
    )
    sb = dataclasses.replace(sb, narration=narration)
    result = render_video(sb, tmp_path / "out", asset_paths={}, narration_paths=paths)
    clip = narration[0]
    words = clip.words

    def mid(i: int) -> float:
        return clip.start_s + (words[i].start_s + words[i + 1].start_s) / 2

    early, late = frame_at(result.primary, mid(0)), frame_at(result.primary, mid(4))
    a, b = _highlight(early), _highlight(late)
    assert a.sum() > 30 and b.sum() > 30  # a word is highlighted while speaking
    # ... and it is another word, further right, later on.
    assert np.nonzero(b)[1].mean() > np.nonzero(a)[1].mean() + 40
    # Before the sentence starts: no highlight.
    assert _highlight(frame_at(result.primary, 0.5)).sum() < 10


def frame_at(path: Path, t: float) -> np.ndarray:
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.video[0]):
            if frame.time >= t - 1e-6:
                return frame.to_ndarray(format="rgb24").astype(int)
    raise AssertionError(f"no frame at {t}")
