"""Spoken recordings made with espeak-ng: phrases with known onsets."""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from pathlib import Path

from pipeline.stages.narrate.espeak_engine import EspeakEngine


@dataclass(frozen=True)
class SpokenPhrase:
    text: str
    start_s: float  # where its audio begins in the recording
    end_s: float


def spoken_recording(
    path: Path, phrases: list[str], *, pause_s: float = 0.7, voice: str = "en"
) -> list[SpokenPhrase]:
    """Speak each phrase with espeak-ng and join them with ``pause_s`` of silence."""
    engine = EspeakEngine()
    pcm = b""
    rate = 22050
    placed: list[SpokenPhrase] = []
    for phrase in phrases:
        speech = engine.synthesize(phrase, voice, 1.0)
        with wave.open(io.BytesIO(speech.wav)) as src:
            rate = src.getframerate()
            data = src.readframes(src.getnframes())
        start = len(pcm) / 2 / rate
        placed.append(SpokenPhrase(phrase, start, start + len(data) / 2 / rate))
        pcm += data + b"\0\0" * int(rate * pause_s)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return placed
