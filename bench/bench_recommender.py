"""Recommender benchmarks through the running service.

Starts the API and one ``rl_update`` worker (as the Procfile does) against
PostgreSQL/Redis in a throwaway database, builds a small library with a tag
vocabulary, then measures:

1. recommendation latency over HTTP (``GET /api/v1/files/{id}/recommended-tags``)
   at 50 concurrent clients: p50 / p99 and requests/s, next to a baseline measured in
   the same run and interleaved with it: ``GET /api/v1/files/{id}`` (the same
   authentication and file lookup, no recommender), and a bare aiohttp handler in a
   process of its own (one small JSON answer: the floor this machine allows). The
   load average is printed before and after. On a busy machine the absolute
   figures follow the load; the differences are the recommender's own cost;
2. feedback ingestion (``POST /api/v1/feedback``, 50 concurrent clients);
3. the updater's end-to-end throughput: a backlog of stored feedback rows,
   one trigger, and the time until the last row is trained into a published
   model version (events per second).

    python bench/bench_recommender.py [--requests 2000] [--http-events 2000] [--events 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import asyncpg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.harness import print_figures, running_service  # noqa: E402
from tests.support.media import png_bytes  # noqa: E402

CONCURRENCY = 50
TOPICS = [
    ("beach ocean sand waves", "Waves on the sand at dawn"),
    ("mountain snow hiking", "Climbing the north face"),
    ("city traffic night", "Neon lights after midnight"),
    ("food recipe kitchen", "Slow-cooked ragu"),
    ("rocket stars galaxy", "Launch seen from the coast"),
    ("dog puppy park", "Max at the lake"),
]


async def _upload(session: aiohttp.ClientSession, base: str, i: int, title: str, tags: str) -> str:
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("file", png_bytes(color=(i % 255, 3, 7)), filename=f"{i}.png")
    form.add_field("title", title)
    form.add_field("tags", tags)
    async with session.post(f"{base}/api/v1/files/upload", data=form) as response:
        return str((await response.json())["data"]["id"])


async def _pool(count: int, work) -> tuple[list[float], float]:  # type: ignore[no-untyped-def]
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def client() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            began = time.perf_counter()
            await work(i)
            latencies.append((time.perf_counter() - began) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    return sorted(latencies), time.perf_counter() - started


def _bare_server(port: int) -> None:
    """The baseline: one aiohttp handler answering a small JSON body, nothing else."""
    from aiohttp import web

    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"data": {"tags": ["beach", "ocean", "sand"]}})

    app = web.Application()
    app.router.add_get("/bare", answer)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


@contextmanager
def _running_bare_server() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, __file__, "--bare-server", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the bare aiohttp server did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def run(
    base: str, token: str, database_url: str, args: argparse.Namespace, bare: str
) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    results: dict = {"load_average_before": [round(x, 2) for x in os.getloadavg()]}
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        ids = [
            await _upload(session, base, i, title, tags)
            for i, (tags, title) in enumerate(TOPICS * 5)
        ]

        async def recommend(i: int) -> None:
            async with session.get(
                f"{base}/api/v1/files/{ids[i % len(ids)]}/recommended-tags?k=3"
            ) as r:
                assert r.status == 200, await r.text()
                await r.read()

        async def details(i: int) -> None:
            async with session.get(f"{base}/api/v1/files/{ids[i % len(ids)]}") as r:
                assert r.status == 200, await r.text()
                await r.read()

        async def bare_handler(i: int) -> None:
            async with session.get(f"{bare}/bare") as r:
                assert r.status == 200, await r.text()
                await r.read()

        kinds = {"recommend": recommend, "baseline": details, "bare_aiohttp": bare_handler}
        for work in kinds.values():
            await _pool(100, work)  # warm-up
        # alternate rounds so all see the same machine load
        rounds = 4
        all_latencies: dict[str, list[float]] = {name: [] for name in kinds}
        walls = dict.fromkeys(kinds, 0.0)
        for _ in range(rounds):
            for name, work in kinds.items():
                latencies, wall = await _pool(args.requests // rounds, work)
                all_latencies[name] += latencies
                walls[name] += wall
        results["load_average_after_latency"] = [round(x, 2) for x in os.getloadavg()]
        for name, lat in all_latencies.items():
            wall = walls[name]
            lat.sort()
            results[f"{name}_p50_ms"] = round(statistics.median(lat), 2)
            results[f"{name}_p99_ms"] = round(lat[int(0.99 * (len(lat) - 1))], 2)
            results[f"{name}_requests_per_s"] = round(len(lat) / wall, 1)

        async def feedback(i: int) -> None:
            body = {
                "content_id": ids[i % len(ids)],
                "event_type": "tag_accept" if i % 2 else "tag_reject",
                "tags": [TOPICS[i % len(TOPICS)][0].split()[i % 3]],
            }
            async with session.post(f"{base}/api/v1/feedback", json=body) as r:
                assert r.status == 202, await r.text()

        latencies, wall = await _pool(args.http_events, feedback)
        results["feedback_http_per_s"] = round(args.http_events / wall, 1)
        results["feedback_http_p99_ms"] = round(latencies[int(0.99 * (len(latencies) - 1))], 2)

        conn = await asyncpg.connect(database_url)
        try:
            await _wait_all_processed(conn)
            # The updater on its own: a backlog of stored feedback rows, one
            # trigger, until every row is trained into a published model.
            await conn.execute(
                """
                INSERT INTO feedback_events (content_id, event_type, tags)
                SELECT ($1::text[])[1 + i % array_length($1::text[], 1)],
                       CASE WHEN i % 2 = 0 THEN 'tag_accept' ELSE 'tag_reject' END,
                       ARRAY[($2::text[])[1 + i % array_length($2::text[], 1)]]
                FROM generate_series(1, $3) AS i
                """,
                ids,
                [t for tags, _ in TOPICS for t in tags.split()],
                args.events,
            )
            before = await conn.fetchval("SELECT count(*) FROM model_versions")
            started = time.perf_counter()
            await feedback(0)  # one more event through the API triggers the update
            await _wait_all_processed(conn)
            done = time.perf_counter()
            row = await conn.fetchrow(
                "SELECT sum(events_trained) AS events, sum(seconds) AS seconds, count(*) AS n"
                " FROM model_versions WHERE version > $1",
                before,
            )
        finally:
            await conn.close()
    assert int(row["events"]) == args.events + 1
    results["updater_backlog_events"] = args.events + 1
    results["updater_end_to_end_events_per_s"] = round(int(row["events"]) / (done - started), 1)
    results["updater_training_events_per_s"] = round(int(row["events"]) / row["seconds"], 1)
    results["updater_versions_published"] = row["n"]
    return results


async def _wait_all_processed(conn: asyncpg.Connection) -> None:
    # Polling another process's progress: there is no event to wait on.
    while await conn.fetchval(  # noqa: ASYNC110
        "SELECT count(*) FROM feedback_events WHERE processed_at IS NULL"
    ):
        await asyncio.sleep(0.05)


def main() -> int:
    if sys.argv[1:2] == ["--bare-server"]:
        _bare_server(int(sys.argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--http-events", type=int, default=2000)
    parser.add_argument("--events", type=int, default=20000, help="updater backlog")
    args = parser.parse_args()
    commands = {"web": ["serve"], "updater": ["worker", "--queues", "rl_update"]}
    with running_service(commands) as service, _running_bare_server() as bare:
        results = asyncio.run(
            run(service.base_url, service.token, service.infra.database_url, args, bare)
        )
    print_figures(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
