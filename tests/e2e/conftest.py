"""End-to-end fixtures: real worker processes (shared with tests/pipeline/workers)."""

from __future__ import annotations

from tests.pipeline.workers.conftest import start_worker

__all__ = ["start_worker"]
