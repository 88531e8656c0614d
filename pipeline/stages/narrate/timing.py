"""How speech and pauses make a scene's length (shared by narrate and storyboard).

A spoken scene lasts ``LEAD_S + clips + GAP_S between sentences + TAIL_S``,
the pauses multiplied by a pause scale: 1 normally, down to
``MIN_PAUSE_SCALE`` when a ``[duration]`` or a target ``duration`` asks
for less, up to ``MAX_PAUSE_SCALE`` when it asks for more.  A sentence is
never cut: what the pauses cannot absorb is taken by speaking faster, up to
``MAX_SPEEDUP`` times the requested rate, and beyond that the job fails.
"""

from __future__ import annotations

from collections.abc import Sequence

LEAD_S = 0.35  # the card appears, then the voice starts
GAP_S = 0.3  # between two sentences of one scene
TAIL_S = 0.6  # after the last sentence, before the next card
MIN_PAUSE_SCALE = 0.25
MAX_PAUSE_SCALE = 6.0
MAX_SPEEDUP = 1.25
# Estimate of the neural voice's speed, used to refuse at submission a
# [duration] that even the fastest allowed speech cannot meet.
ESTIMATE_WORDS_PER_S = 2.9
ESTIMATE_CJK_CHARS_PER_S = 5.0


def pauses_s(sentences: int, scale: float = 1.0) -> float:
    if sentences == 0:
        return 0.0
    return (LEAD_S + GAP_S * (sentences - 1) + TAIL_S) * scale


def scene_seconds(clip_durations: Sequence[float], scale: float = 1.0) -> float:
    return sum(clip_durations) + pauses_s(len(clip_durations), scale)


def estimate_speech_s(text: str, rate: float = 1.0) -> float:
    """Rough seconds the voice takes for ``text`` at ``rate`` (submission check)."""
    cjk = sum(1 for ch in text if "\u3040" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af")
    words = len([w for w in text.split() if any(c.isalnum() for c in w)])
    return (words / ESTIMATE_WORDS_PER_S + cjk / ESTIMATE_CJK_CHARS_PER_S) / rate
