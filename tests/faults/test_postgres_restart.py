"""PostgreSQL restarted under load: the API's pool recovers by itself.

A real ``t2m serve`` process on a throwaway PostgreSQL cluster answers a
steady stream of concurrent reads while the cluster is restarted with
``pg_ctl restart -m fast`` (which terminates every connection).  Every
request must finish (client timeout, no hang) as 200 or as a 503 envelope,
and afterwards the same API process - never restarted - answers 200 again.
"""

from __future__ import annotations

import asyncio
import io
import secrets
import threading
from pathlib import Path

import aiohttp
import pytest

from t2m.settings import Settings
from tests.faults.servers import ApiProcess, ThrowawayPostgres, service_env, user_token

pytestmark = pytest.mark.faults

CLIENTS = 8
REQUEST_TIMEOUT_S = 20


async def _load(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], stop: asyncio.Event
) -> list[tuple[int, dict | None]]:
    results: list[tuple[int, dict | None]] = []
    while not stop.is_set():
        try:
            async with session.get(url, headers=headers) as response:
                body = await response.json(content_type=None)
                results.append((response.status, body))
        except TimeoutError:
            results.append((-1, None))  # a hang: the assertion below names it
        await asyncio.sleep(0.01)
    return results


async def test_pool_recovers_after_postgres_restart(
    pg_cluster: ThrowawayPostgres, pg_database: str, settings: Settings, tmp_path: Path
) -> None:
    settings = settings.with_overrides(database_url=pg_database)
    token = await user_token(pg_database, settings, f"pg{secrets.token_hex(4)}")
    headers = {"Authorization": f"Bearer {token}"}
    api = ApiProcess(service_env(settings, DB_POOL_MAX="4"), tmp_path / "api.log")
    try:
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            upload = aiohttp.FormData()
            upload.add_field("file", io.BytesIO(b"some notes\n"), filename="notes.txt")
            async with session.post(
                f"{api.base_url}/api/v1/files/upload", data=upload, headers=headers
            ) as response:
                assert response.status == 201, await response.text()
                file_id = (await response.json())["data"]["id"]
            url = f"{api.base_url}/api/v1/files/{file_id}"

            stop = asyncio.Event()
            loads = [
                asyncio.create_task(_load(session, url, headers, stop)) for _ in range(CLIENTS)
            ]
            await asyncio.sleep(1.0)  # requests are flowing
            restarted = threading.Event()

            def restart() -> None:
                pg_cluster.restart()
                restarted.set()

            await asyncio.to_thread(restart)
            await asyncio.sleep(1.0)  # and keep flowing after the restart
            stop.set()
            results = [r for task in loads for r in await task]

            assert restarted.is_set()
            statuses = {status for status, _ in results}
            assert statuses <= {200, 503}, sorted(statuses)
            assert 503 in statuses  # the restart did cut requests in flight
            for status, body in results:
                assert body is not None
                if status == 503:
                    assert body["success"] is False
                    assert body["error"]["code"] == "SERVICE_UNAVAILABLE", body
            # The same process, never restarted, answers normally again.
            assert api.alive()
            for _ in range(5):
                async with session.get(url, headers=headers) as response:
                    assert response.status == 200, await response.text()
            assert sum(1 for status, _ in results if status == 200) > 0
    finally:
        api.stop()
