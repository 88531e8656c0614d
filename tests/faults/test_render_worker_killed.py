"""A render worker killed with SIGKILL mid-render: the job completes exactly once.

Real processes: ``t2m serve``, a worker for parse/storyboard/thumbnails and
one for render.  While ffmpeg is encoding, the render worker's whole process
group is SIGKILLed (no cleanup code runs).  Its ffmpeg - started in a
session of its own - must not outlive it, writing into scratch space the
retry reuses.  A new render worker gets the message back once the broker
sees the dead worker's heartbeat lapse (``BROKER_HEARTBEAT_TIMEOUT_MS`` = 3 s
here, maintenance on every poll), and the job completes once: one output
file row, one set of rendition objects, no ``tmp/`` objects, no scratch dir,
one "Video ready".
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import aiohttp
import asyncpg
import psutil
import pytest

from t2m.scratch import scratch_root
from t2m.settings import Settings
from tests.faults.servers import ApiProcess, service_env, start_worker, stored_files, user_token

pytestmark = pytest.mark.faults

SCRIPT = "\n\n".join(f"Scene {i}: a line of text for the card number {i}." for i in range(14))


def ffmpeg_of(job_id: str) -> list[psutil.Process]:
    """ffmpeg processes working for the job (their cwd is its scratch dir)."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline", "cwd"]):
        where = " ".join([proc.info["cwd"] or "", *(proc.info["cmdline"] or [])])
        if "ffmpeg" in (proc.info["name"] or "") and job_id in where:
            found.append(proc)
    return found


def scratch_dirs(settings: Settings, job_id: str) -> list[Path]:
    """The per-attempt scratch directories the render and thumbnail stages used."""
    return list(scratch_root(settings).glob(f"*{job_id}*"))


async def test_killed_render_worker_completes_the_job_once(
    db: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> None:
    token = await user_token(settings.database_url, settings, f"render{secrets.token_hex(4)}")
    auth = {"Authorization": f"Bearer {token}"}
    api = ApiProcess(service_env(settings), tmp_path / "api.log")
    others = start_worker(settings, ["parse", "storyboard", "thumbnails"], tmp_path / "w1.log")
    render = start_worker(settings, ["render"], tmp_path / "render-1.log")
    workers = [others, render]
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:

            async def job() -> dict:
                url = f"{api.base_url}/api/v1/jobs/{job_id}"
                async with session.get(url, headers=auth) as response:
                    return (await response.json())["data"]

            async with session.post(
                f"{api.base_url}/api/v1/videos/generate",
                json={"script": SCRIPT, "quality": "720p", "narration": "none"},
                headers=auth,
            ) as response:
                assert response.status == 202, await response.text()
                job_id = (await response.json())["data"]["id"]

            for _ in range(1200):
                current = await job()
                rendering = current["current_stage"] == "render" and current["progress"] >= 15
                if rendering and ffmpeg_of(job_id):
                    break
                assert current["status"] in ("queued", "processing"), current
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"render never got going: {current}")

            render.kill()  # SIGKILL to the worker's process group
            for _ in range(50):  # its ffmpeg dies with it, not minutes later
                if not ffmpeg_of(job_id):
                    break
                await asyncio.sleep(0.1)
            assert ffmpeg_of(job_id) == [], "ffmpeg outlived its killed worker"

            workers.append(start_worker(settings, ["render"], tmp_path / "render-2.log"))
            for _ in range(2400):
                current = await job()
                if current["status"] in ("completed", "failed", "cancelled"):
                    break
                await asyncio.sleep(0.1)
            assert current["status"] == "completed", current
            assert current["result"]["renditions"] == ["480p", "720p"]

        async with db.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM files WHERE job_id = $1", job_id) == 1
            ready = await conn.fetchval(
                "SELECT count(*) FROM job_logs WHERE job_id = $1 AND message = 'Video ready'",
                job_id,
            )
        assert ready == 1
        stored = stored_files(settings.storage_root)
        videos = [k for k in stored if k.startswith(f"videos/{job_id}/")]
        assert videos == [f"videos/{job_id}/480p.mp4", f"videos/{job_id}/720p.mp4"], stored
        assert [k for k in stored if k.startswith("tmp/") or "/.t2m-part-" in k] == []
        assert scratch_dirs(settings, job_id) == []
        assert ffmpeg_of(job_id) == []
    finally:
        for worker in workers:
            worker.stop()
        api.stop()
