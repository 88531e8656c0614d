"""Placing the words of a sentence on its audio."""

from __future__ import annotations

import math
import re
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


_VOWEL_GROUPS = re.compile(r"[aeiouyàâäéèêëîïôöùûüœæåøáíóúý]+", re.IGNORECASE)
# How much a cut after a word's last character is worth (0 = a natural pause).
_CUT_COST = {".": 0.0, "!": 0.0, "?": 0.0, "…": 0.0, "。": 0.0, "！": 0.0, "？": 0.0,
             ";": 0.1, ":": 0.1, ",": 0.2, "、": 0.2, "，": 0.2, "—": 0.2, "-": 0.6}  # fmt: skip
_NO_PUNCTUATION_CUT = 1.0


def syllables(word: str) -> float:
    """A rough count of the syllables in ``word`` (its share of speaking time):
    vowel groups in Latin script, one per CJK/kana/hangul character, about one
    per 2.5 letters elsewhere, about one per digit."""
    cjk = sum(1 for ch in word if "\u3040" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af")
    digits = sum(1 for ch in word if ch.isdigit())
    latin = "".join(ch for ch in word if ch.isalpha() and ch <= "\u024f")
    other = sum(1 for ch in word if ch.isalpha()) - cjk - len(latin)
    count = cjk + 1.2 * digits + other / 2.5
    if latin:
        vowels = len(_VOWEL_GROUPS.findall(latin))
        if latin.lower().endswith("e") and vowels > 1 and not latin.lower().endswith("le"):
            vowels -= 1  # a silent final e
        count += max(1, vowels)
    return max(1.0, count)


def _cut_cost(word: str) -> float:
    stripped = word.rstrip("\"'»”’)]")
    return _CUT_COST.get(stripped[-1:], _NO_PUNCTUATION_CUT) if stripped else _NO_PUNCTUATION_CUT


def align_words(
    words: Sequence[str], spans: Sequence[tuple[float, float]]
) -> tuple[SpokenWord, ...]:
    """Place the written words of a recording on its speech spans without
    recognising the speech.

    The words are cut into one run per span (a span is speech between two
    pauses), choosing the cuts that best fit both the spans' lengths (each
    run's syllables against its span's share of the speaking time) and the
    text (pauses fall after punctuation); within a run, each word gets time
    in proportion to its syllables.  With more spans than words the closest
    spans are joined first (a pause inside a word is a stop consonant)."""
    if not words or not spans:
        return ()
    spans = _join_closest(list(spans), len(words))
    weights = [syllables(w) for w in words]
    groups = _cut_into_runs(words, weights, spans)
    placed: list[SpokenWord] = []
    for (first, last), (a, b) in zip(groups, spans, strict=True):
        total = sum(weights[first:last])
        at = a
        for i in range(first, last):
            end = a + (b - a) * sum(weights[first : i + 1]) / total
            placed.append(SpokenWord(text=words[i], start_s=round(at, 3), end_s=round(end, 3)))
            at = end
    return tuple(placed)


def _join_closest(spans: list[tuple[float, float]], count: int) -> list[tuple[float, float]]:
    while len(spans) > count:
        gaps = [spans[i + 1][0] - spans[i][1] for i in range(len(spans) - 1)]
        i = gaps.index(min(gaps))
        spans[i : i + 2] = [(spans[i][0], spans[i + 1][1])]
    return spans


def _cut_into_runs(
    words: Sequence[str], weights: Sequence[float], spans: Sequence[tuple[float, float]]
) -> list[tuple[int, int]]:
    """``[(first, end)]`` word ranges, one non-empty run per span (dynamic
    programming over the cut positions; runs are bounded in length so long
    recordings stay cheap)."""
    n, m = len(words), len(spans)
    if m == 1:
        return [(0, n)]
    prefix = [0.0]
    for w in weights:
        prefix.append(prefix[-1] + w)
    voiced = sum(b - a for a, b in spans)
    per_s = prefix[-1] / voiced  # syllables per second of speech
    longest = max(8, 4 * n // m)
    inf = float("inf")
    # best[j][i]: the cost of the first j spans holding words[:i]
    best = [[inf] * (n + 1) for _ in range(m + 1)]
    back = [[0] * (n + 1) for _ in range(m + 1)]
    best[0][0] = 0.0
    for j in range(1, m + 1):
        length = spans[j - 1][1] - spans[j - 1][0]
        expected = max(length * per_s, 0.5)
        lo = j  # every earlier span holds at least one word
        hi = n - (m - j)  # every later span can still hold one
        for i in range(lo, hi + 1):
            cut = 0.0 if i == n else _cut_cost(words[i - 1])
            for k in range(max(j - 1, i - longest), i):
                if best[j - 1][k] == inf:
                    continue
                ratio = (prefix[i] - prefix[k]) / expected
                cost = best[j - 1][k] + math.log(ratio) ** 2 + cut
                if cost < best[j][i]:
                    best[j][i] = cost
                    back[j][i] = k
    if best[m][n] == inf:  # runs longer than the bound would be needed: share evenly
        step = n / m
        edges = [round(step * j) for j in range(m + 1)]
        return [(edges[j], edges[j + 1]) for j in range(m)]
    groups: list[tuple[int, int]] = []
    i = n
    for j in range(m, 0, -1):
        k = back[j][i]
        groups.append((k, i))
        i = k
    return groups[::-1]
