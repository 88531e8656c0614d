"""Content and tag features for the tag recommender (numpy only).

Everything here is imported by the API process, so it must never import torch.

Content features
    Signed feature hashing ("hashing trick") of

    * word unigrams and bigrams of the title, description and script text,
    * character 3-5-grams of every word (fastText style, with ``<`` ``>`` word
      boundary markers, so "cooking" and "cook" share grams),
    * a media-type one-hot and a log-scale duration bucket,
    * a constant bias feature (lets the model learn a per-tag prior),
    * optional ("tuned" feature set): term frequency ``1 + log(tf)`` instead of
      ``sqrt(tf)`` (``sublinear_tf``), word weights multiplied by an idf table
      computed over the catalogue (``IdfTable``, exported with the model), and a
      decade token for a year written in the title ("Heat (1995)" -> 1990s);
    * optional: a dense sentence embedding of the text (``embedding``, computed
      by a worker, never here), its 384 components as signed hashed features
      scaled by ``embedding_weight`` — a learned linear projection of the
      embedding, through the same sparse tables.

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

Tokens are hashed once with keyed BLAKE2b (stable across processes, machines and
Python versions, unlike the salted built-in ``hash``; cached per token/word),
then each feature group salts and re-mixes the 64-bit value (splitmix64) to get
its bucket and sign, vectorised in numpy. ``FeatureConfig.hash_version`` names
the scheme: changing it invalidates every trained model.

Cost per content: ``bench/bench_recommender_core.py`` (figures in the README).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "DURATION_BUCKETS_S",
    "MEDIA_TYPES",
    "ContentFeatures",
    "FeatureCache",
    "FeatureConfig",
    "IdfTable",
    "TagFeatures",
    "TagSet",
    "build_content_features",
    "build_tag_features",
    "content_key",
    "duration_bucket",
    "match_features",
    "normalize_media_type",
    "normalize_tag",
    "stable_hash",
    "tag_words",
    "title_decade",
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


@lru_cache(maxsize=1 << 16)
def stable_hash(token: str) -> int:
    """Unsigned 64-bit keyed BLAKE2b hash of ``token`` (same value in every process)."""
    digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8, key=_HASH_KEY).digest()
    return int.from_bytes(digest, "little")


def content_key(content_id: str | int) -> int:
    """The 64-bit key of a content id (never 0, which means "unknown")."""
    # not through ``stable_hash``'s cache, which is for the vocabulary of tokens
    token = f"content:{content_id}".encode()
    digest = hashlib.blake2b(token, digest_size=8, key=_HASH_KEY).digest()
    return int.from_bytes(digest, "little") or 1


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
    sublinear_tf: bool = False
    year_weight: float = 0.0
    embedding_weight: float = 1.0
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
    ``key``: which content this is (``content_key`` of its id; 0 when unknown). It is
    no model input: it only looks up how much feedback the content has had, which
    decides between the cold-content and the bandit score (``inference``).
    """

    indices: IntArray
    values: FloatArray
    word_hashes: HashArray
    gram_hashes: HashArray
    config: FeatureConfig = field(default_factory=FeatureConfig)
    key: int = 0

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


@lru_cache(maxsize=1 << 15)
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


_SALTS = {
    ns: _salt(ns) for ns in ("w", "b", "c", "media", "dur", "bias", "year", "t:id", "t:w", "t:c")
}


@lru_cache(maxsize=256)
def _one_hot(
    namespace: str, token: str, mask: int, weight: float
) -> tuple[IntArray, npt.NDArray[np.float64]]:
    h = np.array([stable_hash("x\x1f" + token)], dtype=np.uint64)
    return _hashed_group(h, np.ones(1), mask, _SALTS[namespace], weight)


_YEAR_RE = re.compile(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)")


def title_decade(title: str | None) -> str | None:
    """The decade of the last plausible year written in a title ("Heat (1995)" -> "1990")."""
    if not title:
        return None
    years = _YEAR_RE.findall(title)
    return f"{int(years[-1]) // 10 * 10}" if years else None


