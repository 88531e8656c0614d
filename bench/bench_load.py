"""Load: T2M as its Procfile runs it, under wrk, next to a bare aiohttp handler.

Three parts, each usable alone:

``http``  — requests/s and p50/p99 latency (wrk ``--latency``) for
``GET /health``, ``GET /api/v1/files/{id}``, ``GET /api/v1/files`` (a page of
20) and 206 range reads of a video, at 50 and 200 connections, and the same
for a bare aiohttp "hello" handler measured in the same run: the ratio of our
requests/s to the bare handler's says what T2M's stack costs.

``jobs``  — one-scene jobs per minute with two render workers (and one each for
parse, storyboard, thumbnails), jobs submitted in a closed loop that keeps
``--window`` jobs outstanding; the ready-queue lengths are sampled every 0.5 s
to show the queue staying bounded.

``soak``  — every Procfile process under mixed load for ``--minutes``; the
resident memory of each process is sampled every 15 s, and the slope over the
second half (MiB/min) shows whether anything grows.

    python bench/bench_load.py http [--duration 10] [--connections 50 200]
    python bench/bench_load.py jobs [--jobs 30] [--window 6]
    python bench/bench_load.py soak [--minutes 10]
    python bench/bench_load.py            # all three with their defaults

Rate limits are off (the harness), so the numbers are the service's own.
``wrk`` comes from Debian's package of that name (``make install`` adds it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import aiohttp
import imageio_ffmpeg
import psutil
import redis

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.harness import Service, running_service, wait_http  # noqa: E402
from t2m.embedded import free_port  # noqa: E402
from tests.media_factory import png_bytes  # noqa: E402

HELLO_APP = """
from aiohttp import web
async def hello(request):
    return web.Response(text="hello")
app = web.Application()
app.router.add_get("/", hello)
web.run_app(app, host="127.0.0.1", port={port}, print=None, access_log=None)
"""

ONE_SCENE = "[duration: 3s]\nOne scene, to count how many jobs a minute the render workers finish."
QUEUES = ("parse", "narrate", "storyboard", "render", "thumbnails")
MIB = 1024 * 1024


# --- wrk -------------------------------------------------------------------


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(url: str, connections: int, duration_s: int, headers: dict[str, str]) -> dict[str, float]:
    """Requests/s, p50/p99 latency (ms) and non-2xx count of one wrk run."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration_s}s", "--latency"]
    command += ["--timeout", "10s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.MULTILINE))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)$", output, re.MULTILINE)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(latency["50"]),
        "p99_ms": _ms(latency["99"]),
        "non_2xx": float(non_2xx.group(1)) if non_2xx else 0.0,
        "socket_errors": 1.0 if errors else 0.0,
    }


@contextmanager
def hello_server() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", HELLO_APP.format(port=port)])
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_http(url)
        yield url
    finally:
        process.terminate()
        process.wait(10)


# --- fixtures through the API ----------------------------------------------


def make_video(path: Path, seconds: int) -> Path:
    """An H.264 clip made with ffmpeg's test source (a few MiB)."""
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            *("-loglevel", "error", "-y", "-f", "lavfi"),
            *("-i", f"testsrc2=size=1280x720:rate=30:duration={seconds}"),
            *("-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"),
            *("-movflags", "+faststart", str(path)),
        ],
        check=True,
    )
    return path


async def upload(session: aiohttp.ClientSession, base: str, name: str, data: bytes) -> str:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name)
    async with session.post(f"{base}/api/v1/files/upload", data=form) as response:
        body = await response.json()
        if response.status != 201:
            raise RuntimeError(f"upload {name}: {response.status} {body}")
        return str(body["data"]["id"])


async def seed_files(svc: Service, video: bytes) -> tuple[str, str]:
    """25 images (a full page of 20 to list) and a video; their ids."""
    async with aiohttp.ClientSession(headers=svc.headers) as session:
        image_id = ""
        for i in range(25):
            image_id = await upload(
                session, svc.base_url, f"image-{i}.png", png_bytes(color=(i * 9, 80, 200 - i * 7))
            )
        video_id = await upload(session, svc.base_url, "clip.mp4", video)
    return image_id, video_id


# --- http ------------------------------------------------------------------


