"""Per-attempt scratch directories: under the instance's root, marked, only dead ones swept."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from t2m.ids import new_id
from t2m.scratch import MARKER, AttemptOwner, attempt_dir, read_owner, reap_dead_attempts
from t2m.settings import Settings


def _left_by(root: Path, name: str, owner: AttemptOwner) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / MARKER).write_text(json.dumps(dataclasses.asdict(owner)))
    (path / "card_0000.png").write_bytes(b"x")
    return path


def test_attempts_live_under_the_instance_root_with_a_marker(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "var")
    job_id = new_id("job")
    with (
        attempt_dir(settings, "render", job_id) as first,
        attempt_dir(settings, "render", job_id) as second,
    ):
        assert first != second
        assert first.parent == second.parent == tmp_path / "var" / "scratch"
        owner = read_owner(first)
        assert owner is not None and owner.pid == os.getpid() and owner.job_id == job_id
        assert owner.is_live()
    assert not first.exists() and not second.exists()

    elsewhere = Settings(var_dir=tmp_path / "var", scratch_dir=tmp_path / "scratch")
    with attempt_dir(elsewhere, "media", "file_1") as work:
        assert work.parent == tmp_path / "scratch"


def test_only_marked_directories_of_dead_attempts_are_removed(tmp_path: Path) -> None:
    root = tmp_path / "scratch"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    me = AttemptOwner.current("render", new_id("job"))
    dead = _left_by(root, "render-a", dataclasses.replace(me, pid=gone.pid))
    # Our pid, but another process's start time: the pid was reused, the owner died.
    reused = _left_by(root, "render-b", dataclasses.replace(me, pid_started=me.pid_started - 60))
    finished = _left_by(root, "render-c", dataclasses.replace(me, finished=True))
    live = _left_by(root, "render-d", me)
    other_host = _left_by(root, "render-e", dataclasses.replace(me, host="another-host", pid=1))
    unmarked = root / "render-f"
    unmarked.mkdir()
    garbled = root / "render-g"
    garbled.mkdir()
    (garbled / MARKER).write_text("{not json")

    removed = reap_dead_attempts(root, started_before=time.time() + 1)
    assert sorted(removed) == [dead, reused, finished]
    for kept in (live, other_host, unmarked, garbled):
        assert kept.is_dir()


def test_an_age_never_makes_a_live_attempt_removable(tmp_path: Path) -> None:
    root = tmp_path / "scratch"
    me = AttemptOwner.current("render", new_id("job"))
    old_live = _left_by(root, "render-old", dataclasses.replace(me, started_at=0.0))
    recent_dead = _left_by(root, "render-new", dataclasses.replace(me, finished=True))
    assert reap_dead_attempts(root, started_before=me.started_at - 1) == []
    assert old_live.is_dir() and recent_dead.is_dir()