class IdfTable:
    """Inverse document frequencies of words over a catalogue (exported with a model).

    ``idf(w) = log((1 + n) / (1 + df(w))) + 1`` (smoothed, as scikit-learn's); a word
    the catalogue never had gets the largest value (it is at least as rare).
    """

    def __init__(self, keys: HashArray, values: npt.NDArray[np.float64]) -> None:
        order = np.argsort(keys)
        self.keys = keys[order]
        self.values = values[order].astype(np.float64)
        self.unseen = float(self.values.max()) if self.values.shape[0] else 1.0

    @classmethod
    def fit(cls, texts: Iterable[str]) -> IdfTable:
        df: dict[str, int] = {}
        n = 0
        for text in texts:
            n += 1
            for w in set(words(text)):
                df[w] = df.get(w, 0) + 1
        keys = _token_hashes(list(df), "w")
        counts = np.fromiter(df.values(), dtype=np.float64, count=len(df))
        return cls(keys, np.log((1.0 + n) / (1.0 + counts)) + 1.0)

    def lookup(self, word_hashes: HashArray) -> npt.NDArray[np.float64]:
        if self.keys.shape[0] == 0 or word_hashes.shape[0] == 0:
            return np.full(word_hashes.shape[0], self.unseen)
        pos = np.minimum(np.searchsorted(self.keys, word_hashes), self.keys.shape[0] - 1)
        return np.where(self.keys[pos] == word_hashes, self.values[pos], self.unseen)


@lru_cache(maxsize=8)
def _embedding_slots(dim: int, mask: int) -> tuple[IntArray, npt.NDArray[np.float64]]:
    """Hashed index and sign of each embedding component (fixed per dimension)."""
    mixed = _mix64(_token_hashes([f"emb:{i}" for i in range(dim)], "emb") ^ np.uint64(_salt("e")))
    idx = (mixed & np.uint64(mask)).astype(np.int64)
    sign = np.where((mixed >> _SIGN_SHIFT) == 1, -1.0, 1.0)
    return idx, sign


