"""Content and tag features for the tag recommender (numpy only).

Everything here is imported by the API process, so it must never import torch.

Content features
    Signed feature hashing ("hashing trick") of

    * word unigrams and bigrams of the title, description and script text,
    * character 3-5-grams of every word (fastText style, with ``<`` ``>`` word
      boundary markers, so "cooking" and "cook" share grams),
    * a media-type one-hot and a log-scale duration bucket,
    * a constant bias feature (lets the model learn a per-tag prior).

    Text fields share one namespace per feature kind; a field weight scales the
    term frequency (the title counts more than the script). Every group is L2
    normalised and multiplied by its group weight, so the vector norm does not
    depend on the text length. Indices live in ``[0, 2**content_bits)``; the
    sign of each feature comes from another bit of the same hash, which keeps
    collisions unbiased.

Tag features
    Tags are actions with features of their own: an id feature for the
    normalised tag, its words, and its character 3-5-grams, hashed into
    ``[0, 2**tag_bits)``. A tag never seen in training still gets a vector
    from its words and grams, and therefore a score.

Match features
    For cold start (and as model inputs) a content also keeps the sorted sets
    of 64-bit hashes of its words and character grams. ``match_features``
    measures which fraction of a tag's words / grams occur in the content text.

The hash is keyed BLAKE2b (stable across processes and Python versions, unlike
the salted built-in ``hash``); ``FeatureConfig.hash_version`` names the scheme.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "DURATION_BUCKETS_S",
    "MEDIA_TYPES",
    "ContentFeatures",
    "FeatureConfig",
    "TagFeatures",
    "TagSet",
    "build_content_features",
    "build_tag_features",
    "duration_bucket",
    "match_features",
    "normalize_media_type",
    "normalize_tag",
    "stable_hash",
    "tag_words",
    "words",
]

MEDIA_TYPES: tuple[str, ...] = ("image", "video", "document", "audio", "generated_video")
#: Upper bounds (seconds) of the duration buckets; longer is the last bucket.
DURATION_BUCKETS_S: tuple[float, ...] = (10.0, 30.0, 60.0, 180.0, 600.0, 1800.0)

_HASH_KEY = b"t2m-recommender-v1"
_WORD_RE = re.compile(r"\w+", re.UNICODE)
_TAG_STRIP_RE = re.compile(r"[^\w\-]+", re.UNICODE)
_TAG_SPLIT_RE = re.compile(r"[-_\s]+")
_MAX_TAG_CHARS = 64
_MIME_PREFIXES = {"image": "image", "video": "video", "audio": "audio"}
_MEDIA_ALIASES = {
    "generated-video": "generated_video",
    "generated video": "generated_video",
    "generated": "generated_video",
    "doc": "document",
    "pdf": "document",
    "text": "document",
}

#: Number of columns returned by ``match_features``.
N_MATCH_FEATURES = 2

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]
HashArray = npt.NDArray[np.uint64]


@lru_cache(maxsize=1 << 19)
def stable_hash(token: str) -> int:
    """Unsigned 64-bit keyed BLAKE2b hash of ``token`` (same value in every process)."""
    digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8, key=_HASH_KEY).digest()
    return int.from_bytes(digest, "little")


@dataclass(frozen=True)
class FeatureConfig:
    """Hashing dimensions and group weights; exported with every model."""

    content_bits: int = 16
    tag_bits: int = 14
    char_ngram_min: int = 3
    char_ngram_max: int = 5
    max_field_chars: int = 4000
    title_weight: float = 1.5
    description_weight: float = 1.0
    script_weight: float = 0.7
    word_weight: float = 1.0
    bigram_weight: float = 0.5
    char_weight: float = 1.0
    media_weight: float = 0.3
    duration_weight: float = 0.2
    bias_weight: float = 0.5
    tag_id_weight: float = 1.0
    tag_word_weight: float = 0.7
    tag_char_weight: float = 0.7
    hash_version: int = 1

    @property
    def content_dim(self) -> int:
        return 1 << self.content_bits

    @property
    def tag_dim(self) -> int:
        return 1 << self.tag_bits

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureConfig:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True, eq=False)
class ContentFeatures:
    """Sparse hashed features of one piece of content.

    ``indices``/``values``: the model input (sorted unique indices, float32 values).
    ``word_hashes``/``gram_hashes``: sorted unique 64-bit hashes of the words and
    character grams of the text, used for tag/text match features.
    """

    indices: IntArray
    values: FloatArray
    word_hashes: HashArray
    gram_hashes: HashArray
    config: FeatureConfig = field(default_factory=FeatureConfig)

    @property
    def nnz(self) -> int:
        return int(self.indices.shape[0])

    def dense(self) -> FloatArray:
        """Dense vector (tests and debugging only: 2**content_bits floats)."""
        out = np.zeros(self.config.content_dim, dtype=np.float32)
        out[self.indices] = self.values
        return out


@dataclass(frozen=True, eq=False)
class TagFeatures:
    """Hashed features of one (normalised) tag name."""

    tag: str
    indices: IntArray
    values: FloatArray
    word_hashes: HashArray
    gram_hashes: HashArray


@lru_cache(maxsize=1 << 16)
def normalize_tag(tag: str) -> str:
    """Canonical tag form: case-folded, no leading '#', inner spaces as '-', <= 64 chars.

    Returns "" for a tag with no word characters (callers drop those).
    """
    text = tag.strip().lstrip("#").casefold()
    text = re.sub(r"\s+", "-", text)
    text = _TAG_STRIP_RE.sub("", text).strip("-_")
    return text[:_MAX_TAG_CHARS]


def words(text: str) -> list[str]:
    """Lower-cased word tokens (unicode letters, digits, underscore)."""
    return _WORD_RE.findall(text.casefold())


def tag_words(tag: str) -> list[str]:
    """Words of a normalised tag name ("machine-learning" -> ["machine", "learning"])."""
    return [w for w in _TAG_SPLIT_RE.split(tag) if w]


def normalize_media_type(media_type: str | None) -> str:
    """Map a media type or MIME type onto one of MEDIA_TYPES ("other" if unknown)."""
    if not media_type:
        return "other"
    value = media_type.strip().casefold()
    if value in MEDIA_TYPES:
        return value
    if value in _MEDIA_ALIASES:
        return _MEDIA_ALIASES[value]
    prefix = value.split("/", 1)[0]
    if "/" in value:
        if prefix in _MIME_PREFIXES:
            return _MIME_PREFIXES[prefix]
        if prefix in ("application", "text"):
            return "document"
    return "other"


def duration_bucket(duration_s: float | None) -> str:
    """Log-scale duration bucket label; "none" when there is no duration (images, docs)."""
    if duration_s is None or not math.isfinite(duration_s) or duration_s <= 0:
        return "none"
    for i, bound in enumerate(DURATION_BUCKETS_S):
        if duration_s < bound:
            return f"b{i}"
    return f"b{len(DURATION_BUCKETS_S)}"


def _char_grams(word: str, lo: int, hi: int) -> Iterable[str]:
    padded = f"<{word}>"
    size = len(padded)
    for n in range(lo, hi + 1):
        if n > size:
            break
        for i in range(size - n + 1):
            yield padded[i : i + n]


@lru_cache(maxsize=1 << 17)
def _word_grams(word: str, lo: int, hi: int) -> HashArray:
    """64-bit hashes of the character grams of one word (with repeats), cached per word."""
    return np.array([stable_hash("g\x1f" + g) for g in _char_grams(word, lo, hi)], dtype=np.uint64)


def _token_hashes(tokens: Sequence[str], namespace: str) -> HashArray:
    prefix = namespace + "\x1f"
    return np.fromiter(
        (stable_hash(prefix + t) for t in tokens), dtype=np.uint64, count=len(tokens)
    )


_SIGN_SHIFT = np.uint64(63)


def _mix64(x: HashArray) -> HashArray:
    """splitmix64 finaliser (wrapping uint64 arithmetic): decorrelates salted hashes."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _hashed_group(
    hashes: HashArray, tf: npt.NDArray[np.float64], mask: int, salt: int, weight: float
) -> tuple[IntArray, npt.NDArray[np.float64]]:
    """One feature group from token hashes with term frequencies (repeats allowed).

    Values are sign * sqrt(tf), L2-normalised to ``weight``. ``salt`` separates the
    namespaces of groups that share token hashes (char grams of content vs tags).
    """
    if hashes.shape[0] == 0 or weight == 0.0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    uniq, inverse = np.unique(hashes, return_inverse=True)
    counts = np.bincount(inverse, weights=tf)
    mixed = _mix64(uniq ^ np.uint64(salt))
    idx = (mixed & np.uint64(mask)).astype(np.int64)
    sign = np.where((mixed >> _SIGN_SHIFT) == 1, -1.0, 1.0)
    values = sign * np.sqrt(counts)
    return idx, values * (weight / math.sqrt(float(counts.sum())))


