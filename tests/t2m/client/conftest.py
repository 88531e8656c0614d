"""The CLI tests run real worker processes too."""

from tests.pipeline.workers.conftest import start_worker  # noqa: F401 (a fixture)