def build_content_features(
    title: str | None = None,
    description: str | None = None,
    script: str | None = None,
    media_type: str | None = None,
    duration_s: float | None = None,
    config: FeatureConfig | None = None,
    *,
    idf: IdfTable | None = None,
    embedding: Sequence[float] | npt.NDArray[np.floating[Any]] | None = None,
) -> ContentFeatures:
    """Hashed features of a piece of content. Deterministic for equal inputs and config.

    ``idf`` and ``embedding`` are used only when the config asks for them
    (``IdfTable`` given; ``embedding_weight > 0``).
    """
    cfg = config or FeatureConfig()
    mask = cfg.content_dim - 1
    word_tf: dict[str, float] = {}
    bigram_tf: dict[str, float] = {}
    for text, weight in (
        (title, cfg.title_weight),
        (description, cfg.description_weight),
        (script, cfg.script_weight),
    ):
        if not text or weight <= 0.0:
            continue
        tokens = words(text[: cfg.max_field_chars])
        for w in tokens:
            word_tf[w] = word_tf.get(w, 0.0) + weight
        for a, b in itertools.pairwise(tokens):
            key = f"{a} {b}"
            bigram_tf[key] = bigram_tf.get(key, 0.0) + weight
    unique_words = list(word_tf)
    word_h = _token_hashes(unique_words, "w")
    word_w = np.fromiter(word_tf.values(), dtype=np.float64, count=len(word_tf))
    if cfg.sublinear_tf and word_w.shape[0]:
        # values are sqrt(tf) downstream: square what should come out
        word_w = (1.0 + np.log(np.maximum(word_w, 1.0))) ** 2
    if idf is not None and word_w.shape[0]:
        word_w = word_w * idf.lookup(word_h) ** 2
    gram_h = np.zeros(0, dtype=np.uint64)
    gram_w = np.zeros(0, dtype=np.float64)
    if unique_words:
        # char grams come from a per-word cache and carry their word's tf
        lo, hi = cfg.char_ngram_min, cfg.char_ngram_max
        grams = [_word_grams(w, lo, hi) for w in unique_words]
        gram_h = np.concatenate(grams)
        gram_w = np.repeat(word_w, [g.shape[0] for g in grams])
    text_idx, text_val, group_keys = _text_groups(
        (
            (word_h, word_w, _SALTS["w"], cfg.word_weight),
            (
                _token_hashes(list(bigram_tf), "b"),
                np.fromiter(bigram_tf.values(), dtype=np.float64, count=len(bigram_tf)),
                _SALTS["b"],
                cfg.bigram_weight,
            ),
            (gram_h, gram_w, _SALTS["c"], cfg.char_weight),
        ),
        mask,
    )
    parts = [
        (text_idx, text_val),
        _one_hot("media", "media:" + normalize_media_type(media_type), mask, cfg.media_weight),
        _one_hot("dur", "dur:" + duration_bucket(duration_s), mask, cfg.duration_weight),
        _one_hot("bias", "bias", mask, cfg.bias_weight),
    ]
    decade = title_decade(title) if cfg.year_weight > 0 else None
    if decade is not None:
        parts.append(_one_hot("year", "decade:" + decade, mask, cfg.year_weight))
    if embedding is not None and cfg.embedding_weight > 0:
        vec = np.asarray(embedding, dtype=np.float64)
        norm = float(np.linalg.norm(vec))
        if vec.ndim == 1 and vec.shape[0] and norm > 0 and math.isfinite(norm):
            idx, sign = _embedding_slots(int(vec.shape[0]), mask)
            parts.append((idx, sign * vec * (cfg.embedding_weight / norm)))
    indices, values = _merge(parts)
    gram_keys = group_keys[2] if cfg.char_weight != 0.0 else _gram_keys(gram_h)
    return ContentFeatures(
        indices=indices,
        values=values,
        word_hashes=np.sort(word_h),
        gram_hashes=gram_keys,
        config=cfg,
    )


def _gram_keys(gram_h: HashArray) -> HashArray:
    """Sorted unique match keys of character grams (the content's char-group keys)."""
    return np.unique(_mix64(gram_h ^ np.uint64(_SALTS["c"])))


class FeatureCache:
    """LRU cache of content features for the training worker.

    Feedback concentrates on popular content, and featurising is not free, so the
    worker should featurise each content once per version: key by something like
    ``(content_id, updated_at)`` so an edited title yields new features.
    """

    def __init__(self, maxsize: int = 20_000, config: FeatureConfig | None = None) -> None:
        self.maxsize = maxsize
        self.config = config or FeatureConfig()
        self._items: OrderedDict[Hashable, ContentFeatures] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(
        self,
        key: Hashable,
        title: str | None = None,
        description: str | None = None,
        script: str | None = None,
        media_type: str | None = None,
        duration_s: float | None = None,
    ) -> ContentFeatures:
        feats = self._items.get(key)
        if feats is not None:
            self._items.move_to_end(key)
            self.hits += 1
            return feats
        self.misses += 1
        feats = build_content_features(
            title, description, script, media_type, duration_s, self.config
        )
        self._items[key] = feats
        if len(self._items) > self.maxsize:
            self._items.popitem(last=False)
        return feats

    def __len__(self) -> int:
        return len(self._items)


