"""The registry-shipped sentence model, as the media worker uses it (real weights)."""

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")

from recommender.content import file_content_features
from recommender.embeddings import EMBEDDING_KEY, TextEmbedder, content_text


def test_similar_titles_are_closer_than_unrelated_ones_and_feed_the_features():
    embedder = TextEmbedder()
    vecs = embedder.embed(["Toy Story (1995)", "Toy Story 2 (1999)", "Schindler's List", ""])
    assert vecs.shape == (4, 384)
    assert np.linalg.norm(vecs[0]) == pytest.approx(1.0, abs=1e-4)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.2
    assert not vecs[3].any(), "no text, no embedding"
    row = {"title": "Toy Story (1995)", "metadata": {EMBEDDING_KEY: vecs[0].tolist()}}
    assert content_text(row) == "Toy Story (1995)"
    assert file_content_features(row).nnz > file_content_features({"title": "Toy Story (1995)"}).nnz
