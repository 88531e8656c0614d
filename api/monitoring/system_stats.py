"""Figures of this API process and its host: CPU, memory, disk, processes,
event-loop lag, running tasks, database and Redis connection pools."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import socket
import statistics
import time
from pathlib import Path
from typing import Any

import asyncpg
import psutil
import redis.asyncio as aioredis

# The lag sampler wakes this often; lag = how late the wake-up ran.
LOOP_SAMPLE_INTERVAL_S = 0.5
# Samples kept: the last two minutes.
LOOP_SAMPLES_KEPT = 240
CPU_SAMPLE_INTERVAL_S = 2.0


def identity() -> dict[str, Any]:
    return {"scope": "this API process", "pid": os.getpid(), "host": socket.gethostname()}


class LoopMonitor:
    """Event-loop lag: a task sleeps ``interval`` and records how late it woke.

    A blocked loop (sync I/O, heavy CPU in a handler) shows up as lag; the
    task costs one wake-up per interval.
    """

    def __init__(self, interval_s: float = LOOP_SAMPLE_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.samples: collections.deque[float] = collections.deque(maxlen=LOOP_SAMPLES_KEPT)
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            scheduled = loop.time() + self.interval_s
            await asyncio.sleep(self.interval_s)
            self.samples.append(max(0.0, loop.time() - scheduled))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="t2m-loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def summary(self) -> dict[str, Any]:
        samples = list(self.samples)
        if not samples:
            empty: dict[str, Any] = dict.fromkeys(("last_ms", "mean_ms", "p95_ms", "max_ms"))
            return {"samples": 0, "window_s": 0.0, **empty}
        ordered = sorted(samples)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        return {
            "samples": len(samples),
            "window_s": round(len(samples) * self.interval_s, 1),
            "last_ms": round(samples[-1] * 1000, 3),
            "mean_ms": round(statistics.fmean(samples) * 1000, 3),
            "p95_ms": round(p95 * 1000, 3),
            "max_ms": round(ordered[-1] * 1000, 3),
        }


class CpuSampler:
    """Host and process CPU percent, read every ``interval`` seconds.

    psutil's non-blocking reading covers the time since the previous call;
    two requests a few ms apart would get noise, so a task reads it at a
    steady pace and requests get the latest reading.
    """

    def __init__(self, interval_s: float = CPU_SAMPLE_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.host_percent: float | None = None
        self.process_percent: float | None = None
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        process = _this_process()
        psutil.cpu_percent(interval=None)
        process.cpu_percent(interval=None)
        while True:
            await asyncio.sleep(self.interval_s)
            # Two small /proc reads: cheap enough for the loop thread.
            self.host_percent = psutil.cpu_percent(interval=None)
            self.process_percent = process.cpu_percent(interval=None)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="t2m-cpu")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def task_summary(top: int = 10) -> dict[str, Any]:
    tasks = asyncio.all_tasks()
    names: collections.Counter[str] = collections.Counter()
    for task in tasks:
        coro = task.get_coro()
        names[getattr(coro, "__qualname__", None) or type(coro).__name__] += 1
    return {
        "running": len(tasks),
        "by_coroutine": [{"coroutine": name, "count": n} for name, n in names.most_common(top)],
    }


def host_stats(disk_path: Path, cpu: CpuSampler) -> dict[str, Any]:
    """CPU, memory, disk and process figures; blocking (reads /proc), so
    callers run it in a thread."""
    memory = psutil.virtual_memory()
    disk_target = disk_path if disk_path.exists() else Path(os.sep)
    disk = psutil.disk_usage(str(disk_target))
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    process = _this_process()
    with process.oneshot():
        rss = process.memory_info().rss
        threads = process.num_threads()
        fds = process.num_fds() if hasattr(process, "num_fds") else None
    return {
        # Over the sampler's last interval; before its first reading, the
        # one-minute load average as a share of the cores.
        "cpu_usage": cpu.host_percent
        if cpu.host_percent is not None
        else round(min(100.0, 100 * load[0] / (psutil.cpu_count() or 1)), 1),
        "cpu_sample_interval_s": cpu.interval_s,
        "cpu_count": psutil.cpu_count(),
        "load_average": [round(x, 2) for x in load],
        "memory_usage": memory.percent,
        "memory": {"total_bytes": memory.total, "available_bytes": memory.available},
        "disk_usage": disk.percent,
        "disk": {
            "path": str(disk_target),
            "total_bytes": disk.total,
            "free_bytes": disk.free,
        },
        "processes": {"host_total": len(psutil.pids())},
        "process": {
            "rss_bytes": rss,
            "threads": threads,
            "open_fds": fds,
            "cpu_percent": cpu.process_percent,
            "uptime_s": round(time.time() - process.create_time(), 1),
        },
    }


_process: psutil.Process | None = None


def _this_process() -> psutil.Process:
    # One object per process: psutil keeps the previous CPU reading on the
    # object, so a fresh one would always report 0 %.
    global _process
    if _process is None or _process.pid != os.getpid():
        _process = psutil.Process()
    return _process


def pool_stats(pool: asyncpg.Pool) -> dict[str, Any]:
    size, idle = pool.get_size(), pool.get_idle_size()
    return {
        "size": size,
        "idle": idle,
        "in_use": size - idle,
        "min_size": pool.get_min_size(),
        "max_size": pool.get_max_size(),
    }


def redis_pool_stats(client: aioredis.Redis) -> dict[str, Any]:
    pool = client.connection_pool
    # redis-py keeps these as private lists/sets and offers no public counter.
    in_use = len(getattr(pool, "_in_use_connections", ()))
    available = len(getattr(pool, "_available_connections", ()))
    return {"in_use": in_use, "available": available, "max": pool.max_connections}


async def redis_clients_info(client: aioredis.Redis) -> dict[str, Any]:
    info = await client.info("clients")
    wanted = ("connected_clients", "blocked_clients", "maxclients", "tracking_clients")
    return {key: info[key] for key in wanted if key in info}