def _merge(
    parts: Sequence[tuple[IntArray, npt.NDArray[np.float64]]],
) -> tuple[IntArray, FloatArray]:
    idx = np.concatenate([p[0] for p in parts])
    if idx.shape[0] == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    val = np.concatenate([p[1] for p in parts])
    uniq, inverse = np.unique(idx, return_inverse=True)
    summed = np.bincount(inverse, weights=val)
    keep = summed != 0.0
    return uniq[keep], summed[keep].astype(np.float32)


def _salt(namespace: str) -> int:
    return stable_hash("salt\x1f" + namespace)


_SALTS = {ns: _salt(ns) for ns in ("w", "b", "c", "media", "dur", "bias", "t:id", "t:w", "t:c")}


def _one_hot(
    namespace: str, token: str, mask: int, weight: float
) -> tuple[IntArray, npt.NDArray[np.float64]]:
    h = np.array([stable_hash("x\x1f" + token)], dtype=np.uint64)
    return _hashed_group(h, np.ones(1), mask, _SALTS[namespace], weight)


def build_content_features(
    title: str | None = None,
    description: str | None = None,
    script: str | None = None,
    media_type: str | None = None,
    duration_s: float | None = None,
    config: FeatureConfig | None = None,
) -> ContentFeatures:
    """Hashed features of a piece of content. Deterministic for equal inputs and config."""
    cfg = config or FeatureConfig()
    mask = cfg.content_dim - 1
    word_list: list[str] = []
    word_tf: list[float] = []
    bigram_list: list[str] = []
    bigram_tf: list[float] = []
    for text, weight in (
        (title, cfg.title_weight),
        (description, cfg.description_weight),
        (script, cfg.script_weight),
    ):
        if not text or weight <= 0.0:
            continue
        tokens = words(text[: cfg.max_field_chars])
        word_list.extend(tokens)
        word_tf.extend([weight] * len(tokens))
        bigram_list.extend(f"{a} {b}" for a, b in itertools.pairwise(tokens))
        bigram_tf.extend([weight] * max(len(tokens) - 1, 0))
    word_h = _token_hashes(word_list, "w")
    word_w = np.asarray(word_tf, dtype=np.float64)
    grams: list[HashArray] = []
    gram_tf: list[npt.NDArray[np.float64]] = []
    if word_list:
        # char grams are computed once per distinct word and weighted by its tf
        _, first, inverse = np.unique(word_h, return_index=True, return_inverse=True)
        tf_by_word = np.bincount(inverse, weights=word_w)
        for pos, w_idx in enumerate(first):
            g = _word_grams(word_list[int(w_idx)], cfg.char_ngram_min, cfg.char_ngram_max)
            grams.append(g)
            gram_tf.append(np.full(g.shape[0], tf_by_word[pos]))
    gram_h = np.concatenate(grams) if grams else np.zeros(0, dtype=np.uint64)
    gram_w = np.concatenate(gram_tf) if gram_tf else np.zeros(0, dtype=np.float64)
    parts = [
        _hashed_group(word_h, word_w, mask, _SALTS["w"], cfg.word_weight),
        _hashed_group(
            _token_hashes(bigram_list, "b"),
            np.asarray(bigram_tf, dtype=np.float64),
            mask,
            _SALTS["b"],
            cfg.bigram_weight,
        ),
        _hashed_group(gram_h, gram_w, mask, _SALTS["c"], cfg.char_weight),
        _one_hot("media", "media:" + normalize_media_type(media_type), mask, cfg.media_weight),
        _one_hot("dur", "dur:" + duration_bucket(duration_s), mask, cfg.duration_weight),
        _one_hot("bias", "bias", mask, cfg.bias_weight),
    ]
    indices, values = _merge(parts)
    return ContentFeatures(
        indices=indices,
        values=values,
        word_hashes=np.unique(word_h),
        gram_hashes=np.unique(gram_h),
        config=cfg,
    )


