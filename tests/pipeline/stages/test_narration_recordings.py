"""Uploaded recordings as narration: conversion, speech spans, word alignment."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest

from pipeline.stages.ffmpeg_runner import ffmpeg_executable
from pipeline.stages.narrate.recording import (
    SAMPLE_RATE,
    RecordingError,
    convert_recording,
    spans_from_silences,
)
from pipeline.stages.narrate.wav import read_wav
from pipeline.stages.narrate.words import align_words, syllables, text_words
from pipeline.stages.script import parse_script
from tests.support.recordings import spoken_recording

PHRASES = [
    "The quick brown fox jumps over the lazy dog.",
    "Then it runs away, far into the forest.",
    "Nobody saw it again.",
]


def test_a_recording_is_a_scenes_narration_in_the_script():
    script = parse_script(b"# Title\n[narration: asset:file_abc123]\nThe text it says.")
    scene = script.scenes[0]
    assert scene.recording == "file_abc123"
    assert scene.spoken_text == ""  # nothing is synthesized
    assert scene.caption_text == "Title The text it says."
    assert scene.narrated
    assert script.narration_assets == [(1, scene)]
    silent = parse_script(b"[silent]\n[narration: asset:file_abc123]\nQuiet.").scenes[0]
    assert silent.recording is None


def test_words_follow_the_phrases_of_a_real_recording(tmp_path: Path):
    source = tmp_path / "speech.wav"
    phrases = spoken_recording(source, PHRASES, voice="en")
    # 44.1 kHz stereo AAC in MP4, as a phone would upload it.
    upload = tmp_path / "speech.m4a"
    subprocess.run(
        [ffmpeg_executable(), "-v", "error", "-i", str(source), "-ac", "2", "-ar", "44100",
         "-c:a", "aac", "-y", str(upload)],
        check=True,
    )  # fmt: skip
    wav = tmp_path / "narration.wav"
    recording = convert_recording(upload, wav)
    _pcm, rate = read_wav(wav.read_bytes())
    assert rate == SAMPLE_RATE
    assert recording.duration_s == pytest.approx(phrases[-1].end_s + 0.7, abs=0.1)
    words = align_words(text_words(" ".join(PHRASES)), recording.spans)
    assert [w.text for w in words] == " ".join(PHRASES).split()
    assert all(a.start_s <= b.start_s for a, b in itertools.pairwise(words))
    at = 0
    for phrase in phrases:
        mine = words[at : at + len(phrase.text.split())]
        at += len(mine)
        # Each phrase's first word starts as its speech starts, and all of
        # its words are inside its audio: no word is shown during a pause.
        assert mine[0].start_s == pytest.approx(phrase.start_s, abs=0.1)
        assert all(phrase.start_s - 0.1 <= w.start_s < w.end_s <= phrase.end_s + 0.1 for w in mine)


def test_a_comma_pause_starts_the_next_word(tmp_path: Path):
    # Spans: one per pause-delimited stretch; the words cut after punctuation.
    spans = [(0.0, 1.0), (1.4, 2.0)]
    words = align_words(["First", "part", "here,", "then", "more."], spans)
    assert [w.text for w in words if w.start_s >= 1.4] == ["then", "more."]


def test_silencedetect_log_becomes_speech_spans():
    log = (
        "[silencedetect @ 0x1] silence_start: 0\n"
        "[silencedetect @ 0x1] silence_end: 0.5 | silence_duration: 0.5\n"
        "[silencedetect @ 0x1] silence_start: 1.5\n"
        "[silencedetect @ 0x1] silence_end: 2 | silence_duration: 0.5\n"
        "[silencedetect @ 0x1] silence_start: 2.9\n"
    )
    assert spans_from_silences(log, 3.2) == [(0.5, 1.5), (2.0, 2.9)]


def test_syllables_weigh_words_by_how_long_they_take():
    assert syllables("a") == 1
    assert syllables("extraordinary") > syllables("fox")
    assert syllables("東京都") == 3
    assert syllables("2026") > syllables("two")


def _lavfi(source: str, path: Path, *output_args: str) -> Path:
    """``path`` made by ffmpeg from a lavfi ``source``."""
    subprocess.run(
        [ffmpeg_executable(), "-v", "error", "-f", "lavfi", "-i", source, *output_args,
         "-y", str(path)],
        check=True,
    )  # fmt: skip
    return path


def test_a_file_without_sound_is_refused(tmp_path: Path):
    silent_video = _lavfi("color=c=red:s=64x64:d=1", tmp_path / "silent.mp4", "-c:v", "libx264")
    with pytest.raises(RecordingError, match="no sound track"):
        convert_recording(silent_video, tmp_path / "out.wav")
    hush = _lavfi("anullsrc=r=8000:cl=mono", tmp_path / "hush.wav", "-t", "2")
    with pytest.raises(RecordingError, match="silent"):
        convert_recording(hush, tmp_path / "out2.wav")
