"""Where the narration sits on the video's timeline.

This is the contract between the stages that make speech (narrate, then the
storyboard planner that times scenes from it) and the stages that use it
(the render's audio graph and the caption writers).  It is stored inside the
storyboard JSON, so every render worker mixes exactly the same sound and
every caption file shows exactly the cues that are spoken.

One clip is one synthesized sentence: sentences are the unit of caching
(same voice + text + rate -> same object under ``tts/``) and of captions
(one cue per sentence, never a cue while its sentence is not spoken).
Word timings are relative to the clip so a clip can be moved on the
timeline (a longer pause, a crossfade) without touching its words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SpokenWord:
    """One word as the engine spoke it, in seconds from its clip's start."""

    text: str
    start_s: float
    end_s: float

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "start_s": self.start_s, "end_s": self.end_s}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SpokenWord:
        return cls(
            text=str(data["text"]), start_s=float(data["start_s"]), end_s=float(data["end_s"])
        )


@dataclass(frozen=True)
class SpeechClip:
    """One spoken sentence, placed on the timeline.

    ``audio_key`` names a storage object under ``tts/`` holding a mono WAV
    (16-bit PCM, any sample rate; the render resamples).  ``duration_s`` is
    the length of that audio as it is played: a faster rate is synthesized,
    not time-stretched at render time, so it is already in the audio.
    """

    source_index: int  # the script scene this sentence belongs to
    sentence: str  # the text as spoken; captions show it
    audio_key: str
    start_s: float  # absolute position on the video's timeline
    duration_s: float
    words: tuple[SpokenWord, ...] = ()
    voice: str = ""
    rate: float = 1.0

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "source_index": self.source_index,
            "sentence": self.sentence,
            "audio_key": self.audio_key,
            "start_s": self.start_s,
            "duration_s": self.duration_s,
            "words": [w.to_dict() for w in self.words],
            "voice": self.voice,
            "rate": self.rate,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SpeechClip:
        return cls(
            source_index=int(data["source_index"]),
            sentence=str(data["sentence"]),
            audio_key=str(data["audio_key"]),
            start_s=float(data["start_s"]),
            duration_s=float(data["duration_s"]),
            words=tuple(SpokenWord.from_dict(w) for w in data.get("words") or ()),
            voice=str(data.get("voice", "")),
            rate=float(data.get("rate", 1.0)),
        )


def clips_to_list(clips: tuple[SpeechClip, ...]) -> list[dict[str, Any]]:
    return [c.to_dict() for c in clips]


def clips_from_list(data: object) -> tuple[SpeechClip, ...]:
    if not data:
        return ()
    if not isinstance(data, list):
        raise ValueError("narration must be a list of clips")
    return tuple(SpeechClip.from_dict(c) for c in data)
