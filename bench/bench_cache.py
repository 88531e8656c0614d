"""Latency of cached against uncached reads: file details and a page of 20 files.

Starts the API as a separate process (``t2m serve``, see ``bench.harness``),
uploads files for a 'bench' user, then times sequential requests over one
keep-alive connection:

- ``GET /api/v1/files/{id}`` and ``GET /api/v1/files?items_per_page=20``;
- *uncached*: before each request the bench bumps the user's cache generation
  in Redis (what a write does), so the request misses, computes from
  PostgreSQL and stores the entry; *cached*: the same request again, a hit.

Misses and hits alternate request by request, so drift and other load on
the machine hit both alike; every response's ``X-Cache`` header is checked.

    .venv/bin/python bench/bench_cache.py [--requests 500] [--files 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import Service, running_service
from t2m.cache_generation import generation_key
from t2m.settings import Settings

PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 100


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    cut = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "p50_ms": round(cut[49], 3),
        "p99_ms": round(cut[98], 3),
        "mean_ms": round(statistics.fmean(ordered), 3),
        "n": len(ordered),
    }


async def _timed(session: aiohttp.ClientSession, url: str, expect: str) -> float:
    started = time.perf_counter()
    async with session.get(url) as response:
        await response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200 or response.headers.get("X-Cache") != expect:
            raise RuntimeError(f"{url}: {response.status} {response.headers.get('X-Cache')}")
    return elapsed


async def run(svc: Service, requests: int, files: int) -> dict[str, object]:
    settings = Settings(redis_namespace=svc.infra.namespace)
    client = aioredis.Redis.from_url(svc.infra.redis_url)
    async with aiohttp.ClientSession(
        headers=svc.headers, connector=aiohttp.TCPConnector(limit=1)
    ) as session:
        async with session.get(f"{svc.base_url}/api/v1/auth/me") as response:
            user_id = (await response.json())["id"]
        file_ids = []
        for i in range(files):
            form = aiohttp.FormData()
            form.add_field("file", PNG_HEAD + i.to_bytes(4, "big"), filename=f"f{i}.png")
            async with session.post(f"{svc.base_url}/api/v1/files/upload", data=form) as response:
                file_ids.append((await response.json())["data"]["id"])
        gen_key = generation_key(settings, user_id)
        reads = {
            "file_details": f"{svc.base_url}/api/v1/files/{file_ids[files // 2]}",
            "file_list_20": f"{svc.base_url}/api/v1/files?items_per_page=20",
        }
        results: dict[str, object] = {"files": files, "requests_per_case": requests}
        for name, url in reads.items():
            await client.incr(gen_key)
            for _ in range(20):  # warm the connection, the pool and the plans
                await _timed(session, url, "MISS")
                await client.incr(gen_key)
            misses: list[float] = []
            hits: list[float] = []
            for _ in range(requests):
                await client.incr(gen_key)  # as a write does: the next read misses
                misses.append(await _timed(session, url, "MISS"))
                hits.append(await _timed(session, url, "HIT"))
            uncached, cached = percentiles(misses), percentiles(hits)
            results[name] = {
                "uncached": uncached,
                "cached": cached,
                "p50_speedup": round(uncached["p50_ms"] / cached["p50_ms"], 2),
            }
    await client.aclose()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--files", type=int, default=40)
    args = parser.parse_args()
    with running_service({"web": ["serve"]}) as svc:
        result = asyncio.run(run(svc, args.requests, max(args.files, 20)))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
