"""Throughput of the local storage backend next to the raw disk, in one run.

    .venv/bin/python bench/bench_storage.py --size 1GiB --dir var/bench

Writes: ``put_stream`` fed with network-sized chunks (sha256 + fsync + rename,
exactly what an upload does) against a plain Python write of the same bytes in
1 MiB blocks with fsync + rename + directory fsync, and against
``dd conv=fsync``.  Reads: ``iter_range`` over the whole object against a plain
Python read and ``dd``, both cold (pages dropped with
``posix_fadvise(DONTNEED)``, no root needed) and warm (page cache).
Also prints raw sha256 speed, the CPU bound of a hashed upload.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import inspect
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from t2m.storage.local import LocalStorage

MiB = 1024 * 1024
_UNITS = {"": 1, "k": 1024, "m": MiB, "g": 1024**3}


def parse_size(text: str) -> int:
    """``1GiB``, ``256m``, ``64KiB``, ``1000`` → bytes."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([kmg]?)(?:i?b)?\s*", text.lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    return int(float(match[1]) * _UNITS[match[2]])


def drop_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def cpu_seconds() -> float:
    """CPU time of this process and its waited-for children (dd)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def raw_write(path: Path, size: int, block: bytes) -> None:
    """What put_stream does minus hashing and the event loop."""
    temp = path.with_name(path.name + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        remaining = size
        while remaining > 0:
            remaining -= os.write(fd, block[: min(len(block), remaining)])
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def raw_read(path: Path) -> int:
    total = 0
    buffer = bytearray(MiB)
    with open(path, "rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            total += count
    return total


def dd(args: list[str]) -> None:
    subprocess.run(["dd", *args, "status=none"], check=True)


async def feed(size: int, chunk: int, source: bytes) -> AsyncIterator[bytes]:
    """Chunks as an HTTP body reader hands them out: fresh bytes objects."""
    offset = 0
    while offset < size:
        n = min(chunk, size - offset)
        start = offset % (len(source) - chunk)
        yield source[start : start + n]
        offset += n


def rate(size: int, seconds: float | None) -> str:
    return "      n/a" if not seconds else f"{size / seconds / MiB:8.0f} MiB/s"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1GiB", help="object size (e.g. 256MiB, 1GiB)")
    parser.add_argument("--dir", default=None, help="directory on the disk to test")
    parser.add_argument("--chunk", default="64KiB", help="upload chunk size fed to put_stream")
    parser.add_argument("--read-chunk", default="1MiB", help="iter_range chunk size")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each test (best kept)")
    parser.add_argument("--no-fsync", action="store_true", help="backend without fsync")
    args = parser.parse_args()

    size, chunk, read_chunk = (
        parse_size(args.size),
        parse_size(args.chunk),
        parse_size(args.read_chunk),
    )
    base = Path(args.dir) if args.dir else Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="t2m-bench-", dir=base))
    source = os.urandom(8 * MiB)
    storage = LocalStorage(work / "storage", fsync=not args.no_fsync)
    raw_file = work / "raw.bin"
    dd_file = work / "dd.bin"
    key = "uploads/be/bench"
    obj = work / "storage" / key
    have_dd = shutil.which("dd") is not None
    print(
        f"size {size / MiB:.0f} MiB, upload chunks {chunk // 1024} KiB, "
        f"read chunks {read_chunk // 1024} KiB, dir {work}, "
        f"fsync={not args.no_fsync}, cpus={os.cpu_count()}"
    )

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}

    async def measure(name: str, run: Callable[[], Awaitable[object] | object]) -> None:
        """Best wall time and its CPU time (this process + dd children) over the repeats."""
        cpu_before = cpu_seconds()
        start = time.perf_counter()
        result = run()
        if inspect.isawaitable(result):
            await result
        elapsed = time.perf_counter() - start
        if name not in wall or elapsed < wall[name]:
            wall[name], cpu[name] = elapsed, cpu_seconds() - cpu_before

    async def put() -> None:
        await storage.delete(key)
        result = await storage.put_stream(key, feed(size, chunk, source))
        assert result.size == size

    async def get() -> None:
        async for _ in storage.iter_range(key, 0, None, read_chunk):
            pass

    sha_block = source[: 4 * MiB]
    dd_write = ["if=/dev/zero", f"of={dd_file}", "bs=1M", f"count={size // MiB}", "conv=fsync"]
    dd_read = [f"if={dd_file}", "of=/dev/null", "bs=1M"]
    try:
        await measure("sha256", lambda: [hashlib.sha256(sha_block) for _ in range(16)])
        for name in ("sha256",):  # measured on 64 MiB: scale to the object size
            wall[name] *= size / (64 * MiB)
            cpu[name] *= size / (64 * MiB)
        for _ in range(args.repeat):
            # Interleaved, so load from other processes hits raw and backend alike.
            await measure("raw write", lambda: raw_write(raw_file, size, source[:MiB]))
            if have_dd:
                await measure("dd write", lambda: dd(dd_write))
            await measure("put_stream", put)
            for state in ("cold", "warm"):
                for name, path, run in (
                    ("raw read", raw_file, lambda: raw_read(raw_file)),
                    ("dd read", dd_file, lambda: dd(dd_read)),
                    ("iter_range", obj, get),
                ):
                    if name == "dd read" and not have_dd:
                        continue
                    if state == "cold":
                        drop_cache(path)
                    await measure(f"{name} {state}", run)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    print(f"\n{'test':<18}{'throughput':>14}{'CPU s/GiB':>11}")
    for name in wall:
        per_gib = cpu[name] * 1024**3 / size
        print(f"{name:<18}{rate(size, wall[name]):>14}{per_gib:>11.2f}")

    def ratio(backend: str, raw: str) -> str:
        if backend not in wall or raw not in wall:
            return "n/a"
        return f"{wall[raw] / wall[backend]:.0%}"

    print("\nratios of throughput, backend / raw (goal: write >= 50 %, read >= 70 %)")
    for backend, raw in (
        ("put_stream", "raw write"),
        ("put_stream", "dd write"),
        ("iter_range cold", "raw read cold"),
        ("iter_range cold", "dd read cold"),
        ("iter_range warm", "raw read warm"),
        ("iter_range warm", "dd read warm"),
    ):
        print(f"  {backend:<16} / {raw:<14} {ratio(backend, raw):>5}")


if __name__ == "__main__":
    asyncio.run(main())
