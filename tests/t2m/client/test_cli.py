"""The real ``t2m`` client commands, as subprocesses, against a live server and workers."""

from __future__ import annotations

import asyncio
import io
import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from tests.pipeline.workers.conftest import REPO
from tests.pipeline.workers.test_video_pipeline import VIDEO_QUEUES
from tests.samples import SCRIPTS


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(client, tmp_path):
    """Runs ``t2m`` with its own home and config directory, pointed at the test server."""
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "T2M_SERVER": str(client.make_url("")).rstrip("/"),
    }

    async def run(*args: str, stdin: str = "", cwd: Path | None = None) -> Run:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "t2m.cli",
            *args,
            env=env,
            cwd=cwd or tmp_path,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate(stdin.encode())
        assert process.returncode is not None
        return Run(process.returncode, out.decode(), err.decode())

    run.env = env  # type: ignore[attr-defined]
    run.credentials = home / "config" / "t2m" / "credentials.json"  # type: ignore[attr-defined]
    return run


def one_line_failure(result: Run) -> str:
    assert result.code != 0, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


async def sign_in(cli, user) -> None:
    result = await cli(
        "login", "--username", user.username, "--password-stdin", stdin=user.password
    )
    assert result.code == 0, result.stderr


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((200, 120), 60).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


