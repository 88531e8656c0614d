"""espeak-ng (the Debian program) for every language piper has no voice for.

espeak-ng's command line reports no word events, so words are placed on
the voiced stretches of its output (pipeline.stages.narrate.words): the
gaps espeak leaves between words make that close for alphabetic scripts.
"""

from __future__ import annotations

import shutil
import subprocess
import threading

from pipeline.stages.narrate import Synthesis, SynthesisCancelled, SynthesisError
from pipeline.stages.narrate.wav import voiced_spans, wav_bytes
from pipeline.stages.narrate.words import place_words, text_words

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
        return out.stdout.strip()

    def synthesize(self, text: str, voice: str, rate: float) -> Synthesis:
        with self._lock:
            if self._killed:
                raise SynthesisCancelled("synthesis stopped")
            self._proc = subprocess.Popen(
                [espeak_binary(), "-v", voice, "-s", str(round(BASE_WPM * rate)), "--stdout"],
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
        if proc.returncode != 0 or not wav:
            raise SynthesisError(f"espeak-ng failed: {err.decode('utf-8', 'replace')[:200]}")
        # espeak writes a streaming header with unknown sizes: rebuild it.
        pcm, rate_hz = _pcm_of_stream(wav)
        words = text_words(text)
        spans = _merge_to(voiced_spans(pcm, rate_hz), len(words))
        return Synthesis(
            wav=wav_bytes(pcm, rate_hz),
            sample_rate=rate_hz,
            duration_s=len(pcm) / 2 / rate_hz,
            words=place_words(words, spans),
        )

    def close(self) -> None:
        self._killed = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    def reopen(self) -> None:
        self._killed = False


def _pcm_of_stream(data: bytes) -> tuple[bytes, int]:
    # espeak-ng --stdout streams: its header gives no sizes, so it is
    # read by hand.  RIFF header of 44 bytes: the rate is at offset 24.
    if data[:4] != b"RIFF" or len(data) < 44:
        raise SynthesisError("espeak-ng wrote no WAV")
    rate_hz = int.from_bytes(data[24:28], "little")
    pcm = data[44:]
    return pcm[: len(pcm) // 2 * 2], rate_hz


def _merge_to(spans: list[tuple[float, float]], count: int) -> list[tuple[float, float]]:
    """Join the closest spans until there are at most ``count`` (a plosive
    splits a word into two voiced stretches)."""
    spans = list(spans)
    while len(spans) > count > 0:
        gaps = [spans[i + 1][0] - spans[i][1] for i in range(len(spans) - 1)]
        i = gaps.index(min(gaps))
        spans[i : i + 2] = [(spans[i][0], spans[i + 1][1])]
    return spans
