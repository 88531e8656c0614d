"""Speech synthesis behind one narrow interface.

Every engine turns ``(text, voice, rate)`` into a mono 16-bit WAV and the
time of each spoken word (:class:`Synthesis`).  Engines run out of process
(piper-tts is GPL-3.0 and lives in a child process speaking JSON lines;
espeak-ng is a program), so nothing of theirs is imported here and another
engine (Kokoro, a cloud TTS) is one more module implementing :class:`Engine`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pipeline.stages.narration_plan import SpokenWord

MIN_RATE = 0.5
MAX_RATE = 2.0


class SynthesisError(Exception):
    """The engine could not speak this text (a permanent failure for the job)."""


class SynthesisCancelled(Exception):
    """Synthesis was stopped because the job was cancelled."""


@dataclass(frozen=True)
class Synthesis:
    wav: bytes  # RIFF/WAVE, mono, 16-bit PCM
    sample_rate: int
    duration_s: float
    words: tuple[SpokenWord, ...]


class Engine(Protocol):
    name: str

    def version(self) -> str:
        """Changes whenever the same input could sound different (part of the cache key)."""
        ...

    def synthesize(self, text: str, voice: str, rate: float) -> Synthesis: ...

    def close(self) -> None:
        """Stop the engine's child process, if any (also used to cancel)."""
        ...