async def test_login_upload_files_download_and_failures(cli, client, make_user, tmp_path):
    user = await make_user(login=False)
    assert "not signed in" in one_line_failure(await cli("files"))

    wrong = await cli("login", "-u", user.username, "--password-stdin", stdin="nope")
    assert "Invalid username or password" in one_line_failure(wrong)

    result = await cli("login", "-u", user.username, "--password-stdin", stdin=user.password)
    assert result.code == 0, result.stderr
    assert user.username in result.stdout
    credentials = cli.credentials
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    saved = json.loads(credentials.read_text())
    server = cli.env["T2M_SERVER"]
    assert saved["default_server"] == server
    assert saved["servers"][server]["username"] == user.username

    image = tmp_path / "noise.png"
    image.write_bytes(png_bytes())
    notes = tmp_path / "notes.txt"
    notes.write_text("Some notes to keep.\n" * 2000)
    result = await cli("upload", str(image), str(tmp_path / "missing.jpg"), str(notes))
    # One file failed: reported on its own line, the others uploaded, exit non-zero.
    assert result.code == 1
    assert "missing.jpg: no such file" in result.stderr
    assert "noise.png: 100%" in result.stderr  # progress, as plain lines off a terminal
    assert "notes.txt: 100%" in result.stderr
    table = result.stdout.splitlines()
    assert table[0].split() == ["FILE", "ID", "TYPE", "SIZE", "RESULT"]
    assert "uploaded" in table[1] and "failed" in table[2] and "uploaded" in table[3]

    result = await cli("files", "--json")
    assert result.code == 0, result.stderr
    listing = json.loads(result.stdout)
    by_name = {f["filename"]: f for f in listing["items"]}
    assert set(by_name) == {"noise.png", "notes.txt"}
    assert by_name["noise.png"]["file_type"] == "image"
    table = (await cli("files")).stdout
    assert "noise.png" in table and "notes.txt" in table

    # A download into the default name, then one resumed from a partial .part.
    file_id = by_name["notes.txt"]["id"]
    result = await cli("download", file_id, cwd=tmp_path)
    assert result.code == 0, result.stderr
    original = notes.read_bytes()
    downloads = tmp_path / "dl"
    downloads.mkdir()
    target = downloads / "copy.txt"
    (downloads / "copy.txt.part").write_bytes(original[:30_000])
    result = await cli("download", file_id, "-o", str(target), "--json")
    assert result.code == 0, result.stderr
    assert target.read_bytes() == original
    assert not (downloads / "copy.txt.part").exists()
    first_progress = result.stderr.splitlines()[0]
    assert first_progress.startswith("copy.txt: 75%"), result.stderr  # began at byte 30000
    assert json.loads(result.stdout)["size"] == len(original)

    # The saved access token expired: the refresh token gets a new pair.
    saved = json.loads(credentials.read_text())
    saved["servers"][server]["expires_at"] = 0
    credentials.write_text(json.dumps(saved))
    result = await cli("jobs", "--json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["items"] == []
    renewed = json.loads(credentials.read_text())["servers"][server]
    assert renewed["refresh_token"] != saved["servers"][server]["refresh_token"]
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600

    # Failures: one line with the reason, non-zero.
    assert "RESOURCE_NOT_FOUND" in one_line_failure(await cli("jobs", "show", "job_nope"))
    assert "needs a job id" in one_line_failure(await cli("jobs", "logs"))
    assert "cannot read" in one_line_failure(await cli("generate", str(tmp_path / "none.txt")))
    failure = one_line_failure(await cli("generate", str(notes), "--asset", "file_missing"))
    assert "VALIDATION_ERROR" in failure
    unreachable = await cli(
        "login", "--server", "http://127.0.0.1:9", "-u", "x", "--password-stdin", stdin="y"
    )
    assert "cannot reach http://127.0.0.1:9" in one_line_failure(unreachable)


async def test_generate_wait_then_download_the_video(
    cli, client, make_user, start_worker, tmp_path
):
    user = await make_user()
    start_worker(VIDEO_QUEUES)
    await sign_in(cli, user)
    script = tmp_path / "script.txt"
    script.write_text((SCRIPTS / "sample_video_script.txt").read_text())

    voices = await cli("voices")
    assert voices.code == 0 and "en-us-joe" in voices.stdout and "espeak-ng" in voices.stdout

    # A silent job that fails (five cards cannot fit in 6 s): non-zero, with the reason.
    result = await cli(
        "generate", str(script), "--quality", "480p", "--duration", "6", "--silent", "--wait"
    )
    assert result.code == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith("t2m generate: job job_") and "storyboard failed" in last
    assert "status    failed" in result.stdout

    result = await cli(
        "generate",
        str(script),
        "--quality",
        "480p",
        "--duration",
        "8",
        "--title",
        "CLI",
        "--voice",
        "en-us-joe",
        "--wait",
    )
    assert result.code == 0, result.stderr
    fields = dict(line.split(None, 1) for line in result.stdout.splitlines())
    job_id = fields["job"]
    assert fields["status"] == "completed"
    server = cli.env["T2M_SERVER"]
    assert fields["download"] == f"{server}/api/v1/videos/{job_id}/download"
    assert fields["stream"] == f"{server}/api/v1/videos/{job_id}/stream"
    assert f"{job_id} render" in result.stderr  # the live bar names the stage
    assert f"{job_id} completed" in result.stderr

    shown = await cli("jobs", "show", job_id, "--json")
    assert json.loads(shown.stdout)["status"] == "completed"
    logs = await cli("jobs", "logs", job_id, "--limit", "100")
    assert "Video ready" in logs.stdout
    assert "CONFLICT" in one_line_failure(await cli("jobs", "cancel", job_id))

    # The video, resumed from half of it, is byte-identical to what the server has.
    response = await client.get(f"/api/v1/videos/{job_id}/download", headers=user.headers)
    video = await response.read()
    target = tmp_path / "video.mp4"
    (tmp_path / "video.mp4.part").write_bytes(video[: len(video) // 2])
    result = await cli("download", job_id, "-o", str(target))
    assert result.code == 0, result.stderr
    assert target.read_bytes() == video
    assert result.stderr.splitlines()[0].startswith("video.mp4: 50%")

    # Without --wait: the job is submitted, and can be cancelled.
    submitted = await cli("generate", str(script), "--quality", "480p", "--json")
    job = json.loads(submitted.stdout)
    cancelled = await cli("jobs", "cancel", job["id"])
    assert cancelled.code == 0, cancelled.stderr
    follow = await client.get(f"/api/v1/jobs/{job['id']}", headers=user.headers)
    assert (await follow.json())["data"]["status"] == "cancelled"
