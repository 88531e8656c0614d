"""espeak-ng's library with its word events, in a child process of its own.

Run as ``python -m pipeline.stages.narrate.espeak_child VOICE WPM`` with the
text on stdin.  espeak-ng is GPL-3.0-or-later, so its library is loaded
(through ctypes, standard library only) in this short-lived process and
never in a worker.  The command line cannot report where words are spoken;
the library's synthesis callback does (``espeakEVENT_WORD``: the word's
character position in the text and its time in the audio).

Output on stdout: one JSON line ``{"sample_rate": 22050, "words": [[char
offset from 0, length, ms], ...]}``, then the raw 16-bit mono PCM.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import sys

AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_DONT_EXIT = 0x8000
POS_CHARACTER = 1
CHARS_UTF8 = 1
EVENT_LIST_TERMINATED = 0
EVENT_WORD = 1
PARAMETER_RATE = 1


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_Callback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


def library() -> ctypes.CDLL:
    name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
    return ctypes.CDLL(name)


def speak(text: str, voice: str, wpm: int) -> tuple[int, bytes, list[list[int]]]:
    lib = library()
    rate_hz = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, None, INITIALIZE_DONT_EXIT)
    if rate_hz <= 0:
        raise RuntimeError("espeak-ng did not initialise")
    # A voice name ("en") or, as the command line's -v allows, a language ("fr-fr").
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        wanted = _Voice(languages=voice.encode())
        if lib.espeak_SetVoiceByProperties(ctypes.byref(wanted)) != 0:
            raise RuntimeError(f"espeak-ng has no voice {voice!r}")
    lib.espeak_SetParameter(PARAMETER_RATE, wpm, 0)
    audio: list[bytes] = []
    words: list[list[int]] = []

    @_Callback
    def on_audio(
        wav: ctypes.Array[ctypes.c_short], count: int, events: ctypes.Array[_Event]
    ) -> int:
        if count > 0:
            audio.append(ctypes.string_at(wav, count * 2))
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type == EVENT_WORD:
                words.append([event.text_position - 1, event.length, event.audio_position])
            i += 1
        return 0

    lib.espeak_SetSynthCallback(on_audio)
    data = text.encode("utf-8")
    status = lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
    if status != 0:
        raise RuntimeError(f"espeak-ng failed (status {status})")
    lib.espeak_Synchronize()
    lib.espeak_Terminate()
    return rate_hz, b"".join(audio), words


def main() -> int:
    voice, wpm = sys.argv[1], int(sys.argv[2])
    text = sys.stdin.buffer.read().decode("utf-8")
    try:
        rate_hz, pcm, words = speak(text, voice, wpm)
    except RuntimeError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    out = sys.stdout.buffer
    out.write(json.dumps({"sample_rate": rate_hz, "words": words}).encode() + b"\n")
    out.write(pcm)
    out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