def build_tag_features(tag: str, config: FeatureConfig | None = None) -> TagFeatures:
    """Hashed features of a tag (normalised first). Works for tags never seen before."""
    cfg = config or FeatureConfig()
    name = normalize_tag(tag)
    mask = cfg.tag_dim - 1
    parts = tag_words(name)
    word_h = _token_hashes(parts, "w")
    grams = [_word_grams(w, cfg.char_ngram_min, cfg.char_ngram_max) for w in parts]
    gram_h = np.concatenate(grams) if grams else np.zeros(0, dtype=np.uint64)
    groups = [
        _hashed_group(word_h, np.ones(len(parts)), mask, _SALTS["t:w"], cfg.tag_word_weight),
        _hashed_group(gram_h, np.ones(gram_h.shape[0]), mask, _SALTS["t:c"], cfg.tag_char_weight),
    ]
    if name:
        groups.append(_one_hot("t:id", "tag:" + name, mask, cfg.tag_id_weight))
    indices, values = _merge(groups)
    return TagFeatures(
        tag=name,
        indices=indices,
        values=values,
        word_hashes=np.unique(word_h),
        gram_hashes=np.unique(gram_h),
    )


class TagSet:
    """A fixed list of tags with their hashes flattened once, for fast match features."""

    def __init__(self, tags: Sequence[TagFeatures]) -> None:
        self.tags = list(tags)
        self._kinds = [
            self._flatten([t.word_hashes for t in self.tags]),
            self._flatten([t.gram_hashes for t in self.tags]),
        ]

    @staticmethod
    def _flatten(
        arrays: Sequence[HashArray],
    ) -> tuple[HashArray, IntArray, npt.NDArray[np.float64]]:
        sizes = np.fromiter((a.shape[0] for a in arrays), dtype=np.int64, count=len(arrays))
        flat = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.uint64)
        owner = np.repeat(np.arange(len(arrays), dtype=np.int64), sizes)
        inv_size = np.zeros(len(arrays), dtype=np.float64)
        inv_size[sizes > 0] = 1.0 / sizes[sizes > 0]
        return flat, owner, inv_size

    def match(self, content: ContentFeatures) -> npt.NDArray[np.float32]:
        """(len(tags), 2): fraction of each tag's words / char grams found in the content."""
        n = len(self.tags)
        out = np.zeros((n, N_MATCH_FEATURES), dtype=np.float32)
        for col, (flat, owner, inv_size), hashes in zip(
            range(N_MATCH_FEATURES),
            self._kinds,
            (content.word_hashes, content.gram_hashes),
            strict=True,
        ):
            if hashes.shape[0] == 0 or flat.shape[0] == 0:
                continue
            pos = np.minimum(np.searchsorted(hashes, flat), hashes.shape[0] - 1)
            hit = hashes[pos] == flat
            out[:, col] = np.bincount(owner[hit], minlength=n) * inv_size
        return out


def match_features(
    content: ContentFeatures, tags: Sequence[TagFeatures]
) -> npt.NDArray[np.float32]:
    """(len(tags), 2) matrix: fraction of each tag's words / char grams found in the content."""
    return TagSet(tags).match(content)
