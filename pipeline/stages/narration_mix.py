"""Lay the narration clips on one track before the render's ffmpeg run.

The render graph reads the whole narration as one 48 kHz mono WAV.  Three
ways of building that track were compared (figures: README, "Benchmarks"):

* one ffmpeg input per clip, ``adelay`` + ``amix=normalize=0``: the slowest,
  and ffmpeg opens and primes every input when the graph starts;
* the concat demuxer over clips and a silence file cut with ``outpoint``:
  faster, but every clip must share one sample rate and layout (voices of
  different engines do not);
* decoding each clip with PyAV (swresample to 48 kHz) and writing the
  track here: the fastest, any sample rate, overlapping clips simply add.
  With distinct clips, as a real job has, decoding dominates the premix.

So the track is mixed here, streamed to disk: only the clips that overlap
the one being placed are held in memory, never the whole track (an hour of
float32 narration would not fit a worker's memory budget).
"""

from __future__ import annotations

import wave
from collections.abc import Callable, Mapping
from pathlib import Path

import av
import numpy as np

from pipeline.stages.narration_plan import SpeechClip
from pipeline.stages.render_errors import RenderCancelled, RenderError

RATE = 48_000
_SILENCE_CHUNK = RATE * 10  # samples of zeros written at a time


def decode_clip(path: Path) -> np.ndarray:
    """A clip as float32 mono samples at RATE (any input rate or layout)."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise RenderError(f"narration clip {path.name!r} has no audio", permanent=True)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
            parts: list[np.ndarray] = []
            for frame in container.decode(audio=0):
                parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
            parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    except av.error.FFmpegError as exc:
        raise RenderError(
            f"narration clip {path.name!r} cannot be read: {exc}", permanent=True
        ) from exc
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def mix_narration(
    clips: tuple[SpeechClip, ...],
    paths: Mapping[str, Path],
    out: Path,
    duration_s: float,
    *,
    cancelled: Callable[[], bool] = lambda: False,
) -> None:
    """Write ``out``: every clip at its ``start_s``, silence elsewhere, exactly
    ``duration_s`` long.  A clip is cut at its ``duration_s`` and at the end
    of the video (the storyboard never plans either, but a TTS engine's WAV
    may carry a few ms of trailing padding)."""
    total = round(duration_s * RATE)
    cache: dict[str, np.ndarray] = {}  # the same sentence spoken twice is decoded once
    with wave.open(str(out), "wb") as sink:
        sink.setnchannels(1)
        sink.setsampwidth(2)
        sink.setframerate(RATE)
        written = 0  # samples already on disk
        pending = np.zeros(0, np.float32)  # samples from ``written`` on, still mixable

        def flush(upto: int) -> None:
            nonlocal written, pending
            keep = max(0, upto - written)
            take = min(keep, len(pending))
            if take:
                sink.writeframes(_pcm16(pending[:take]))
                pending = pending[take:]
                written += take
            while written < upto:  # silence between clips, never materialised whole
                n = min(_SILENCE_CHUNK, upto - written)
                sink.writeframes(bytes(2 * n))
                written += n

        for clip in sorted(clips, key=lambda c: c.start_s):
            if cancelled():
                raise RenderCancelled()
            path = paths.get(clip.audio_key)
            if path is None or not Path(path).is_file():
                raise RenderError(
                    f"narration clip {clip.audio_key!r} has no local file", permanent=True
                )
            if clip.audio_key not in cache:
                cache = {clip.audio_key: decode_clip(Path(path))}  # keep only the last one
            audio = cache[clip.audio_key][: max(0, round(clip.duration_s * RATE))]
            start = max(0, round(clip.start_s * RATE))
            end = min(total, start + len(audio))
            if end <= start:
                continue
            audio = audio[: end - start]
            flush(start)  # everything before this clip is final
            offset = start - written  # 0 after the flush unless an earlier clip overlaps
            if len(pending) < offset + len(audio):
                pending = np.concatenate(
                    [pending, np.zeros(offset + len(audio) - len(pending), np.float32)]
                )
            pending[offset : offset + len(audio)] += audio
        flush(total)


def _pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
