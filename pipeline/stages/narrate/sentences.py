"""Splitting spoken text into sentences (the unit of synthesis and of captions)."""

from __future__ import annotations

import re

# A sentence ends at . ! ? … (and their CJK forms) followed by space or the end.
_END = re.compile(r"(?<=[.!?…])\s+|(?<=[。！？])\s*")
MAX_SENTENCE_CHARS = 400


def split_sentences(text: str) -> list[str]:
    out: list[str] = []
    for piece in _END.split(" ".join(text.split())):
        piece = piece.strip()
        if not piece or not any(ch.isalnum() for ch in piece):
            continue
        # Very long "sentences" (lists without full stops) are cut at commas
        # so a caption cue stays readable and one synthesis stays short.
        while len(piece) > MAX_SENTENCE_CHARS:
            cut = piece.rfind(", ", 0, MAX_SENTENCE_CHARS)
            cut = cut + 1 if cut > 0 else piece.rfind(" ", 0, MAX_SENTENCE_CHARS)
            if cut <= 0:
                cut = MAX_SENTENCE_CHARS
            out.append(piece[:cut].strip())
            piece = piece[cut:].strip()
        if piece:
            out.append(piece)
    return out
