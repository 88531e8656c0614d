"""Uploaded recordings as a scene's narration (``[narration: asset:<id>]``).

The upload (an audio file, or a video with a sound track) is converted to
the narration format (mono 16-bit WAV at :data:`SAMPLE_RATE`), measured,
and its speech found with ffmpeg's ``silencedetect``.  No speech recogniser
runs here: the words of the scene's text are placed on the speech spans by
:func:`pipeline.stages.narrate.words.align_words` (the words split into
one run per span, preferring cuts after punctuation, each run spread over
its span by syllables), so captions and timing work as for synthesized
speech.  The silence threshold follows the recording's own level: it is
:data:`SILENCE_BELOW_DB` under the loud end of its speech, so a quiet
recording is measured like a loud one.

Limits: at most :data:`MAX_RECORDING_S` seconds of sound per scene; longer
uploads are refused at submission (when the file's metadata is known) and
here.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.stages.ffmpeg_runner import ffmpeg_executable, upload_input_options
from pipeline.stages.narrate.wav import read_wav

SAMPLE_RATE = 22050
MAX_RECORDING_S = 300.0
RECORDING_TYPES = ("audio", "video")
SILENCE_BELOW_DB = 30.0  # under the speech's loud end (its 95th percentile window)
MIN_SILENCE_S = 0.18  # shorter quiet stretches are inside words (stops, breaths)
MIN_SPAN_S = 0.06  # shorter sounds between silences are clicks, not words
CONVERT_TIMEOUT_S = 120.0
# Bumped whenever the same upload would convert or measure differently
# (part of the stored recording's key).
RECORDING_VERSION = "1"

_SILENCE_START = re.compile(r"silence_start:\s*(-?[\d.]+)")
_SILENCE_END = re.compile(r"silence_end:\s*(-?[\d.]+)")


class RecordingError(Exception):
    """The upload cannot narrate a scene (never worth a retry)."""


@dataclass(frozen=True)
class Recording:
    duration_s: float
    spans: tuple[tuple[float, float], ...]  # speech, in seconds from the start

    def to_dict(self) -> dict[str, Any]:
        return {"duration_s": self.duration_s, "spans": [list(s) for s in self.spans]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recording:
        return cls(
            duration_s=float(data["duration_s"]),
            spans=tuple((float(a), float(b)) for a, b in data["spans"]),
        )


def recording_problem(file_type: str, status: str, metadata: dict[str, Any] | None) -> str | None:
    """Why this file cannot narrate a scene, from its record alone (None: it can,
    or its metadata is not known yet and the narrate stage will tell)."""
    if file_type not in RECORDING_TYPES:
        article = "an" if file_type[:1] in "aeiou" else "a"
        return f"is {article} {file_type} file, not audio"
    if status == "failed":
        return "could not be read as media"
    if status != "completed":
        return None
    metadata = metadata or {}
    if file_type == "video" and not metadata.get("audio"):
        return "is a video without a sound track"
    duration = metadata.get("duration")
    if duration is not None and float(duration) > MAX_RECORDING_S:
        return (
            f"is {float(duration):.0f} s long; a narration recording may last {MAX_RECORDING_S:g} s"
        )
    return None


def convert_recording(source: Path, dest: Path) -> Recording:
    """Write ``source``'s first sound track to ``dest`` as narration WAV and
    find its speech; raises RecordingError."""
    args = [
        ffmpeg_executable(), "-nostdin", "-hide_banner", "-v", "error",
        *upload_input_options(), "-i", str(source),
        "-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1", "-ar", str(SAMPLE_RATE),
        "-c:a", "pcm_s16le", "-t", f"{MAX_RECORDING_S + 1:g}", "-f", "wav", "-y", str(dest),
    ]  # fmt: skip
    try:
        done = subprocess.run(
            args, capture_output=True, timeout=CONVERT_TIMEOUT_S, check=False, stdin=None
        )
    except subprocess.TimeoutExpired:
        raise RecordingError(f"took over {CONVERT_TIMEOUT_S:g} s to decode") from None
    err = done.stderr.decode("utf-8", "replace")
    if done.returncode != 0:
        if "matches no streams" in err:
            raise RecordingError("has no sound track")
        raise RecordingError("cannot be decoded as audio")
    try:
        pcm, rate = read_wav(dest.read_bytes())
    except (ValueError, EOFError):
        raise RecordingError("cannot be decoded as audio") from None
    duration = len(pcm) / 2 / rate
    if duration > MAX_RECORDING_S:
        raise RecordingError(f"lasts over {MAX_RECORDING_S:g} s, the limit for a recording")
    if duration < MIN_SPAN_S:
        raise RecordingError("has no sound")
    threshold = _silence_threshold_db(pcm)
    if threshold is None:
        raise RecordingError("is silent")
    spans = _speech_spans(dest, threshold, duration)
    return Recording(duration_s=round(duration, 3), spans=tuple(spans))


def _silence_threshold_db(pcm: bytes, window_s: float = 0.02) -> float | None:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    step = int(SAMPLE_RATE * window_s)
    usable = len(samples) // step * step
    if usable == 0:
        return None
    rms = np.sqrt(np.mean(samples[:usable].reshape(-1, step) ** 2, axis=1))
    loud = float(np.percentile(rms, 95))
    if loud <= 1e-5:
        return None
    return max(-80.0, 20 * float(np.log10(loud)) - SILENCE_BELOW_DB)


def _speech_spans(wav: Path, threshold_db: float, duration: float) -> list[tuple[float, float]]:
    args = [
        ffmpeg_executable(), "-nostdin", "-hide_banner", "-nostats", "-i", str(wav),
        "-af", f"silencedetect=noise={threshold_db:.1f}dB:d={MIN_SILENCE_S}", "-f", "null", "-",
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, timeout=CONVERT_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise RecordingError("cannot be measured")
    return spans_from_silences(done.stderr.decode("utf-8", "replace"), duration)


def spans_from_silences(log: str, duration: float) -> list[tuple[float, float]]:
    """The sounding stretches between the silences silencedetect reported."""
    silences: list[tuple[float, float]] = []
    start: float | None = None
    for line in log.splitlines():
        if (m := _SILENCE_START.search(line)) is not None:
            start = max(0.0, float(m.group(1)))
        elif (m := _SILENCE_END.search(line)) is not None and start is not None:
            silences.append((start, min(duration, float(m.group(1)))))
            start = None
    if start is not None:  # silent to the end
        silences.append((start, duration))
    spans: list[tuple[float, float]] = []
    at = 0.0
    for a, b in silences:
        if a - at >= MIN_SPAN_S:
            spans.append((round(at, 3), round(a, 3)))
        at = max(at, b)
    if duration - at >= MIN_SPAN_S:
        spans.append((round(at, 3), round(duration, 3)))
    return spans
