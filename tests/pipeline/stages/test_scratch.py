"""Per-attempt scratch directories: concurrent attempts apart, dead ones swept."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from pipeline.stages.scratch import attempt_dir
from t2m.ids import new_id


def test_attempts_get_their_own_directory_and_dead_ones_are_removed() -> None:
    job_id = new_id("job")
    dead_pid = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_pid.wait()
    root = Path(tempfile.gettempdir())
    left_by_dead = root / f"t2m-render-{job_id}-{dead_pid.pid}-0000"
    left_by_dead.mkdir()
    (left_by_dead / "card_0000.png").write_bytes(b"x")
    running_elsewhere = root / f"t2m-render-{job_id}-{os.getppid()}-ffff"  # a live process
    running_elsewhere.mkdir()
    try:
        first = attempt_dir("render", job_id)
        second = attempt_dir("render", job_id)
        assert first != second and first.is_dir() and second.is_dir()
        assert not left_by_dead.exists()
        assert running_elsewhere.is_dir()  # another attempt still at work: untouched
    finally:
        for path in root.glob(f"t2m-render-{job_id}-*"):
            for child in path.iterdir():
                child.unlink()
            path.rmdir()
