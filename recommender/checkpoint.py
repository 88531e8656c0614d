"""Agent checkpoints as bytes (the caller stores them under ``models/`` plus a DB row).

Two artefacts per model version:

* ``save(agent)`` -> training checkpoint: ``MAGIC`` + 2-byte big-endian format
  number + a ``torch.save`` payload of tensors and JSON strings only, so it loads
  with ``torch.load(weights_only=True)`` (no pickled code). ``load`` resumes
  training from it (optimizer state, posterior statistics, vocabulary, counters
  and RNG included; the replay buffer is not).
* ``export_scorer(agent)`` -> npz bytes for the API's numpy-only
  ``recommender.inference.TagScorer.from_bytes`` (its own format number,
  ``inference.SCORER_FORMAT``).
"""

from __future__ import annotations

import io
import struct

import torch

from recommender.agent import Agent
from recommender.inference import SCORER_FORMAT

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "SCORER_FORMAT",
    "CheckpointError",
    "export_scorer",
    "load",
    "read_format",
    "save",
]

MAGIC = b"T2MREC"
FORMAT_VERSION = 1
_HEADER = struct.Struct(">H")


class CheckpointError(ValueError):
    """Not a recommender checkpoint, or a format this code cannot read."""


def save(agent: Agent) -> bytes:
    buf = io.BytesIO()
    buf.write(MAGIC)
    buf.write(_HEADER.pack(FORMAT_VERSION))
    torch.save({"format": FORMAT_VERSION, "agent": agent.state()}, buf)
    return buf.getvalue()


def read_format(blob: bytes) -> int:
    """Format number of a checkpoint (raises CheckpointError if it is not one)."""
    if len(blob) < len(MAGIC) + _HEADER.size or not blob.startswith(MAGIC):
        raise CheckpointError("not a T2M recommender checkpoint")
    (version,) = _HEADER.unpack_from(blob, len(MAGIC))
    return int(version)


def load(blob: bytes) -> Agent:
    version = read_format(blob)
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"unsupported checkpoint format {version} (expected {FORMAT_VERSION})"
        )
    payload = torch.load(
        io.BytesIO(blob[len(MAGIC) + _HEADER.size :]), map_location="cpu", weights_only=True
    )
    return Agent.from_state(payload["agent"])


def export_scorer(agent: Agent) -> bytes:
    """npz bytes for ``TagScorer.from_bytes`` (numpy only on the reading side)."""
    return agent.export_scorer()
