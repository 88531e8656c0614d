"""Fixtures of the stage tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipeline.stages.narrate.engines import stop_all


@pytest.fixture(scope="session", autouse=True)
def _speech_engines_stopped() -> Iterator[None]:
    """The narration tests start long-lived engine children in this process
    (as a narrate worker does); they are stopped, pipes closed, when the
    session ends rather than left to the interpreter's exit."""
    yield
    stop_all()
