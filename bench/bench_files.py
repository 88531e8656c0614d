"""Files benchmarks: upload memory, upload/download throughput vs raw disk, range load.

Starts the API as a separate process (``t2m serve``) against PostgreSQL and
Redis (``DATABASE_URL`` / ``REDIS_URL`` or the standard local ones, else
embedded servers, in a throwaway database), with the local storage backend
in a scratch directory, and measures from a client in this process:

1. peak RSS growth of the API process while uploading a large file;
2. upload and download throughput over loopback, next to raw disk write
   (``dd conv=fsync``) and read speed of the same disk measured in this run;
3. 200 concurrent single-range requests against one 100 MiB video:
   p50/p99 latency and total throughput.

    python bench/bench_files.py [--upload-mib 1024] [--video-mib 100] [--concurrency 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from db.migrate import migrate_dsn  # noqa: E402
from t2m.embedded import free_port  # noqa: E402
from tests.infra import provide_infra  # noqa: E402

MIB = 1024 * 1024
PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 100
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 100


def dd_speed(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(["dd", *args], check=True, capture_output=True)
    return time.perf_counter() - started


async def payload(head: bytes, total: int, chunk: int = MIB) -> AsyncIterator[bytes]:
    block = os.urandom(chunk)
    yield head
    sent = len(head)
    while sent < total:
        piece = block[: min(chunk, total - sent)]
        sent += len(piece)
        yield piece


class RssSampler:
    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.baseline = self.process.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def upload(
    session: aiohttp.ClientSession, base: str, head: bytes, size: int, name: str
) -> str:
    writer = aiohttp.MultipartWriter("form-data")
    part = writer.append(payload(head, size), {"Content-Type": "application/octet-stream"})
    part.set_content_disposition("form-data", name="file", filename=name)
    async with session.post(f"{base}/api/v1/files/upload", data=writer) as response:
        body = await response.json()
        if response.status != 201:
            raise RuntimeError(body)
        return str(body["data"]["id"])


async def download(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> int:
    received = 0
    async with session.get(url, headers=headers) as response:
        async for chunk in response.content.iter_chunked(4 * MIB):
            received += len(chunk)
    return received


async def run(args: argparse.Namespace, base: str, token: str, api_pid: int, scratch: Path) -> dict:
    results: dict = {}
    timeout = aiohttp.ClientTimeout(total=None)
    headers = {"Authorization": f"Bearer {token}"}
    size = args.upload_mib * MIB
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
        with RssSampler(api_pid) as rss:
            started = time.perf_counter()
            file_id = await upload(session, base, PNG_HEAD, size, "big.png")
            upload_s = time.perf_counter() - started
        results["upload_mib"] = args.upload_mib
        results["api_rss_baseline_mib"] = round(rss.baseline / MIB, 1)
        results["api_rss_peak_growth_mib"] = round((rss.peak - rss.baseline) / MIB, 1)
        results["upload_mib_s"] = round(args.upload_mib / upload_s, 1)

        started = time.perf_counter()
        received = await download(session, f"{base}/api/v1/files/{file_id}/download")
        download_s = time.perf_counter() - started
        assert received == size, (received, size)
        results["download_mib_s"] = round(args.upload_mib / download_s, 1)

        video_size = args.video_mib * MIB
        video_id = await upload(session, base, MP4_HEAD, video_size, "video.mp4")
        url = f"{base}/api/v1/files/{video_id}/stream"
        rng = random.Random(0)
        latencies: list[float] = []

        async def one_range() -> int:
            start = rng.randrange(0, video_size - MIB)
            began = time.perf_counter()
            got = await download(session, url, {"Range": f"bytes={start}-{start + MIB - 1}"})
            latencies.append((time.perf_counter() - began) * 1000)
            return got

        connector_started = time.perf_counter()
        sizes = await asyncio.gather(*(one_range() for _ in range(args.concurrency)))
        wall = time.perf_counter() - connector_started
        latencies.sort()
        results["range_requests"] = args.concurrency
        results["range_p50_ms"] = round(statistics.median(latencies), 1)
        results["range_p99_ms"] = round(latencies[int(0.99 * (len(latencies) - 1))], 1)
        results["range_total_mib_s"] = round(sum(sizes) / MIB / wall, 1)

    raw = scratch / "raw.bin"
    write_s = dd_speed(
        ["if=/dev/zero", f"of={raw}", "bs=1M", f"count={args.upload_mib}", "conv=fsync"]
    )
    read_s = dd_speed([f"if={raw}", "of=/dev/null", "bs=1M"])
    raw.unlink()
    results["raw_write_mib_s"] = round(args.upload_mib / write_s, 1)
    results["raw_read_mib_s"] = round(args.upload_mib / read_s, 1)
    results["upload_vs_raw_write"] = round(results["upload_mib_s"] / results["raw_write_mib_s"], 2)
    results["download_vs_raw_read"] = round(
        results["download_mib_s"] / results["raw_read_mib_s"], 2
    )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--upload-mib", type=int, default=1024)
    parser.add_argument("--video-mib", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=200)
    args = parser.parse_args()

    scratch = Path(
        tempfile.mkdtemp(prefix="t2m-bench-", dir=REPO / "var" if (REPO / "var").exists() else None)
    )
    try:
        with provide_infra(scratch / "infra") as infra:
            asyncio.run(migrate_dsn(infra.database_url))
            port = free_port()
            env = {
                **os.environ,
                "T2M_ENV": "test",
                "T2M_VAR_DIR": str(scratch / "var"),
                "DATABASE_URL": infra.database_url,
                "REDIS_URL": infra.redis_url,
                "REDIS_NAMESPACE": infra.namespace,
                "STORAGE_ROOT": str(scratch / "storage"),
                "MAX_UPLOAD_BYTES": str((args.upload_mib + 10) * MIB),
                "LOG_LEVEL": "WARNING",
                "PORT": str(port),
            }
            token = asyncio.run(_make_user_token(infra.database_url, env))
            api = subprocess.Popen([sys.executable, "-m", "t2m.cli", "serve"], env=env, cwd=REPO)
            try:
                base = f"http://127.0.0.1:{port}"
                _wait_http(f"{base}/api/v1/auth/health")
                results = asyncio.run(run(args, base, token, api.pid, scratch))
            finally:
                api.terminate()
                api.wait(10)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(results))
    return 0


async def _make_user_token(database_url: str, env: dict[str, str]) -> str:
    import asyncpg

    from db.users import insert_user
    from t2m.settings import Settings
    from t2m.tokens import issue_token

    settings = Settings.from_env(env)
    conn = await asyncpg.connect(database_url)
    try:
        row = await insert_user(
            conn, username="bench", email="bench@example.test", password_hash=None
        )
    finally:
        await conn.close()
    return issue_token(
        secret=settings.jwt_secret,
        issuer=settings.jwt_issuer,
        subject=row["id"],
        role="USER",
        kind="access",
        ttl_s=3600,
    ).token


def _wait_http(url: str, timeout_s: float = 30) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (loopback URL we built)
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"API did not answer at {url}")


if __name__ == "__main__":
    sys.exit(main())
