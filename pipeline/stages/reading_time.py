"""How long on-screen text takes to read: the timing of silent scenes.

Shared by the storyboard planner (a silent card lasts its reading time) and
the narrate stage (a target duration must leave the silent scenes theirs).
"""

from __future__ import annotations

from pipeline.stages.text_cards import is_ideographic

WORDS_PER_S = 2.5  # ~150 wpm: on-screen text is read slower than a page
CJK_CHARS_PER_S = 6.0
LEAD_S = 1.0  # time to notice a new card before reading starts


def reading_seconds(text: str) -> float:
    """Time to read ``text`` on screen: words, plus characters for CJK."""
    cjk = 0
    words = 0
    for token in text.split():
        ideographs = sum(1 for ch in token if is_ideographic(ord(ch)) and ch.isalpha())
        cjk += ideographs
        if ideographs < len(token) and any(ch.isalnum() for ch in token):
            words += 1
    return LEAD_S + words / WORDS_PER_S + cjk / CJK_CHARS_PER_S