def run_http(args: argparse.Namespace) -> dict:
    results: dict = {}
    with running_service({"web": ["serve"]}) as svc, hello_server() as hello_url:
        video = make_video(svc.scratch / "clip.mp4", 20).read_bytes()
        image_id, video_id = asyncio.run(seed_files(svc, video))
        auth = svc.headers
        targets = {
            "bare aiohttp hello": (hello_url, {}),
            "GET /health": (f"{svc.base_url}/health", {}),
            "GET /api/v1/files/{id}": (f"{svc.base_url}/api/v1/files/{image_id}", auth),
            "GET /api/v1/files (20)": (
                f"{svc.base_url}/api/v1/files?page=1&items_per_page=20",
                auth,
            ),
            "GET stream 206 (64 KiB)": (
                f"{svc.base_url}/api/v1/files/{video_id}/stream",
                {**auth, "Range": f"bytes={len(video) // 2}-{len(video) // 2 + 65535}"},
            ),
        }
        for connections in args.connections:
            for name, (url, headers) in targets.items():
                wrk(url, connections, 2, headers)  # warm-up: caches, pool, JIT paths
                results[f"{name} @{connections}"] = wrk(url, connections, args.duration, headers)
    print(f"{'target':<36} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs bare':>8} {'non-2xx':>8}")
    for connections in args.connections:
        bare = results[f"bare aiohttp hello @{connections}"]["rps"]
        for key, row in results.items():
            if key.endswith(f"@{connections}"):
                row["ratio_to_bare"] = round(row["rps"] / bare, 3)
                print(
                    f"{key:<36} {row['rps']:>9.0f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f}"
                    f" {row['ratio_to_bare']:>8.3f} {int(row['non_2xx']):>8}"
                )
    return results


# --- jobs ------------------------------------------------------------------


def queue_lengths(client: redis.Redis, namespace: str) -> dict[str, int]:
    """Ready messages per video queue, from Dramatiq's own Redis lists."""
    return {q: int(client.llen(f"{namespace}-dramatiq:{q}")) for q in QUEUES}


async def closed_loop_jobs(svc: Service, total: int, window: int) -> dict:
    client = redis.Redis.from_url(svc.infra.redis_url)
    peak = dict.fromkeys(QUEUES, 0)
    finished: list[float] = []
    failed = 0
    semaphore = asyncio.Semaphore(window)

    async with aiohttp.ClientSession(headers=svc.headers) as session:

        async def one_job() -> None:
            nonlocal failed
            async with semaphore:
                async with session.post(
                    f"{svc.base_url}/api/v1/videos/generate",
                    json={"script": ONE_SCENE, "quality": "480p"},
                ) as response:
                    job_id = (await response.json())["data"]["id"]
                while True:
                    async with session.get(f"{svc.base_url}/api/v1/jobs/{job_id}") as response:
                        status = (await response.json())["data"]["status"]
                    if status in ("completed", "failed", "cancelled"):
                        break
                    await asyncio.sleep(0.1)
                failed += status != "completed"
                finished.append(time.monotonic())

        async def sample_queues(stop: asyncio.Event) -> None:
            while not stop.is_set():
                for queue, length in queue_lengths(client, svc.infra.namespace).items():
                    peak[queue] = max(peak[queue], length)
                await asyncio.sleep(0.5)

        await one_job()  # warm-up: imports, fonts, first connections
        finished.clear()
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_queues(stop))
        started = time.monotonic()
        await asyncio.gather(*(one_job() for _ in range(total)))
        stop.set()
        await sampler
    minutes = (max(finished) - started) / 60
    return {
        "jobs": total,
        "failed": failed,
        "minutes": round(minutes, 2),
        "jobs_per_minute": round(total / minutes, 2),
        "outstanding_window": window,
        "peak_ready_messages": peak,
    }


def run_jobs(args: argparse.Namespace) -> dict:
    commands = {
        "web": ["serve"],
        "parse": ["worker", "--queues", "parse"],
        "narrate": ["worker", "--queues", "narrate"],
        "storyboard": ["worker", "--queues", "storyboard"],
        "render-1": ["worker", "--queues", "render"],
        "render-2": ["worker", "--queues", "render"],
        "thumbnails": ["worker", "--queues", "thumbnails"],
    }
    with running_service(commands) as svc:
        result = asyncio.run(closed_loop_jobs(svc, args.jobs, args.window))
    print(json.dumps(result, indent=2))
    return result


# --- soak ------------------------------------------------------------------


def procfile_commands() -> dict[str, list[str]]:
    commands = {}
    for line in (REPO / "Procfile").read_text().splitlines():
        if ":" in line and not line.startswith("#"):
            name, command = line.split(":", 1)
            commands[name.strip()] = command.split()[1:]  # drop "t2m"
    return commands


