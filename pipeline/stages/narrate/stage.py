"""The narrate stage: each scene's spoken text -> cached speech clips.

Output is the *speech plan* (JSON next to the parsed script): for every
script scene, its voice and rate and one clip per sentence, with the audio
key under ``tts/`` and the words' times.  The storyboard times scenes from
it and places the clips on the timeline.

Audio is content-addressed: the key hashes engine, engine version, voice,
text and rate, so the same sentence is synthesized once across jobs and
re-renders, and a redelivered job writes nothing new.  The words' JSON is
written after the WAV and marks the pair as complete.

A scene narrated by an upload (``[narration: asset:<id>]``) is one clip:
the recording converted once per upload content (keyed by the bytes'
sha256, see pipeline.stages.narrate.recording), its words aligned to its
speech without a recogniser.  It is played as recorded: never sped up.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pipeline.stages.narrate import MAX_RATE, MIN_RATE, Synthesis, timing
from pipeline.stages.narrate import engines as engine_pool
from pipeline.stages.narrate.recording import (
    RECORDING_VERSION,
    Recording,
    RecordingError,
    convert_recording,
)
from pipeline.stages.narrate.sentences import split_sentences
from pipeline.stages.narrate.voices import Voice, get_voice, voice_for
from pipeline.stages.narrate.words import align_words, text_words
from pipeline.stages.narration_plan import SpokenWord
from pipeline.stages.reading_time import reading_seconds
from pipeline.stages.script import Scene, Script
from t2m.errors import ValidationFailed
from t2m.storage import Storage

PLAN_VERSION = 1


class NarrationError(ValidationFailed):
    """The script cannot be narrated as asked (never worth a retry)."""

    permanent = True


@dataclass(frozen=True)
class Clip:
    sentence: str
    audio_key: str
    duration_s: float
    words: tuple[SpokenWord, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "sentence": self.sentence,
            "audio_key": self.audio_key,
            "duration_s": self.duration_s,
            "words": [w.to_dict() for w in self.words],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Clip:
        return cls(
            sentence=str(data["sentence"]),
            audio_key=str(data["audio_key"]),
            duration_s=float(data["duration_s"]),
            words=tuple(SpokenWord.from_dict(w) for w in data.get("words") or ()),
        )


@dataclass(frozen=True)
class SceneSpeech:
    source_index: int
    voice: str
    rate: float
    clips: tuple[Clip, ...]
    recording: str | None = None  # the upload's file id when a recording speaks it

    @property
    def speech_s(self) -> float:
        return sum(c.duration_s for c in self.clips)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source_index": self.source_index,
            "voice": self.voice,
            "rate": self.rate,
            "clips": [c.to_dict() for c in self.clips],
            "recording": self.recording,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SceneSpeech:
        return cls(
            source_index=int(data["source_index"]),
            voice=str(data["voice"]),
            rate=float(data["rate"]),
            clips=tuple(Clip.from_dict(c) for c in data["clips"]),
            recording=data.get("recording"),
        )


@dataclass(frozen=True)
class SpeechPlan:
    scenes: tuple[SceneSpeech, ...] = ()
    notes: tuple[str, ...] = field(default=())
    synthesized: int = 0  # sentences synthesized by this run (the rest came from the cache)
    reused: int = 0

    def for_scene(self, source_index: int) -> SceneSpeech | None:
        for scene in self.scenes:
            if scene.source_index == source_index:
                return scene
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": PLAN_VERSION,
            "scenes": [s.to_dict() for s in self.scenes],
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SpeechPlan:
        return cls(
            scenes=tuple(SceneSpeech.from_dict(s) for s in data.get("scenes") or ()),
            notes=tuple(data.get("notes") or ()),
        )


@dataclass(frozen=True)
class NarrationOptions:
    mode: str = "auto"  # "auto" | "none"
    voice: str | None = None
    rate: float = 1.0
    language: str | None = None
    target_duration: float | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> NarrationOptions:
        return cls(
            mode=str(params.get("narration") or "auto"),
            voice=params.get("voice") or None,
            rate=float(params.get("speech_rate") or 1.0),
            language=params.get("language") or None,
            target_duration=params.get("duration"),
        )


def audio_key(engine: str, engine_version: str, voice: Voice, text: str, rate: float) -> str:
    digest = hashlib.sha256(
        json.dumps([engine, engine_version, voice.id, text, round(rate, 3)]).encode()
    ).hexdigest()
    return f"tts/{digest[:2]}/{digest}.wav"


def words_key(key: str) -> str:
    return key.removesuffix(".wav") + ".json"


def recording_key(content_sha256: str) -> str:
    digest = hashlib.sha256(
        json.dumps(["recording", RECORDING_VERSION, content_sha256]).encode()
    ).hexdigest()
    return f"tts/recordings/{digest[:2]}/{digest}.wav"


Synthesize = Callable[[str, str, float], Synthesis]


class Recordings(Protocol):
    """Where the uploads narrating scenes come from (the worker's files)."""

    async def content_sha256(self, file_id: str) -> str:
        """The upload's content hash; raises RecordingError when it cannot narrate."""
        ...

    async def download(self, file_id: str, dest: Path) -> None: ...


class Narrator:
    """Speaks sentences through the cache; one per stage run."""

    def __init__(
        self,
        storage: Storage,
        synthesize: Synthesize | None = None,
        *,
        recordings: Recordings | None = None,
        scratch: Path | None = None,
    ) -> None:
        self.storage = storage
        self.synthesize = synthesize or engine_pool.synthesize
        self.recordings = recordings
        self.scratch = scratch
        self.synthesized = 0
        self.reused = 0
        self._versions: dict[str, str] = {}

    async def recording(self, index: int, file_id: str, text: str) -> SceneSpeech:
        """The scene spoken by an upload: one clip, its words aligned to its speech."""
        if self.recordings is None:
            raise RecordingError("cannot be read here (no file access)")
        key = recording_key(await self.recordings.content_sha256(file_id))
        meta_key = words_key(key)
        if await self.storage.exists(meta_key) and await self.storage.exists(key):
            found = Recording.from_dict(json.loads(await self.storage.get_bytes(meta_key)))
            self.reused += 1
        else:
            with tempfile.TemporaryDirectory(prefix="recording-", dir=self.scratch) as tmp:
                source, wav = Path(tmp) / "source", Path(tmp) / "narration.wav"
                await self.recordings.download(file_id, source)
                found = await asyncio.to_thread(convert_recording, source, wav)
                await self.storage.put_file(key, wav, content_type="audio/wav")
            await self.storage.put_bytes(
                meta_key, json.dumps(found.to_dict()).encode(), content_type="application/json"
            )
            self.synthesized += 1
        clip = Clip(
            sentence=text,
            audio_key=key,
            duration_s=found.duration_s,
            words=align_words(text_words(text), found.spans),
        )
        return SceneSpeech(source_index=index, voice="", rate=1.0, clips=(clip,), recording=file_id)

    async def _version(self, voice: Voice) -> str:
        if voice.id not in self._versions:
            engine = engine_pool.engine_for(voice)
            self._versions[voice.id] = await asyncio.to_thread(engine.version)
        return self._versions[voice.id]

    async def clip(self, sentence: str, voice: Voice, rate: float) -> Clip:
        key = audio_key(voice.engine, await self._version(voice), voice, sentence, rate)
        meta_key = words_key(key)
        if await self.storage.exists(meta_key) and await self.storage.exists(key):
            meta = json.loads(await self.storage.get_bytes(meta_key))
            self.reused += 1
            return Clip.from_dict({**meta, "audio_key": key, "sentence": sentence})
        speech = await asyncio.to_thread(self.synthesize, sentence, voice.id, rate)
        clip = Clip(
            sentence=sentence, audio_key=key, duration_s=speech.duration_s, words=speech.words
        )
        # WAV first, then the words: a pair is complete once its JSON exists,
        # and each write replaces the same key atomically, so a retry after a
        # crash overwrites rather than duplicates.
        await self.storage.put_bytes(key, speech.wav, content_type="audio/wav")
        meta = {"duration_s": clip.duration_s, "words": [w.to_dict() for w in clip.words]}
        await self.storage.put_bytes(
            meta_key, json.dumps(meta).encode(), content_type="application/json"
        )
        self.synthesized += 1
        return clip

    async def scene(self, index: int, text: str, voice: Voice, rate: float) -> SceneSpeech:
        clips = [await self.clip(s, voice, rate) for s in split_sentences(text)]
        return SceneSpeech(source_index=index, voice=voice.id, rate=rate, clips=tuple(clips))


def scene_voice(scene: Scene, options: NarrationOptions) -> Voice:
    try:
        return voice_for(
            scene.spoken_text, voice=scene.voice or options.voice, language=options.language
        )
    except KeyError as exc:
        raise NarrationError(
            f"line {scene.line_no}: {exc.args[0]}", details={"line": scene.line_no}
        ) from None


def check_options(options: NarrationOptions, script: Script) -> None:
    if options.mode not in ("auto", "none"):
        raise NarrationError("narration must be 'auto' or 'none'")
    if not MIN_RATE <= options.rate <= MAX_RATE:
        raise NarrationError(f"speech_rate must be between {MIN_RATE:g} and {MAX_RATE:g}")
    if options.voice:
        try:
            get_voice(options.voice)
        except KeyError as exc:
            raise NarrationError(str(exc.args[0])) from None
    for scene in script.scenes:
        if scene.spoken_text and options.mode == "auto":
            scene_voice(scene, options)


def _faster(rate: float, base: float, factor: float) -> float:
    # Rounded up to 0.01 so the cache key is stable and the speech fits.
    return min(base * timing.MAX_SPEEDUP, math.ceil(rate * factor * 100) / 100)


async def narrate_script(
    script: Script,
    options: NarrationOptions,
    narrator: Narrator,
    *,
    on_scene: Callable[[int, int], Awaitable[None]] | None = None,
) -> SpeechPlan:
    """Speak every scene; speed up scenes whose ``[duration]`` is shorter than
    their speech (up to MAX_SPEEDUP), and fail naming the scene beyond."""
    check_options(options, script)
    if options.mode == "none":
        return SpeechPlan()
    spoken: list[SceneSpeech] = []
    notes: list[str] = []
    total = len(script.scenes)
    for index, scene in enumerate(script.scenes):
        text = scene.spoken_text
        if scene.recording is not None:
            spoken.append(await _recorded_scene(narrator, index, scene))
        elif text:
            voice = scene_voice(scene, options)
            speech = await narrator.scene(index, text, voice, options.rate)
            if scene.duration_s is not None and speech.clips:
                speech = await _fit_scene(narrator, scene, speech, voice, options.rate)
            if speech.clips:
                spoken.append(speech)
        if on_scene is not None:
            await on_scene(index + 1, total)
    if options.target_duration is not None and spoken:
        spoken, note = await _fit_target(narrator, script, spoken, options)
        if note:
            notes.append(note)
    return SpeechPlan(
        scenes=tuple(spoken),
        notes=tuple(notes),
        synthesized=narrator.synthesized,
        reused=narrator.reused,
    )


async def _recorded_scene(narrator: Narrator, index: int, scene: Scene) -> SceneSpeech:
    assert scene.recording is not None
    where = f"line {scene.line_no}: scene {index + 1}"
    try:
        speech = await narrator.recording(index, scene.recording, scene.caption_text)
    except RecordingError as exc:
        raise NarrationError(
            f"{where}: narration file {scene.recording} {exc}",
            details={"line": scene.line_no, "scene": index + 1},
        ) from None
    need = speech.speech_s + timing.pauses_s(1, timing.MIN_PAUSE_SCALE)
    if scene.duration_s is not None and need > scene.duration_s + 1e-3:
        raise NarrationError(
            f"{where}: its recording needs {need:.1f} s but its "
            f"[duration: {scene.duration_s:g}s] is shorter (a recording is never sped up)",
            details={"line": scene.line_no, "scene": index + 1},
        )
    return speech


async def _respeak(
    narrator: Narrator, speech: SceneSpeech, voice: Voice, rate: float
) -> SceneSpeech:
    clips = [await narrator.clip(c.sentence, voice, rate) for c in speech.clips]
    return SceneSpeech(speech.source_index, speech.voice, rate, tuple(clips))


async def _fit_scene(
    narrator: Narrator, scene: Scene, speech: SceneSpeech, voice: Voice, base: float
) -> SceneSpeech:
    assert scene.duration_s is not None
    room = scene.duration_s - timing.pauses_s(len(speech.clips), timing.MIN_PAUSE_SCALE)
    rate = speech.rate
    for _ in range(3):  # the engine's speed-up is not exactly linear: re-measure
        if speech.speech_s <= room + 1e-3:
            return speech
        if rate >= base * timing.MAX_SPEEDUP - 1e-9 or room <= 0:
            break
        rate = _faster(rate, base, speech.speech_s / max(room, 0.01))
        speech = await _respeak(narrator, speech, voice, rate)
    if speech.speech_s <= room + 1e-3:
        return speech
    raise NarrationError(
        f"line {scene.line_no}: scene {speech.source_index + 1} needs "
        f"{speech.speech_s + timing.pauses_s(len(speech.clips), timing.MIN_PAUSE_SCALE):.1f} s "
        f"of speech even at {timing.MAX_SPEEDUP:g}x; its [duration: {scene.duration_s:g}s] "
        "is too short (shorten the text, give it [narration: ...] or a longer duration)",
        details={"line": scene.line_no, "scene": speech.source_index + 1},
    )


async def _fit_target(
    narrator: Narrator, script: Script, spoken: list[SceneSpeech], options: NarrationOptions
) -> tuple[list[SceneSpeech], str | None]:
    """Speed the free (no [duration]) spoken scenes up when even the shortest
    pauses cannot bring the video down to the target.  Slower speech is
    never made: a longer target is met by longer pauses in the storyboard."""
    assert options.target_duration is not None

    fixed = 0.0
    free: list[SceneSpeech] = []
    by_index = {s.source_index: s for s in spoken}
    for index, scene in enumerate(script.scenes):
        speech = by_index.get(index)
        if scene.duration_s is not None:
            fixed += scene.duration_s
        elif speech is None:
            fixed += min(reading_seconds(scene.text), 2.5)
        elif speech.recording is not None:  # played as recorded
            fixed += speech.speech_s + timing.pauses_s(1, timing.MIN_PAUSE_SCALE)
        else:
            free.append(speech)
            fixed += timing.pauses_s(len(speech.clips), timing.MIN_PAUSE_SCALE)
    free_speech = sum(s.speech_s for s in free)
    room = options.target_duration - fixed
    if not free or free_speech <= room:
        return spoken, None
    factor = free_speech / max(room, 0.01)
    if factor > timing.MAX_SPEEDUP:
        note = (
            f"target duration {options.target_duration:g} s is shorter than the speech even at "
            f"{timing.MAX_SPEEDUP:g}x; the video will be longer"
        )
        factor = timing.MAX_SPEEDUP
    else:
        note = None
    faster = {}
    for speech in free:
        voice = get_voice(speech.voice)
        rate = _faster(speech.rate, options.rate, factor)
        faster[speech.source_index] = await _respeak(narrator, speech, voice, rate)
    return [faster.get(s.source_index, s) for s in spoken], note
