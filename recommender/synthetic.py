"""Deterministic synthetic tagging data for the simulator (numpy only).

Each tag is a topic with its own pseudo-words (plus a few words borrowed from
another topic, so topics overlap). An item has 1-3 true tags, drawn with a
Zipf-like topic popularity; its text is a title and a description where each
word is, with probability ``topic_word_prob``, a word of one of its topics
(sometimes inflected: "-s", "-ing", ...) and otherwise a noise word drawn from
a Zipf-distributed shared vocabulary. The tag name itself appears in the text
only with probability ``mention_prob`` per tag, so the tags must be learned
from the topic words, not read off the text. Item request weights are
Zipf-distributed over a random permutation of the items.

Same arguments -> byte-identical CSV (columns ``text``, ``tags``, ``weight``).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["TAG_NAMES", "SyntheticItem", "generate_items", "write_csv"]

TAG_NAMES: tuple[str, ...] = (
    "cooking", "travel", "music", "fitness", "gaming", "finance", "science", "history",
    "fashion", "pets", "gardening", "photography", "comedy", "education", "technology",
    "sports", "art", "nature", "cars", "diy", "parenting", "health", "movies", "books",
    "architecture", "space", "ocean", "coffee", "dance", "politics", "crypto", "wildlife",
    "yoga", "baking", "camping", "robotics", "poetry", "chess", "surfing", "vintage",
    "anime", "podcasts", "hiking", "startups", "jazz", "cycling", "skincare", "woodworking",
    "astronomy", "languages", "meditation", "football", "recipes", "interior-design",
    "machine-learning", "street-food", "home-improvement", "climate", "fishing", "magic",
)  # fmt: skip

_CONSONANTS = "bcdfghjklmnprstvz"
_VOWELS = "aeiou"
_SUFFIXES = ("s", "ing", "ed", "er", "ly")
_STOPWORDS = ("the", "a", "of", "and", "in", "to", "with", "for", "on", "my", "this", "how")


@dataclass(frozen=True)
class SyntheticItem:
    text: str
    tags: tuple[str, ...]
    weight: float


def _pseudo_words(rng: np.random.Generator, n: int, taken: set[str]) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        syllables = int(rng.integers(2, 4))
        word = "".join(
            _CONSONANTS[int(rng.integers(len(_CONSONANTS)))] + _VOWELS[int(rng.integers(5))]
            for _ in range(syllables)
        )
        if rng.random() < 0.5:
            word += _CONSONANTS[int(rng.integers(len(_CONSONANTS)))]
        if word not in taken:
            taken.add(word)
            out.append(word)
    return out


def _zipf_probs(n: int, exponent: float) -> np.ndarray:
    p = 1.0 / np.arange(1, n + 1) ** exponent
    return p / p.sum()


def generate_items(
    n_items: int = 2000,
    n_tags: int = 40,
    seed: int = 0,
    *,
    words_per_topic: int = 12,
    borrowed_words: int = 3,
    noise_vocabulary: int = 400,
    topic_word_prob: float = 0.3,
    mention_prob: float = 0.25,
    topic_zipf: float = 0.8,
    weight_zipf: float = 1.0,
) -> list[SyntheticItem]:
    if not 1 <= n_tags <= len(TAG_NAMES):
        raise ValueError(f"n_tags must be in [1, {len(TAG_NAMES)}]")
    rng = np.random.default_rng(seed)
    tags = list(TAG_NAMES[:n_tags])
    taken: set[str] = set(tags) | set(_STOPWORDS)
    own = {t: _pseudo_words(rng, words_per_topic, taken) for t in tags}
    topic_words: dict[str, list[str]] = {}
    for i, t in enumerate(tags):
        other = own[tags[(i + 1 + int(rng.integers(max(n_tags - 1, 1)))) % n_tags]]
        borrowed = [other[int(j)] for j in rng.choice(len(other), borrowed_words, replace=False)]
        topic_words[t] = own[t] + (borrowed if n_tags > 1 else [])
    noise = _pseudo_words(rng, noise_vocabulary, taken) + list(_STOPWORDS) * 3
    noise_p = _zipf_probs(len(noise), 1.0)
    topic_p = _zipf_probs(n_tags, topic_zipf)[rng.permutation(n_tags)]

    def word_for(item_tags: Sequence[str]) -> str:
        if rng.random() < topic_word_prob:
            pool = topic_words[item_tags[int(rng.integers(len(item_tags)))]]
            word = pool[int(rng.integers(len(pool)))]
            if rng.random() < 0.3:
                word += _SUFFIXES[int(rng.integers(len(_SUFFIXES)))]
            return word
        return noise[int(rng.choice(len(noise), p=noise_p))]

    weights = _zipf_probs(n_items, weight_zipf)[rng.permutation(n_items)]
    items = []
    for i in range(n_items):
        n_item_tags = min(n_tags, int(rng.choice([1, 2, 3], p=[0.45, 0.35, 0.2])))
        item_tags = [
            tags[int(j)] for j in rng.choice(n_tags, n_item_tags, replace=False, p=topic_p)
        ]
        title = [word_for(item_tags) for _ in range(int(rng.integers(3, 8)))]
        body = [word_for(item_tags) for _ in range(int(rng.integers(12, 31)))]
        for t in item_tags:
            if rng.random() < mention_prob:
                target = title if rng.random() < 0.5 else body
                target.insert(int(rng.integers(len(target) + 1)), t.replace("-", " "))
        text = " ".join(title).capitalize() + ". " + " ".join(body).capitalize() + "."
        items.append(SyntheticItem(text, tuple(item_tags), float(weights[i] * n_items)))
    return items


def write_csv(path: str | Path, items: Sequence[SyntheticItem]) -> None:
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "tags", "weight"])
        for item in items:
            writer.writerow([item.text, " ".join(item.tags), f"{item.weight:.6f}"])
