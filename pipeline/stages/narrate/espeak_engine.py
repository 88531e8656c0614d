"""espeak-ng (the Debian package) for every language piper has no voice for.

Each sentence is spoken by a child process loading espeak-ng's library
(pipeline.stages.narrate.espeak_child), which reports where each word starts
in the audio (espeak's word events): every written word starts at the first
event inside it (a number read as several words starts at its first).  A
word the events miss makes the sentence fall back to placing words on the
voiced stretches of the audio (pipeline.stages.narrate.words).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Sequence

from pipeline.stages.narrate import Synthesis, SynthesisCancelled, SynthesisError
from pipeline.stages.narrate.wav import voiced_spans, wav_bytes
from pipeline.stages.narrate.words import place_words, text_words
from pipeline.stages.narration_plan import SpokenWord

CHILD = (sys.executable, "-m", "pipeline.stages.narrate.espeak_child")
BASE_WPM = 160  # espeak-ng's own default speed; rate multiplies it
TIMEOUT_S = 60.0


def espeak_binary() -> str:
    found = shutil.which("espeak-ng")
    if found is None:
        raise SynthesisError("espeak-ng is not installed (see system-packages.txt)")
    return found


class EspeakEngine:
    name = "espeak-ng"

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._killed = False
        self._lock = threading.Lock()

    def version(self) -> str:
        out = subprocess.run(
            [espeak_binary(), "--version"], capture_output=True, text=True, timeout=10, check=False
        )
        # Word times come from espeak's events (changes the cached words).
        return f"{out.stdout.strip()} word-events"

    def synthesize(self, text: str, voice: str, rate: float) -> Synthesis:
        with self._lock:
            if self._killed:
                raise SynthesisCancelled("synthesis stopped")
            self._proc = subprocess.Popen(
                [*CHILD, voice, str(round(BASE_WPM * rate))],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            proc = self._proc
        try:
            wav, err = proc.communicate(text.encode("utf-8"), timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise SynthesisError(f"espeak-ng took over {TIMEOUT_S:g} s") from None
        if self._killed:
            raise SynthesisCancelled("synthesis stopped")
        header, _, pcm = wav.partition(b"\n")
        if proc.returncode != 0 or not pcm:
            raise SynthesisError(f"espeak-ng failed: {err.decode('utf-8', 'replace')[:200]}")
        meta = json.loads(header)
        rate_hz = int(meta["sample_rate"])
        pcm = pcm[: len(pcm) // 2 * 2]
        words = text_words(text)
        spans = voiced_spans(pcm, rate_hz)
        placed = words_from_events(text, words, meta["words"], spans)
        if placed is None:
            placed = place_words(words, _merge_to(spans, len(words)))
        return Synthesis(
            wav=wav_bytes(pcm, rate_hz),
            sample_rate=rate_hz,
            duration_s=len(pcm) / 2 / rate_hz,
            words=placed,
        )

    def close(self) -> None:
        self._killed = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    def reopen(self) -> None:
        self._killed = False


def words_from_events(
    text: str,
    words: Sequence[str],
    events: Sequence[Sequence[int]],
    spans: Sequence[tuple[float, float]],
) -> tuple[SpokenWord, ...] | None:
    """The written words timed by espeak's word events ``[char offset,
    length, ms]``; None when a word has no event.  A word lasts until the next
    one starts (the last until the voice stops)."""
    starts: list[float] = []
    at = 0
    for word in words:
        first = text.index(word, at)
        at = first + len(word)
        hits = [ms for offset, _length, ms in events if first <= offset < at]
        if not hits:
            return None
        starts.append(max(min(hits) / 1000, starts[-1] if starts else 0.0))
    if not starts:
        return ()
    last_end = max(spans[-1][1] if spans else 0.0, starts[-1])
    ends = [*starts[1:], last_end]
    return tuple(
        SpokenWord(text=w, start_s=round(a, 3), end_s=round(max(a, b), 3))
        for w, a, b in zip(words, starts, ends, strict=True)
    )


def _merge_to(spans: list[tuple[float, float]], count: int) -> list[tuple[float, float]]:
    """Join the closest spans until there are at most ``count`` (a plosive
    splits a word into two voiced stretches)."""
    spans = list(spans)
    while len(spans) > count > 0:
        gaps = [spans[i + 1][0] - spans[i][1] for i in range(len(spans) - 1)]
        i = gaps.index(min(gaps))
        spans[i : i + 2] = [(spans[i][0], spans[i + 1][1])]
    return spans