async def mixed_load(svc: Service, ids: tuple[str, str], stop_at: float) -> int:
    """Eight clients reading, streaming and listing; one job and upload every ~20 s."""
    image_id, video_id = ids
    base = svc.base_url
    requests = 0

    async def reader(session: aiohttp.ClientSession, n: int) -> None:
        nonlocal requests
        paths = [
            f"/api/v1/files/{image_id}",
            "/api/v1/files?page=1&items_per_page=20",
            "/health",
            f"/api/v1/files/{image_id}/download",
        ]
        while time.monotonic() < stop_at:
            path = paths[requests % len(paths)]
            async with session.get(base + path) as response:
                await response.read()
            async with session.get(
                f"{base}/api/v1/files/{video_id}/stream",
                headers={"Range": f"bytes={n * 65536}-{n * 65536 + 262143}"},
            ) as response:
                await response.read()
            requests += 2

    async def producer(session: aiohttp.ClientSession) -> None:
        i = 0
        while time.monotonic() < stop_at:
            await session.post(
                f"{base}/api/v1/videos/generate", json={"script": ONE_SCENE, "quality": "480p"}
            )
            await upload(session, base, f"soak-{i}.png", png_bytes(color=(i % 255, 10, 10)))
            i += 1
            await asyncio.sleep(20)

    async with aiohttp.ClientSession(headers=svc.headers) as session:
        await asyncio.gather(producer(session), *(reader(session, n) for n in range(8)))
    return requests


def _tree_rss_mib(process: psutil.Process) -> float:
    """The process and its children (ffmpeg, Dramatiq's worker processes)."""
    total = 0
    for p in [process, *process.children(recursive=True)]:
        with suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total / MIB


def _slope_per_minute(samples: list[tuple[float, float]]) -> float:
    times = [t / 60 for t, _ in samples]
    values = [v for _, v in samples]
    return statistics.linear_regression(times, values).slope


def run_soak(args: argparse.Namespace) -> dict:
    with running_service(procfile_commands()) as svc:
        video = make_video(svc.scratch / "clip.mp4", 20).read_bytes()
        ids = asyncio.run(seed_files(svc, video))
        processes = {name: psutil.Process(p.pid) for name, p in svc.processes.items()}
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in processes}
        started = time.monotonic()
        stop_at = started + args.minutes * 60

        async def sample() -> None:
            while time.monotonic() < stop_at:
                for name, process in processes.items():
                    samples[name].append((time.monotonic() - started, _tree_rss_mib(process)))
                await asyncio.sleep(15)

        async def both() -> int:
            sampler = asyncio.create_task(sample())
            count = await mixed_load(svc, ids, stop_at)
            await sampler
            return count

        requests = asyncio.run(both())
    result: dict = {"minutes": args.minutes, "requests": requests, "processes": {}}
    header = f"{'process':<12} {'start MiB':>10} {'end MiB':>9} {'max MiB':>9}"
    print(f"{header} {'2nd-half MiB/min':>17}")
    for name, series in samples.items():
        second_half = series[len(series) // 2 :]
        row = {
            "start_mib": round(series[0][1], 1),
            "end_mib": round(series[-1][1], 1),
            "max_mib": round(max(v for _, v in series), 1),
            "second_half_slope_mib_per_min": round(_slope_per_minute(second_half), 3)
            if len(second_half) > 2
            else None,
        }
        result["processes"][name] = row
        print(
            f"{name:<12} {row['start_mib']:>10} {row['end_mib']:>9} {row['max_mib']:>9}"
            f" {row['second_half_slope_mib_per_min']!s:>17}"
        )
    print(f"requests served: {requests}")
    return result


def run_all(args: argparse.Namespace) -> dict:
    defaults = {"duration": 10, "connections": [50, 200], "jobs": 30, "window": 6, "minutes": 10}
    full = argparse.Namespace(**{**defaults, **vars(args)})
    return {"http": run_http(full), "jobs": run_jobs(full), "soak": run_soak(full)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parts = parser.add_subparsers(dest="part")
    http = parts.add_parser("http")
    http.add_argument("--duration", type=int, default=10)
    http.add_argument("--connections", type=int, nargs="+", default=[50, 200])
    jobs = parts.add_parser("jobs")
    jobs.add_argument("--jobs", type=int, default=30)
    jobs.add_argument("--window", type=int, default=6)
    soak = parts.add_parser("soak")
    soak.add_argument("--minutes", type=float, default=10)
    args = parser.parse_args()
    if args.part in (None, "http") and shutil.which("wrk") is None:
        print("wrk is not installed (Debian package 'wrk')", file=sys.stderr)
        return 1
    run = {"http": run_http, "jobs": run_jobs, "soak": run_soak}.get(args.part, run_all)
    result = run(args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
