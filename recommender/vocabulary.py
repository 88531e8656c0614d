"""Tag vocabulary: the candidate actions of the recommender (numpy only).

The vocabulary grows from three sources:

* tags users put on their content (``add_user_tags``: added, popularity +1 each),
* recommended tags a viewer accepted (``record_accept``: added, popularity +1),
* tags an admin seeds (``seed``: added with popularity 0 and ``seeded=True``).

A rejected tag is counted (``rejects``) but never *added* by a rejection.
Popularity is the count of user/accept uses; ``popularity()`` maps it onto
[0, 1] with ``log1p(count) / log1p(max_count)`` so one very common tag does not
flatten the rest.

Cold start (``cold_start``) ranks tags for a content by a weighted sum of
popularity and text similarity (fraction of the tag's words and character
grams found in the content text), which is also what an untrained agent does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from recommender.features import (
    ContentFeatures,
    FeatureConfig,
    TagFeatures,
    build_tag_features,
    match_features,
    normalize_tag,
)

__all__ = ["TagEntry", "Vocabulary"]


@dataclass
class TagEntry:
    tag: str
    count: int = 0
    accepts: int = 0
    rejects: int = 0
    seeded: bool = False


class Vocabulary:
    """Mutable tag vocabulary with popularity counts. Tags are stored normalised."""

    def __init__(self, max_size: int | None = None) -> None:
        self.max_size = max_size
        self._entries: dict[str, TagEntry] = {}
        self._features: dict[str, TagFeatures] = {}

    # --- growth ---------------------------------------------------------------------------

    def _ensure(self, tag: str) -> TagEntry | None:
        name = normalize_tag(tag)
        if not name:
            return None
        entry = self._entries.get(name)
        if entry is None:
            if self.max_size is not None and len(self._entries) >= self.max_size:
                return None
            entry = TagEntry(tag=name)
            self._entries[name] = entry
        return entry

    def seed(self, tags: Iterable[str]) -> list[str]:
        """Admin seeding: add tags (popularity unchanged). Returns the normalised names."""
        added = []
        for tag in tags:
            entry = self._ensure(tag)
            if entry is not None:
                entry.seeded = True
                added.append(entry.tag)
        return added

    def add_user_tags(self, tags: Iterable[str]) -> list[str]:
        """Tags a user gave their content: add them and count one use each."""
        added = []
        for tag in tags:
            entry = self._ensure(tag)
            if entry is not None:
                entry.count += 1
                added.append(entry.tag)
        return added

    def record_accept(self, tag: str) -> None:
        """A viewer accepted a recommended tag: add it if new, popularity +1."""
        entry = self._ensure(tag)
        if entry is not None:
            entry.count += 1
            entry.accepts += 1

    def record_reject(self, tag: str) -> None:
        """A viewer rejected a tag: counted if the tag is known, never added."""
        entry = self._entries.get(normalize_tag(tag))
        if entry is not None:
            entry.rejects += 1

    def observe_feedback(self, tag: str, reward: float) -> None:
        """Positive reward counts as an accept, anything else as a reject."""
        if reward > 0:
            self.record_accept(tag)
        else:
            self.record_reject(tag)

    def remove(self, tag: str) -> bool:
        """Admin removal (banned or merged tag). Returns whether it existed."""
        name = normalize_tag(tag)
        self._features.pop(name, None)
        return self._entries.pop(name, None) is not None

    # --- queries --------------------------------------------------------------------------

    def __contains__(self, tag: object) -> bool:
        return isinstance(tag, str) and normalize_tag(tag) in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def tags(self) -> list[str]:
        return list(self._entries)

    def entry(self, tag: str) -> TagEntry | None:
        return self._entries.get(normalize_tag(tag))

    def count(self, tag: str) -> int:
        entry = self._entries.get(normalize_tag(tag))
        return entry.count if entry else 0

    def counts(self) -> dict[str, int]:
        return {t: e.count for t, e in self._entries.items()}

    def popularity(self, tag: str) -> float:
        """log1p(count) / log1p(max count) in [0, 1]; 0 for unknown tags."""
        top = max((e.count for e in self._entries.values()), default=0)
        if top <= 0:
            return 0.0
        return math.log1p(self.count(tag)) / math.log1p(top)

    def most_popular(self, k: int) -> list[str]:
        """Top-k by popularity (ties: alphabetical, so results are deterministic)."""
        ranked = sorted(self._entries.values(), key=lambda e: (-e.count, e.tag))
        return [e.tag for e in ranked[:k]]

    def tag_features(self, tag: str, config: FeatureConfig | None = None) -> TagFeatures:
        """Cached tag features (the cache assumes one FeatureConfig per vocabulary)."""
        name = normalize_tag(tag)
        feats = self._features.get(name)
        if feats is None:
            feats = build_tag_features(name, config)
            self._features[name] = feats
        return feats

    def cold_start(
        self,
        content: ContentFeatures,
        k: int,
        popularity_weight: float = 0.3,
        word_weight: float = 1.0,
        gram_weight: float = 0.5,
    ) -> list[tuple[str, float]]:
        """Rank tags for a content with no learned model: popularity + text similarity."""
        names = self.tags()
        if not names or k <= 0:
            return []
        feats = [self.tag_features(t, content.config) for t in names]
        match = match_features(content, feats)
        top = max((e.count for e in self._entries.values()), default=0)
        denom = math.log1p(top) if top > 0 else 1.0
        scored = []
        for i, name in enumerate(names):
            pop = math.log1p(self._entries[name].count) / denom
            score = (
                popularity_weight * pop
                + word_weight * float(match[i, 0])
                + gram_weight * float(match[i, 1])
            )
            scored.append((name, score))
        scored.sort(key=lambda item: (-item[1], item[0]))
        return scored[:k]

    # --- persistence ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_size": self.max_size,
            "entries": [asdict(e) for e in self._entries.values()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Vocabulary:
        vocab = cls(max_size=data.get("max_size"))
        for raw in data.get("entries", []):
            entry = TagEntry(**raw)
            vocab._entries[entry.tag] = entry
        return vocab

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Vocabulary:
        return cls.from_dict(json.loads(text))
