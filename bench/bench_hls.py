"""Adaptive streaming: signed segment throughput, time to first frame, packaging cost.

Starts the API and the media, package and video workers as processes
(``bench.harness``), then, in one run:

1. **Signed segments.** An uploaded 10-minute 360p video is packaged by the
   workers; ``GET`` of its signed segments (HMAC check, no database) at
   ``--connections`` concurrent connections (wrk), against a bare aiohttp server
   (another process, like ``t2m serve``) answering the same files with
   ``FileResponse``.  Rounds alternate bare / signed so drift on a busy
   machine hits both alike; the ratio of requests/s and the p99 are reported.
2. **Time to first frame** of that 10-minute video in headless Chromium on
   loopback: from creating the player (hls.js, the console's copy, on the
   console's origin) to the first decoded frame (``requestVideoFrameCallback``).
3. **Packaging against rendering.** A rendered 720p video (the sample script,
   ``--render-seconds`` long): the render time the worker recorded, and the
   time of the package stage's own code (HLS stream copy + seek previews) on
   the same rendition.

    .venv/bin/python bench/bench_hls.py [--connections 50] [--seconds 10] [--rounds 3]

``wrk`` (Debian package) makes the segment load; Chromium the first frame.
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
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_load import _ms
from bench.harness import Service, running_service, wait_http
from pipeline.stages.hls_package import package_hls
from pipeline.stages.seek_previews import make_storyboard
from t2m.embedded import free_port
from tests.support.media import h264_mp4

REPO = Path(__file__).resolve().parents[1]
BARE_SERVER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from aiohttp import web

    root = Path(sys.argv[1]).resolve()

    async def segment(request):
        return web.FileResponse(root / request.match_info["path"])

    app = web.Application()
    app.router.add_get("/{path:.+}", segment)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[2]), print=None, access_log=None)
    """
)


WRK_SCRIPT = """
paths = {%s}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1])
end
"""


def _wrk(base: str, paths: list[str], connections: int, seconds: int, work: Path) -> dict:
    """Requests/s and p50/p99 (ms) of wrk cycling over ``paths`` of ``base``."""
    script = work / "paths.lua"
    script.write_text(WRK_SCRIPT % ", ".join(json.dumps(p) for p in paths))
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script)]
    output = subprocess.run([*command, base], capture_output=True, text=True, check=True).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.MULTILINE))
    if re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        raise RuntimeError(f"failed requests:\n{output}")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert rps is not None, output
    return {"rps": float(rps.group(1)), "p50_ms": _ms(latency["50"]), "p99_ms": _ms(latency["99"])}


async def _wait_master(session: aiohttp.ClientSession, service: Service, file_id: str) -> str:
    for _ in range(3000):
        async with session.get(
            f"{service.base_url}/api/v1/files/{file_id}/hls/master.m3u8", headers=service.headers
        ) as response:
            if response.status == 200:
                return await response.text()
        await asyncio.sleep(0.2)
    raise RuntimeError("the upload was never packaged")


async def _signed_master(session: aiohttp.ClientSession, service: Service, file_id: str) -> str:
    async with session.post(
        f"{service.base_url}/api/v1/files/{file_id}/signed-url",
        json={"format": "hls"},
        headers=service.headers,
    ) as response:
        url: str = (await response.json())["data"]["url"]
    return service.base_url + url[url.index("/api/") :]


