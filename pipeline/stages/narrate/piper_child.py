"""The piper-tts child process (run as ``python -m pipeline.stages.narrate.piper_child``).

piper-tts is GPL-3.0-or-later, so it is only ever imported here, in a
process of its own; the parent speaks JSON lines to it over stdin/stdout:

    request  {"text": "...", "rate": 1.0, "out": "/path/clip.wav"}
    reply    {"ok": true, "sample_rate": 22050, "duration_s": 1.9,
              "spans": [[0.05, 0.4], ...]}            # one span per word
             {"ok": false, "error": "..."}

The first line the child prints is ``{"ready": true, "version": "..."}``.
``--patch MODEL OUT`` instead writes the voice with piper's alignment output
(phoneme durations, hence word timings) and exits.
onnxruntime runs on one thread without its memory arena so the worker stays
small (the narrate stage measures its peak RSS in bench/bench_narration.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from piper import PiperVoice, SynthesisConfig
from piper.config import PiperConfig

from pipeline.stages.narrate.wav import wav_bytes


def patch_model(model: Path, patched: Path) -> None:
    """Write ``model`` with piper's alignment output added (``--patch``).

    Done once per voice, in a short-lived process of its own: loading the
    ONNX graph to patch it costs more memory than the speaking child needs."""
    import onnx  # only here: the speaking child never loads it
    from piper.patch_voice_with_alignment import add_alignment_output

    proto = onnx.load(str(model))
    with contextlib.suppress(ValueError):  # already patched
        add_alignment_output(proto)
    tmp = patched.with_name(f".{patched.name}.{os.getpid()}")
    onnx.save(proto, str(tmp))
    os.replace(tmp, patched)  # atomic: a concurrent child sees all or nothing


def load_voice(model: Path, config: Path) -> PiperVoice:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False  # no per-shape pre-planned buffers kept
    session = onnxruntime.InferenceSession(
        str(model), sess_options=options, providers=["CPUExecutionProvider"]
    )
    return PiperVoice(
        session=session, config=PiperConfig.from_dict(json.loads(config.read_text("utf-8")))
    )


# The decoder's activations grow with the audio of one call (~45 MB per
# second of speech): long sentences are spoken in pieces at their commas.
MAX_PIECE_CHARS = 48
_PAUSES = re.compile(r"(?<=[,;:])\s+")


MAX_UNBROKEN_CHARS = 64  # a piece with no comma is cut between words past this


def _unbroken(part: str) -> list[str]:
    words, out = part.split(), [""]
    for word in words:
        if out[-1] and len(out[-1]) + 1 + len(word) > MAX_UNBROKEN_CHARS:
            out.append(word)
        else:
            out[-1] = f"{out[-1]} {word}".strip()
    # Even halves rather than a long piece and a stub.
    if len(out) == 2 and len(out[1]) < len(out[0]) / 2:
        half = len(words) // 2
        out = [" ".join(words[:half]), " ".join(words[half:])]
    return out


def pieces_of(text: str) -> list[str]:
    out: list[str] = []
    for part in (p for chunk in _PAUSES.split(text) for p in _unbroken(chunk)):
        if out and len(out[-1]) + 1 + len(part) <= MAX_PIECE_CHARS:
            out[-1] = f"{out[-1]} {part}"
        else:
            out.append(part)
    return out


# What the decoder's memory follows is the phonemes, not the characters:
# symbols and emoji are read out ("≥" is "greater than or equal to"), so a
# short piece of them can be three times as long as spoken text and take
# hundreds of MB.  48 characters of prose are about 55 phonemes.
MAX_PIECE_PHONEMES = 64


def _phonemes(voice: PiperVoice, text: str) -> int:
    return sum(len(sentence) for sentence in voice.phonemize(text))


def fit_pieces(voice: PiperVoice, pieces: list[str]) -> list[str]:
    """``pieces`` with any over the phoneme budget halved between words."""
    out: list[str] = []
    todo = list(reversed(pieces))
    while todo:
        piece = todo.pop()
        words = piece.split()
        if len(words) > 1 and _phonemes(voice, piece) > MAX_PIECE_PHONEMES:
            half = len(words) // 2
            todo += [" ".join(words[half:]), " ".join(words[:half])]
        else:
            out.append(piece)
    return out


def speak(voice: PiperVoice, text: str, rate: float) -> tuple[bytes, int, list[list[float]]]:
    config = SynthesisConfig(length_scale=voice.config.length_scale / rate)
    rate_hz = voice.config.sample_rate
    pieces: list[np.ndarray] = []
    spans: list[list[float]] = []
    offset = 0  # samples before this chunk
    chunks = (
        chunk
        for piece in fit_pieces(voice, pieces_of(text))
        for chunk in voice.synthesize(piece, syn_config=config, include_alignments=True)
    )
    for chunk in chunks:
        samples = chunk.audio_int16_array
        if chunk.phoneme_alignments:
            cursor = offset
            word_start: int | None = None
            word_end = offset
            for aligned in chunk.phoneme_alignments:
                # Words are the phoneme runs between spaces; BOS/EOS and
                # the spaces themselves are the pauses.
                if aligned.phoneme in (" ", "^", "$"):
                    if word_start is not None:
                        spans.append([word_start / rate_hz, word_end / rate_hz])
                        word_start = None
                elif word_start is None:
                    word_start = cursor
                cursor += int(aligned.num_samples)
                if aligned.phoneme not in (" ", "^", "$"):
                    word_end = cursor
            if word_start is not None:
                spans.append([word_start / rate_hz, word_end / rate_hz])
        pieces.append(samples)
        offset += len(samples)
    pcm = np.concatenate(pieces).astype("<i2").tobytes() if pieces else b""
    return pcm, rate_hz, spans


def main() -> int:
    if sys.argv[1] == "--patch":
        patch_model(Path(sys.argv[2]), Path(sys.argv[3]))
        return 0
    model, config = Path(sys.argv[1]), Path(sys.argv[2])
    voice = load_voice(model, config)
    out = sys.stdout
    out.write(json.dumps({"ready": True, "version": version("piper-tts")}) + "\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        reply: dict[str, Any]
        try:
            request = json.loads(line)
            pcm, rate_hz, spans = speak(voice, str(request["text"]), float(request["rate"]))
            Path(request["out"]).write_bytes(wav_bytes(pcm, rate_hz))
            reply = {
                "ok": True,
                "sample_rate": rate_hz,
                "duration_s": len(pcm) / 2 / rate_hz,
                "spans": spans,
            }
        except Exception as exc:  # reported to the parent, which decides
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()
        _trim()
    return 0


def _trim() -> None:
    """Give freed memory back to the system after each sentence.

    Tensors of a different size every sentence fragment the heap; without
    this the child's RSS creeps up over a long script."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


if __name__ == "__main__":
    raise SystemExit(main())
