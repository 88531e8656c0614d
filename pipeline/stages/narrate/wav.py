"""Small WAV helpers shared by the engines (standard library only)."""

from __future__ import annotations

import array
import io
import wave


def wav_bytes(pcm: bytes, sample_rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm)
    return buf.getvalue()


def read_wav(data: bytes) -> tuple[bytes, int]:
    """(mono 16-bit PCM, sample rate) of a WAV; raises ValueError otherwise."""
    with wave.open(io.BytesIO(data), "rb") as src:
        if src.getnchannels() != 1 or src.getsampwidth() != 2:
            raise ValueError("expected mono 16-bit WAV")
        return src.readframes(src.getnframes()), src.getframerate()


def voiced_spans(
    pcm: bytes, sample_rate: int, *, window_s: float = 0.01
) -> list[tuple[float, float]]:
    """Stretches of the signal louder than a tenth of its RMS, in seconds.

    Used to place words when an engine reports none: pauses between words
    are the quiet gaps."""
    samples = array.array("h")
    samples.frombytes(pcm)
    step = max(1, int(sample_rate * window_s))
    energies = []
    for i in range(0, len(samples), step):
        chunk = samples[i : i + step]
        energies.append(sum(s * s for s in chunk) / max(1, len(chunk)))
    if not energies:
        return []
    mean = sum(energies) / len(energies)
    threshold = mean * 0.02
    spans: list[tuple[float, float]] = []
    start: int | None = None
    for n, energy in enumerate(energies):
        if energy > threshold and start is None:
            start = n
        elif energy <= threshold and start is not None:
            spans.append((start * window_s, n * window_s))
            start = None
    if start is not None:
        spans.append((start * window_s, len(energies) * window_s))
    return spans