async def segments_and_ttff(service: Service, args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-hls-"))
    try:
        video = h264_mp4(work / "long.mp4", height=360, seconds=args.long_seconds, kbps=500)
        async with aiohttp.ClientSession() as session:
            form = aiohttp.FormData()
            form.add_field("file", video.read_bytes(), filename="long.mp4")
            async with session.post(
                f"{service.base_url}/api/v1/files/upload", data=form, headers=service.headers
            ) as response:
                file_id = (await response.json())["data"]["id"]
            await _wait_master(session, service, file_id)
            master = await _signed_master(session, service, file_id)
            query = master.split("?", 1)[1]
        tree = service.scratch / "storage" / "hls" / file_id
        names = sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*.m4s"))
        signed_base = master.rsplit("/", 1)[0].split("/api/", 1)[1]
        signed = [f"/api/{signed_base}/{n}?{query}" for n in names]
        port = free_port()
        script = work / "bare.py"
        script.write_text(BARE_SERVER)
        bare_process = await asyncio.create_subprocess_exec(
            sys.executable, str(script), str(tree), str(port)
        )
        try:
            await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/{names[0]}")
            bare_url = f"http://127.0.0.1:{port}"
            rounds: dict[str, list[dict[str, float]]] = {"bare": [], "signed": []}
            bare = [f"/{n}" for n in names]
            for _ in range(args.rounds):
                for kind, base, paths in (
                    ("bare", bare_url, bare),
                    ("signed", service.base_url, signed),
                ):
                    rounds[kind].append(
                        await asyncio.to_thread(
                            _wrk, base, paths, args.connections, args.seconds, work
                        )
                    )
        finally:
            bare_process.terminate()
            await bare_process.wait()
        summary = {
            kind: {
                "rps": statistics.median(r["rps"] for r in runs),
                "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            }
            for kind, runs in rounds.items()
        }
        return {
            "segments": len(names),
            "segment_kb": round(sum((tree / n).stat().st_size for n in names) / len(names) / 1024),
            "bare": summary["bare"],
            "signed": summary["signed"],
            "ratio_rps": summary["signed"]["rps"] / summary["bare"]["rps"],
            "ttff_s": await time_to_first_frame(service, master, args.ttff_runs),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


TTFF = """async (master) => {
  const Hls = (await import('/console/js/vendor/hls.js')).default;
  const started = performance.now();
  const video = document.createElement('video');
  video.muted = true;
  document.body.append(video);
  const hls = new Hls({ enableWorker: false });
  const first = new Promise((resolve) => video.requestVideoFrameCallback(resolve));
  hls.loadSource(master);
  hls.attachMedia(video);
  video.play();
  await first;
  const elapsed = (performance.now() - started) / 1000;
  hls.destroy();
  video.remove();
  return elapsed;
}"""


async def time_to_first_frame(service: Service, master: str, runs: int) -> list[float]:
    from playwright.async_api import async_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
        )
        try:
            timings = []
            for _ in range(runs):
                page = await browser.new_page()
                await page.goto(service.base_url + "/")
                timings.append(round(await page.evaluate(TTFF, master), 3))
                await page.close()
            return timings
        finally:
            await browser.close()


async def packaging_fraction(service: Service, args: argparse.Namespace) -> dict[str, Any]:
    script = (REPO / "tests" / "data" / "scripts" / "sample_video_script.txt").read_text()
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{service.base_url}/api/v1/videos/generate",
            json={"script": script, "quality": "720p", "duration": args.render_seconds},
            headers=service.headers,
        ) as response:
            job_id = (await response.json())["data"]["id"]
        for _ in range(6000):
            async with session.get(
                f"{service.base_url}/api/v1/videos/{job_id}/status", headers=service.headers
            ) as response:
                status = (await response.json())["data"]["status"]
            if status in ("completed", "failed", "cancelled"):
                break
            await asyncio.sleep(0.5)
        if status != "completed":
            raise RuntimeError(f"the render {status}")
        work = Path(tempfile.mkdtemp(prefix="bench-pkg-"))
        try:
            local = work / "720p.mp4"
            async with session.get(
                f"{service.base_url}/api/v1/videos/{job_id}/download", headers=service.headers
            ) as response:
                local.write_bytes(await response.read())
            conn = await asyncpg.connect(service.infra.database_url)
            try:
                render_s = float(
                    await conn.fetchval("SELECT render_seconds FROM jobs WHERE id = $1", job_id)
                )
            finally:
                await conn.close()
            started = time.perf_counter()
            result = package_hls({"720p": local}, work / "hls")
            make_storyboard(
                local, work / "hls", duration_s=result.duration_s, width=1280, height=720
            )
            package_s = time.perf_counter() - started
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return {
        "video_s": args.render_seconds,
        "render_s": round(render_s, 2),
        "package_s": round(package_s, 3),
        "fraction": round(package_s / render_s, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=10, help="of each wrk round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--long-seconds", type=float, default=600)
    parser.add_argument("--ttff-runs", type=int, default=5)
    parser.add_argument("--render-seconds", type=int, default=60)
    args = parser.parse_args()
    commands = {
        "web": ["serve"],
        "media": ["worker", "--queues", "media", "package"],
        "video": ["worker", "--queues", "parse", "storyboard", "render", "thumbnails"],
    }
    with running_service(commands) as service:
        report = {
            "segments": asyncio.run(segments_and_ttff(service, args)),
            "packaging": asyncio.run(packaging_fraction(service, args)),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
