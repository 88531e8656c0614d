"""Narration clips for tests, spoken by the espeak-ng CLI (a real TTS engine).

Word timings are spread over the clip by character count: good enough for
caption layout and timing tests, which only need them inside the sentence.
"""

from __future__ import annotations

import hashlib
import subprocess
import wave
from pathlib import Path

from pipeline.stages.narration_plan import SpeechClip, SpokenWord


def speak(text: str, directory: Path) -> tuple[str, Path, float]:
    """(storage key, local WAV, seconds) for ``text`` spoken by espeak-ng."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    path = directory / f"{digest}.wav"
    if not path.exists():
        subprocess.run(["espeak-ng", "-w", str(path), text], check=True)
    with wave.open(str(path)) as w:
        seconds = w.getnframes() / w.getframerate()
    return f"tts/{digest[:2]}/{digest}.wav", path, seconds


def spread_words(text: str, seconds: float) -> tuple[SpokenWord, ...]:
    words = text.split()
    total = sum(len(w) + 1 for w in words)
    out: list[SpokenWord] = []
    at = 0.0
    for word in words:
        length = seconds * (len(word) + 1) / total
        out.append(SpokenWord(word, round(at, 3), round(at + length * 0.9, 3)))
        at += length
    return tuple(out)


def make_clips(
    sentences: list[tuple[int, str, float]], directory: Path
) -> tuple[tuple[SpeechClip, ...], dict[str, Path]]:
    """Clips for (scene index, sentence, start_s) and the key → file map."""
    clips: list[SpeechClip] = []
    paths: dict[str, Path] = {}
    for index, sentence, start in sentences:
        key, path, seconds = speak(sentence, directory)
        paths[key] = path
        clips.append(
            SpeechClip(
                source_index=index,
                sentence=sentence,
                audio_key=key,
                start_s=start,
                duration_s=seconds,
                words=spread_words(sentence, seconds),
                voice="espeak-ng:en",
            )
        )
    return tuple(clips), paths
