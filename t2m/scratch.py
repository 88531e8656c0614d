"""Local scratch space: one marked directory per attempt, under the instance's own root.

Workers download inputs and write intermediate files for one attempt at one
stage of one job (or one upload).  Those directories live under a root that
belongs to this instance - ``SCRATCH_DIR``, else ``<T2M_VAR_DIR>/scratch`` -
never directly in the system's temp dir, where other programs (and other T2M
instances on the host) keep directories that may look alike.

Each attempt's directory carries a marker naming its owner: host, process id
and that process's start time (a pid alone is reused), the job and attempt,
and when it started.  Cleanup removes a directory only when it can prove the
directory is an attempt's and the attempt is over: the marker says finished,
or its process on this host is gone.  A directory without a readable marker
is not ours to judge, and an attempt whose process lives is never removed,
whatever age the caller asks for.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from t2m.ids import new_id
from t2m.settings import Settings

MARKER = ".t2m-attempt.json"
# A marker is a few hundred bytes; anything bigger is not one of ours.
_MARKER_MAX_BYTES = 4096
# Process start times are read from /proc with clock-tick precision.
_START_TIME_SLACK_S = 1.0


def scratch_root(settings: Settings) -> Path:
    """The directory this instance keeps its attempts' scratch space in."""
    return settings.scratch_dir or settings.var_dir / "scratch"


@dataclass(frozen=True)
class AttemptOwner:
    """Who made a scratch directory, as its marker file records it."""

    host: str
    pid: int
    pid_started: float  # the process's start time, epoch seconds
    stage: str
    job_id: str
    attempt: str
    started_at: float
    finished: bool = False

    @classmethod
    def current(cls, stage: str, job_id: str) -> AttemptOwner:
        return cls(
            host=socket.gethostname(),
            pid=os.getpid(),
            pid_started=psutil.Process().create_time(),
            stage=stage,
            job_id=job_id,
            attempt=new_id("att"),
            started_at=time.time(),
        )

    def is_live(self) -> bool:
        """Whether the attempt may still be using its directory."""
        if self.finished:
            return False
        if self.host != socket.gethostname():
            return True  # a process elsewhere cannot be checked from here
        try:
            started = psutil.Process(self.pid).create_time()
        except psutil.NoSuchProcess:
            return False
        except psutil.AccessDenied:
            return True
        # The same pid with another start time is a new process: the owner died.
        return abs(started - self.pid_started) <= _START_TIME_SLACK_S


def read_owner(directory: Path) -> AttemptOwner | None:
    """The owner named by a directory's marker; ``None`` when it has no valid one."""
    marker = directory / MARKER
    try:
        if marker.is_symlink() or marker.stat().st_size > _MARKER_MAX_BYTES:
            return None
        raw = json.loads(marker.read_text("utf-8"))
        return AttemptOwner(
            host=str(raw["host"]),
            pid=int(raw["pid"]),
            pid_started=float(raw["pid_started"]),
            stage=str(raw["stage"]),
            job_id=str(raw["job_id"]),
            attempt=str(raw["attempt"]),
            started_at=float(raw["started_at"]),
            finished=bool(raw.get("finished", False)),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_owner(directory: Path, owner: AttemptOwner) -> None:
    # Written whole then renamed: a reader never sees half a marker.
    partial = directory / (MARKER + ".partial")
    partial.write_text(json.dumps(asdict(owner)), "utf-8")
    partial.replace(directory / MARKER)


def _dir_prefix(stage: str, job_id: str) -> str:
    return f"{stage}-{job_id}-"


@contextlib.contextmanager
def attempt_dir(settings: Settings, stage: str, job_id: str) -> Iterator[Path]:
    """A fresh scratch directory for this attempt at ``stage`` of ``job_id``.

    Two attempts running at once (a message redelivered while a worker cut
    off from Redis still holds the first copy) never share a directory.
    What dead attempts at the same job and stage left behind goes first; this
    attempt's directory goes when it ends.
    """
    root = scratch_root(settings)
    root.mkdir(parents=True, exist_ok=True)
    reap_dead_attempts(root, prefix=_dir_prefix(stage, job_id))
    path = Path(tempfile.mkdtemp(prefix=_dir_prefix(stage, job_id), dir=root))
    owner = AttemptOwner.current(stage, job_id)
    _write_owner(path, owner)
    try:
        yield path
    finally:
        # Marked finished first: if the removal is cut short, cleanup may
        # finish it even while this process lives on.
        with contextlib.suppress(OSError):
            _write_owner(path, AttemptOwner(**{**asdict(owner), "finished": True}))
        shutil.rmtree(path, ignore_errors=True)


def reap_dead_attempts(
    root: Path, *, prefix: str = "", started_before: float | None = None
) -> list[Path]:
    """Remove the marked directories under ``root`` whose attempt is over.

    ``started_before`` (epoch seconds) keeps dead attempts that started later;
    it never makes a live attempt's directory removable.
    """
    removed: list[Path] = []
    try:
        entries = list(root.iterdir())
    except FileNotFoundError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix) or entry.is_symlink() or not entry.is_dir():
            continue
        owner = read_owner(entry)
        if owner is None or owner.is_live():
            continue  # not an attempt's, or one still at work
        if started_before is not None and owner.started_at >= started_before:
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed
