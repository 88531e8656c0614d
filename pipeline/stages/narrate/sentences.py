"""Splitting spoken text into sentences (the unit of synthesis and of captions).

A sentence ends at ``. ! ? …`` followed by a space (or at the end), at the
CJK full stops ``。！？`` (no space needed) and at the Arabic question mark
``؟``.  A full stop does not end a sentence when it belongs to an
abbreviation: a title before a name (``Dr.``, ``Mr.``, ``Prof.``), a Latin
aside (``e.g.``, ``i.e.``, ``vs.``), a dotted initialism (``U.S.``,
``z.B.``), a single initial (``J. R. R. Tolkien``) or ``No.`` before a
number.  A few words that may close a sentence (``etc.``, ``Inc.``) end one
only when the next word is capitalised.  Decimals (``3.5``) never split:
there is no space after their point.
"""

from __future__ import annotations

import re

# A candidate end: the punctuation, then space or the end (CJK: no space needed).
_END = re.compile(r"(?<=[.!?…؟])\s+|(?<=[。！？])\s*")
MAX_SENTENCE_CHARS = 400

# Never the end of a sentence (lower case, without the final dot).
_ALWAYS_JOINED = frozenset(
    {
        *("mr", "mrs", "ms", "mx", "dr", "prof", "sr", "jr", "st", "mt", "rev", "capt", "sgt"),
        *("e.g", "i.e", "cf", "vs", "viz", "approx", "fig", "figs", "vol", "pp", "nr", "bzw"),
        *("usw", "ggf", "mme", "mlle", "jan", "feb", "apr", "aug", "sep", "sept", "oct", "nov"),
    }
)
# The end of a sentence only when the next word starts with a capital.
_JOINED_BEFORE_LOWER = frozenset({"etc", "inc", "ltd", "corp", "bros", "dept"})
_INITIALISM = re.compile(r"^(?:\w\.){2,}$")


def _ends_sentence(before: str, after: str) -> bool:
    """Whether the punctuation ending ``before`` closes a sentence, given the
    text ``after`` it."""
    if not before.endswith("."):
        return True
    word = before.rsplit(None, 1)[-1].lstrip("(\"'«“‘[")
    stem = word[:-1].lower()
    if not stem or not any(ch.isalpha() for ch in stem):
        return True  # "... 42." or "...."
    nxt = after[:1]
    if stem in _ALWAYS_JOINED or (len(stem) == 1 and stem.isalpha() and word != "I."):
        return False
    if stem == "no" and nxt.isdigit():
        return False
    if _INITIALISM.match(word):
        return False  # U.S., e.g. written without the list, z.B.
    if stem in _JOINED_BEFORE_LOWER:
        return nxt.isupper()
    return True


def _pieces(text: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    for match in _END.finditer(text):
        end = match.start()
        if end == start or _ends_sentence(text[start:end], text[match.end() :]):
            pieces.append(text[start:end])
            start = match.end()
    pieces.append(text[start:])
    return pieces


def split_sentences(text: str) -> list[str]:
    out: list[str] = []
    for piece in _pieces(" ".join(text.split())):
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
