"""Content features of a stored file row (used by the API and the updater alike)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from recommender.features import (
    ContentFeatures,
    FeatureConfig,
    build_content_features,
    content_key,
)

#: Where the media worker stores a file's sentence embedding (``recommender.embeddings``).
TEXT_EMBEDDING_KEY = "text_embedding"


def file_content_features(
    row: Mapping[str, Any], config: FeatureConfig | None = None
) -> ContentFeatures:
    """Features from a file's title, description, (generated videos) script,
    media type, duration and the text embedding the media worker stored
    (``metadata.text_embedding``) — the same inputs wherever the file is scored.

    The features carry the file's ``content_key``: ``content_id`` when the row has
    one (feedback and decision rows, whose ``id`` is their own), else ``id`` (a file
    row)."""
    metadata = row.get("metadata") or {}
    embedding = metadata.get(TEXT_EMBEDDING_KEY)
    file_id = row.get("content_id") or row.get("id")
    feats = build_content_features(
        title=row.get("title"),
        description=row.get("description"),
        script=metadata.get("script"),
        media_type=row.get("file_type"),
        duration_s=metadata.get("duration"),
        config=config,
        embedding=embedding if isinstance(embedding, list) and embedding else None,
    )
    return dataclasses.replace(feats, key=content_key(file_id)) if file_id else feats
