"""The speech engines, for real: piper in its child process and espeak-ng."""

from __future__ import annotations

import pytest

from pipeline.stages.narrate import SynthesisError
from pipeline.stages.narrate.engines import synthesize
from pipeline.stages.narrate.voices import detect_language, get_voice, voice_for
from pipeline.stages.narrate.wav import read_wav


def _check(synthesis, text: str) -> None:
    pcm, rate = read_wav(synthesis.wav)
    assert rate == synthesis.sample_rate
    assert abs(len(pcm) / 2 / rate - synthesis.duration_s) < 0.01
    assert [w.text for w in synthesis.words] == text.split()
    starts = [w.start_s for w in synthesis.words]
    assert starts == sorted(starts)
    assert all(w.start_s <= w.end_s <= synthesis.duration_s + 0.01 for w in synthesis.words)


def test_piper_speaks_english_with_word_timings() -> None:
    text = "The quick brown fox jumps over the lazy dog."
    normal = synthesize(text, "en-us-joe", 1.0)
    _check(normal, text)
    assert 1.5 < normal.duration_s < 5.0
    faster = synthesize(text, "en-us-joe", 1.25)
    _check(faster, text)
    assert faster.duration_s < normal.duration_s


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Bonjour tout le monde, ceci est un test de la voix.", "fr"),
        ("Das ist ein kleiner Test und nicht mehr.", "de"),
        ("中文字幕测试：视频生成服务应该支持多种语言。", "zh"),
        ("한국어 문장도 깨지지 않고 보여야 합니다.", "ko"),
    ],
)
def test_espeak_speaks_other_languages(text: str, lang: str) -> None:
    assert detect_language(text) == lang
    voice = voice_for(text)
    assert voice.engine == "espeak-ng"
    speech = synthesize(text, voice.id, 1.0)
    _check(speech, text)
    assert speech.duration_s > 0.5


def test_rate_out_of_bounds_is_refused() -> None:
    with pytest.raises(SynthesisError):
        synthesize("Hello.", "en-us-joe", 3.0)


def test_unknown_voice_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="en-us-joe"):
        synthesize("Hello.", "nobody", 1.0)


def test_each_job_reuses_the_live_piper_child_and_leaves_none_behind() -> None:
    # The narrate actor calls reopen() as every job starts; a child still
    # running from the previous job must be reused, not orphaned (each one
    # holds the neural voice, ~140 MiB, until the worker exits).
    from pipeline.stages.narrate.piper_engine import PiperEngine

    engine = PiperEngine(get_voice("en-us-joe").engine_voice)
    first = None
    try:
        engine.synthesize("First job.", "", 1.0)
        first = engine._proc
        assert first is not None
        engine.reopen()
        engine.synthesize("Second job.", "", 1.0)
        assert engine._proc is first
        assert first.poll() is None

        # After a cancel the killed child is replaced by one fresh child.
        engine.close()
        assert first.poll() is not None
        engine.reopen()
        engine.synthesize("Third job.", "", 1.0)
        assert engine._proc is not None and engine._proc is not first
        assert engine._proc.poll() is None
    finally:
        engine.close()
        if first is not None and first.poll() is None:  # the orphan, when it fails
            first.kill()
            first.wait()