def _text_groups(
    groups: Sequence[tuple[HashArray, npt.NDArray[np.float64], int, float]], mask: int
) -> tuple[IntArray, npt.NDArray[np.float64], list[HashArray]]:
    """Several ``_hashed_group``s in one vectorised pass (one sort instead of three).

    Salting before the unique keeps equal tokens of different groups apart; each
    group is then L2-normalised to its weight as in ``_hashed_group``. Also returns
    each group's sorted unique salted keys (empty for a group of weight 0).
    """
    empty = np.zeros(0, dtype=np.uint64)
    live = [i for i, g in enumerate(groups) if g[0].shape[0] and g[3] != 0.0]
    if not live:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64), [empty] * len(groups)
    sizes = [groups[i][0].shape[0] for i in live]
    group = np.repeat(np.arange(len(live)), sizes)
    salts = np.array([groups[i][2] for i in live], dtype=np.uint64)[group]
    keys = _mix64(np.concatenate([groups[i][0] for i in live]) ^ salts)
    uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    counts = np.bincount(inverse, weights=np.concatenate([groups[i][1] for i in live]))
    owner = group[first]
    scale = np.array([groups[i][3] for i in live]) / np.sqrt(
        np.bincount(owner, weights=counts, minlength=len(live))
    )
    sign = np.where((uniq >> _SIGN_SHIFT) == 1, -1.0, 1.0)
    values = sign * np.sqrt(counts) * scale[owner]
    per_group = [empty] * len(groups)
    for j, i in enumerate(live):
        per_group[i] = uniq[owner == j]
    return (uniq & np.uint64(mask)).astype(np.int64), values, per_group


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
        gram_hashes=_gram_keys(gram_h),
    )


class TagSet:
    """A fixed list of tags with their hashes indexed once, for fast match features.

    Per kind (words, grams) the (hash, tag) pairs of all tags are sorted by hash, so
    a content's few hundred hashes are looked up in it (``O(content log tags)``),
    instead of every tag's hashes being looked up in the content.
    """

    def __init__(self, tags: Sequence[TagFeatures]) -> None:
        self.tags = list(tags)
        self._kinds = [
            self._index([t.word_hashes for t in self.tags]),
            self._index([t.gram_hashes for t in self.tags]),
        ]

    @staticmethod
    def _index(
        arrays: Sequence[HashArray],
    ) -> tuple[HashArray, IntArray, IntArray, IntArray, npt.NDArray[np.float64]]:
        sizes = np.fromiter((a.shape[0] for a in arrays), dtype=np.int64, count=len(arrays))
        flat = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.uint64)
        owner = np.repeat(np.arange(len(arrays), dtype=np.int64), sizes)
        order = np.argsort(flat, kind="stable")
        keys, starts, counts = np.unique(flat[order], return_index=True, return_counts=True)
        inv_size = np.zeros(len(arrays), dtype=np.float64)
        inv_size[sizes > 0] = 1.0 / sizes[sizes > 0]
        return keys, starts.astype(np.int64), counts.astype(np.int64), owner[order], inv_size

    def match(self, content: ContentFeatures) -> npt.NDArray[np.float32]:
        """(len(tags), 2): fraction of each tag's words / char grams found in the content."""
        n = len(self.tags)
        out = np.zeros((n, N_MATCH_FEATURES), dtype=np.float32)
        for col, (keys, starts, counts, owners, inv_size), hashes in zip(
            range(N_MATCH_FEATURES),
            self._kinds,
            (content.word_hashes, content.gram_hashes),
            strict=True,
        ):
            if hashes.shape[0] == 0 or keys.shape[0] == 0:
                continue
            pos = np.minimum(np.searchsorted(keys, hashes), keys.shape[0] - 1)
            pos = pos[keys[pos] == hashes]
            if pos.shape[0] == 0:
                continue
            # gather the owners of every matched key (ragged ranges starts[p]:starts[p]+counts[p])
            cnt = counts[pos]
            shift = np.repeat(starts[pos] - (np.cumsum(cnt) - cnt), cnt)
            hit_owners = owners[shift + np.arange(int(cnt.sum()))]
            out[:, col] = np.bincount(hit_owners, minlength=n) * inv_size
        return out


def match_features(
    content: ContentFeatures, tags: Sequence[TagFeatures]
) -> npt.NDArray[np.float32]:
    """(len(tags), 2) matrix: fraction of each tag's words / char grams found in the content."""
    return TagSet(tags).match(content)
