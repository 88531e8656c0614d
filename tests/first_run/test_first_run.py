"""A fresh clone's first run: ``t2m dev`` serves exactly what it prints, a
second one says clearly that the port is taken, and the README's walk through
the API works as written against it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import av
import pytest
from PIL import Image

from tests.first_run.conftest import DEFAULT_BASE, DevRun, t2m_command, user_env
from tests.first_run.readme_walk import (
    Step,
    curl_wrapper,
    script_of,
    shell_commands,
    split_output,
    walk_section,
)
from tests.processes import REPO

pytestmark = pytest.mark.bare_machine


def test_dev_prints_the_urls_it_serves(dev_run: DevRun) -> None:
    import urllib.request

    urls = dev_run.printed_urls()
    assert urls == {
        "API": f"{DEFAULT_BASE}/api/v1",
        "Swagger UI": f"{DEFAULT_BASE}/docs",
        "Health": f"{DEFAULT_BASE}/health",
    }
    assert dev_run.password()
    for url in (urls["Health"], urls["Swagger UI"], urls["API"] + "/openapi.json", DEFAULT_BASE):
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback)
            assert response.status == 200, url


def test_a_second_dev_says_the_port_is_taken(dev_run: DevRun, tmp_path: Path) -> None:
    shutil.copy(REPO / "Procfile", tmp_path / "Procfile")
    second = subprocess.run(
        [t2m_command(), "dev"],
        cwd=tmp_path,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1
    assert "port 8000 on 127.0.0.1 is already in use" in second.stderr
    assert "PORT=8001 make dev" in second.stderr
    assert "Traceback" not in second.stderr + second.stdout
    # It stopped before starting servers of its own.
    assert not (tmp_path / "var" / "pg").exists()


def _json(text: str) -> dict[str, object]:
    value = json.loads(text)
    assert isinstance(value, dict)
    return value


def _uploaded(steps: list[Step]) -> dict[str, object]:
    upload = next(s for s in steps if re.search(r"POST \S+/upload ", s.command))
    return _json(upload.stderr)


def _check_health(step: Step, workdir: Path, steps: list[Step]) -> None:
    assert _json(step.stdout)["status"] == "healthy"


def _check_me(step: Step, workdir: Path, steps: list[Step]) -> None:
    assert '"username": "admin"' in step.stdout


def _check_upload(step: Step, workdir: Path, steps: list[Step]) -> None:
    assert _uploaded(steps)["title"] == "Sample Image"


def _check_list(step: Step, workdir: Path, steps: list[Step]) -> None:
    content_id = _uploaded(steps)["content_id"]
    assert isinstance(content_id, str) and content_id in step.stdout


def _check_details(step: Step, workdir: Path, steps: list[Step]) -> None:
    assert _json(step.stdout)["content_id"] == _uploaded(steps)["content_id"]


def _check_download(step: Step, workdir: Path, steps: list[Step]) -> None:
    assert (workdir / "out.jpg").read_bytes() == (workdir / "example.jpg").read_bytes()


def _check_range(step: Step, workdir: Path, steps: list[Step]) -> None:
    assert step.stdout.startswith("HTTP/1.1 206")
    assert "Content-Range: bytes 0-1023/" in step.stdout
    assert (workdir / "first-kib.jpg").read_bytes() == (workdir / "example.jpg").read_bytes()[:1024]


def _check_generate(step: Step, workdir: Path, steps: list[Step]) -> None:
    assert re.search(r'"job_id": "job_\w+"', step.stdout + step.stderr)


def _check_follow(step: Step, workdir: Path, steps: list[Step]) -> None:
    assert "event: end" in step.stdout
    end = step.stdout.split("event: end\ndata: ", 1)[1].splitlines()[0]
    assert _json(end)["status"] == "completed"


def _check_job(step: Step, workdir: Path, steps: list[Step]) -> None:
    assert _json(step.stdout)["data"]["status"] == "completed"  # type: ignore[index]


def _check_fetch(step: Step, workdir: Path, steps: list[Step]) -> None:
    with av.open(str(workdir / "video.mp4")) as container:
        video = container.streams.video[0]
        assert video.height == 720
        assert container.duration and container.duration > 0


def _check_recommend(step: Step, workdir: Path, steps: list[Step]) -> None:
    assert re.search(r'"recommendation_id": "rec_\w+"', step.stderr)


def _check_feedback(step: Step, workdir: Path, steps: list[Step]) -> None:
    assert step.statuses and all(200 <= status < 300 for status in step.statuses)


def _check_metrics(step: Step, workdir: Path, steps: list[Step]) -> None:
    assert step.stdout.strip().startswith("{")


def _check_ok(step: Step, workdir: Path, steps: list[Step]) -> None:
    assert step.statuses == [200]


# Each part of the journey the README must walk through, found by its command.
Check = Callable[[Step, Path, list[Step]], None]
JOURNEY: dict[str, tuple[str, Check]] = {
    "health": (r"^curl \S+/health$", _check_health),
    "who am I": (r"/api/v1/auth/me$", _check_me),
    "upload": (r"POST \S+/upload ", _check_upload),
    "list": (r"/contents$", _check_list),
    "details": (r"/content/\$CONTENT_ID$", _check_details),
    "download": (r"-o out\.jpg \S+/download/", _check_download),
    "range": (r"Range: bytes=0-1023", _check_range),
    "generate from a file": (r"POST \S+/generate-video ", _check_generate),
    "generate from JSON": (r"POST \S+/api/v1/videos/generate ", _check_generate),
    "follow": (r"-N .*/api/v1/jobs/\$JOB_ID/events$", _check_follow),
    "job": (r"/api/v1/jobs/\$JOB_ID$", _check_job),
    "logs": (r"/api/v1/jobs/\$JOB_ID/logs$", _check_ok),
    "fetch": (r"-o video\.mp4 ", _check_fetch),
    "recommend tags": (r"/recommend-tags/", _check_recommend),
    "feedback": (r"POST \S+/(api/v1/)?feedback ", _check_feedback),
    "metrics": (r"^curl \S+/metrics$", _check_metrics),
    "bucket stats": (r"/bucket/stats$", _check_ok),
    "bucket list": (r"/bucket/list/uploads$", _check_ok),
    "bucket cleanup": (r"/bucket/cleanup\?", _check_ok),
    "log rotation": (r"/bucket/rotate-logs\?", _check_ok),
    "failed operations": (r"/maintenance/failed-operations$", _check_ok),
}


def test_the_readme_walk_through_works_as_written(dev_run: DevRun, tmp_path: Path) -> None:
    commands = shell_commands(walk_section((REPO / "README.md").read_text()))
    workdir = tmp_path / "walk"
    workdir.mkdir()
    # What the walk expects the user to have at hand: an image of theirs.
    Image.new("RGB", (640, 360), (40, 120, 200)).save(workdir / "example.jpg", quality=90)
    real_curl = shutil.which("curl")
    assert real_curl, "the walk-through needs curl"
    env = user_env()
    curl_log = tmp_path / "curl.log"
    env["PATH"] = f"{curl_wrapper(real_curl, tmp_path / 'bin', curl_log)}:{env['PATH']}"
    result = subprocess.run(
        ["bash", "-c", script_of(commands, dev_run.password(), curl_log)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    steps = split_output(commands, result.stdout, result.stderr, curl_log.read_text())
    ran = [s for s in steps if s.stdout or s.stderr]
    assert result.returncode == 0, (
        f"README command failed: {ran[-1].command if ran else '?'}\n"
        f"{ran[-1].curl_log if ran else ''}\n{result.stderr[-3000:]}"
    )
    for step in steps:
        assert all(status < 400 for status in step.statuses), (step.command, step.curl_log)
    for part, (pattern, check) in JOURNEY.items():
        matching = [s for s in steps if re.search(pattern, s.command, re.M)]
        assert matching, f"the README's walk-through no longer covers: {part}"
        for step in matching:
            check(step, workdir, steps)
