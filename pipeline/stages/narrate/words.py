"""Placing the words of a sentence on its audio."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.stages.narration_plan import SpokenWord


def text_words(text: str) -> list[str]:
    return text.split()


def place_words(
    words: Sequence[str], spans: Sequence[tuple[float, float]]
) -> tuple[SpokenWord, ...]:
    """Give each written word a time from the engine's word-like spans.

    When the engine found as many spans as there are words they pair one to
    one.  Otherwise (a number read as several words, words run together) the
    words share the spoken time in proportion to their length, skipping the
    silences between spans, so every word still starts while speech is heard
    and the times stay monotonic."""
    if not words:
        return ()
    if not spans:
        return ()
    if len(spans) == len(words):
        return tuple(
            SpokenWord(text=w, start_s=round(a, 3), end_s=round(b, 3))
            for w, (a, b) in zip(words, spans, strict=True)
        )
    voiced = sum(b - a for a, b in spans)
    weights = [len(w) + 1 for w in words]
    total = sum(weights)

    def at(offset: float) -> float:
        # Voiced time -> clip time.
        for a, b in spans:
            if offset <= b - a + 1e-9:
                return a + offset
            offset -= b - a
        return spans[-1][1]

    placed: list[SpokenWord] = []
    acc = 0.0
    for word, weight in zip(words, weights, strict=True):
        start = at(voiced * acc / total)
        acc += weight
        end = at(voiced * acc / total)
        placed.append(
            SpokenWord(text=word, start_s=round(start, 3), end_s=round(max(start, end), 3))
        )
    return tuple(placed)
