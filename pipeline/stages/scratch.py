"""Scratch directories for one attempt at a job's stage."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path


def attempt_dir(stage: str, job_id: str) -> Path:
    """A scratch directory for this attempt at a job's stage.

    Named after the process and attempt (``t2m-render-<job>-<pid>-<hex>``), so
    two attempts running at once - a message redelivered while a worker cut
    off from Redis still holds the first copy - never share files.  What a
    dead attempt on this host left behind (its process is gone) is removed
    first; a live attempt removes its own when it ends.
    """
    root = Path(tempfile.gettempdir())
    for stale in root.glob(f"t2m-{stage}-{job_id}-*"):
        if not _process_alive(stale.name.removeprefix(f"t2m-{stage}-{job_id}-").split("-")[0]):
            shutil.rmtree(stale, ignore_errors=True)
    path = root / f"t2m-{stage}-{job_id}-{os.getpid()}-{secrets.token_hex(4)}"
    path.mkdir(parents=True)
    return path


def _process_alive(pid_text: str) -> bool:
    if not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True
