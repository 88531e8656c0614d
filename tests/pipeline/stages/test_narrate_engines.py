"""The speech engines, for real: piper in its child process and espeak-ng."""

from __future__ import annotations

import itertools

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


def test_symbol_heavy_text_is_spoken_in_pieces_within_the_phoneme_budget() -> None:
    # Symbols and emoji are read out at length: 37 characters of them are
    # ~170 phonemes, and the decoder's memory grows with the phonemes (one
    # such piece took the child from 270 to ~400 MiB).  piper is GPL and
    # lives only in the child's process, hence the subprocess.
    import json
    import subprocess
    import sys

    from pipeline.stages.narrate.piper_engine import _voice_files

    text = "Emoji check 🎬🚀✅ and symbols ≥ ≤ ∞ → ★"
    model, config = _voice_files(get_voice("en-us-joe").engine_voice)
    code = (
        "import json, sys; from pathlib import Path\n"
        "from pipeline.stages.narrate import piper_child as pc\n"
        "v = pc.load_voice(Path(sys.argv[1]), Path(sys.argv[2]))\n"
        "pieces = pc.fit_pieces(v, pc.pieces_of(sys.argv[3]))\n"
        "print(json.dumps([pc.MAX_PIECE_PHONEMES, [[p, pc._phonemes(v, p)] for p in pieces]]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(model), str(config), text],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    budget, pieces = json.loads(done.stdout.splitlines()[-1])
    assert " ".join(p for p, _ in pieces).split() == text.split()
    assert len(pieces) > 1
    assert all(n <= budget or len(p.split()) == 1 for p, n in pieces)


def test_espeak_word_times_come_from_its_word_events() -> None:
    from pipeline.stages.narrate.wav import voiced_spans

    text = "Then it runs away, far into the forest."
    speech = synthesize(text, "espeak-en")
    pcm, rate = read_wav(speech.wav)
    spans = voiced_spans(pcm, rate)
    # The comma's pause: the longest gap between voiced stretches.
    gaps = [(b[0] - a[1], b[0]) for a, b in itertools.pairwise(spans)]
    _pause, resumes = max(gaps)
    by_text = {w.text: w for w in speech.words}
    assert [w.text for w in speech.words] == text.split()
    assert by_text["far"].start_s == pytest.approx(resumes, abs=0.12)
    assert all(a.start_s < b.start_s for a, b in itertools.pairwise(speech.words))
    # A number read as several words starts where its first is spoken.
    numbers = synthesize("In 2026 we grew.", "espeak-en")
    assert [w.text for w in numbers.words] == ["In", "2026", "we", "grew."]
    assert numbers.words[2].start_s - numbers.words[1].start_s > 0.8  # "two thousand twenty six"
