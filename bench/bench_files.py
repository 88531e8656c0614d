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

The client is a deliberately small HTTP/1.1 client on non-blocking sockets: it
sends the upload body from one pre-built random block and reads responses into
one reused buffer (checking status, length and byte count, not keeping the
bytes).  The client shares the machine's cores with the API, so a heavier one
(aiohttp's, which copies each chunk a few times) would be measured as much as
the API.  Every range request has its own connection, so all of them are in
flight at once (aiohttp's default pool ran only 100 at a time).

    python bench/bench_files.py [--upload-mib 1024] [--video-mib 100] [--concurrency 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.harness import print_figures, running_service  # noqa: E402
from t2m.storage import content_key  # noqa: E402

MIB = 1024 * 1024
PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 100
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 100


def dd_speed(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(["dd", *args], check=True, capture_output=True)
    return time.perf_counter() - started


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes  # empty unless kept
    body_size: int


async def request(
    base: str,
    method: str,
    path: str,
    headers: dict[str, str],
    *,
    body: Iterator[bytes | memoryview] | None = None,
    content_length: int | None = None,
    keep_body: bool = True,
    buffer: bytearray | None = None,
) -> Response:
    """One HTTP/1.1 exchange on its own connection (``Connection: close``)."""
    loop = asyncio.get_running_loop()
    url = urlsplit(base)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, (url.hostname, url.port))
        lines = [f"{method} {path} HTTP/1.1", f"Host: {url.netloc}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if content_length is not None:
            lines.append(f"Content-Length: {content_length}")
        await loop.sock_sendall(sock, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        for piece in body or ():
            await loop.sock_sendall(sock, piece)
        return await _read_response(loop, sock, keep_body, buffer or bytearray(MIB))
    finally:
        sock.close()


async def _read_response(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, keep_body: bool, buffer: bytearray
) -> Response:
    view = memoryview(buffer)
    head = bytearray()
    while (end := head.find(b"\r\n\r\n")) < 0:
        n = await loop.sock_recv_into(sock, view)
        if not n:
            raise ConnectionError("connection closed before the response headers")
        head += view[:n]
    status_line, *header_lines = head[:end].decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers["content-length"])  # the API sends no chunked bodies
    kept = bytearray(head[end + 4 :]) if keep_body else bytearray()
    received = len(head) - end - 4
    while received < length:
        n = await loop.sock_recv_into(sock, view)
        if not n:
            raise ConnectionError(f"connection closed after {received} of {length} body bytes")
        received += n
        if keep_body:
            kept += view[:n]
    return Response(int(status_line.split(" ", 2)[1]), headers, bytes(kept), received)


def multipart_file(
    head: bytes, size: int, filename: str, block: bytes
) -> tuple[str, int, Iterator[bytes | memoryview]]:
    """Content type, length and pieces of a form with one ``size``-byte file field.

    The file is ``head`` followed by ``block`` repeated (random bytes, so the
    API hashes and stores real-looking content); nothing of its size is built.
    """
    boundary = uuid.uuid4().hex  # as aiohttp's client (the server scans for it)
    opening = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    closing = f"\r\n--{boundary}--\r\n".encode()

    def pieces() -> Iterator[bytes | memoryview]:
        yield opening + head
        sent = len(head)
        view = memoryview(block)
        while sent < size:
            piece = view[: min(len(block), size - sent)]
            sent += len(piece)
            yield piece
        yield closing

    content_type = f"multipart/form-data; boundary={boundary}"
    return content_type, len(opening) + size + len(closing), pieces()


class BareFileServer:
    """Answers one GET with a file, by blocking sendfile, from a thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.base = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with self.listener, open(self.path, "rb") as source:
            conn, _ = self.listener.accept()
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    head += conn.recv(65536)
                size = os.fstat(source.fileno()).st_size
                conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
                offset = 0
                while offset < size:
                    offset += os.sendfile(conn.fileno(), source.fileno(), offset, size - offset)

    def join(self) -> None:
        self._thread.join()


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
    base: str, headers: dict[str, str], head: bytes, size: int, name: str, block: bytes
) -> dict:
    """The uploaded file's details."""
    content_type, length, pieces = multipart_file(head, size, name, block)
    response = await request(
        base,
        "POST",
        "/api/v1/files/upload",
        {**headers, "Content-Type": content_type},
        body=pieces,
        content_length=length,
    )
    body = json.loads(response.body)
    if response.status != 201:
        raise RuntimeError(body)
    return dict(body["data"])


async def download(
    base: str, path: str, headers: dict[str, str], buffer: bytearray, *, status: int = 200
) -> int:
    """Bytes received; the body is read into ``buffer`` and dropped."""
    response = await request(base, "GET", path, headers, keep_body=False, buffer=buffer)
    if response.status != status:
        raise RuntimeError(f"GET {path}: {response.status}, expected {status}")
    return response.body_size


async def run(args: argparse.Namespace, base: str, token: str, api_pid: int, scratch: Path) -> dict:
    results: dict = {}
    headers = {"Authorization": f"Bearer {token}"}
    size = args.upload_mib * MIB
    block = os.urandom(4 * MIB)
    buffer = bytearray(4 * MIB)
    with RssSampler(api_pid) as rss:
        started = time.perf_counter()
        uploaded = await upload(base, headers, PNG_HEAD, size, "big.png", block)
        upload_s = time.perf_counter() - started
    file_id = uploaded["id"]
    results["upload_mib"] = args.upload_mib
    results["api_rss_baseline_mib"] = round(rss.baseline / MIB, 1)
    results["api_rss_peak_growth_mib"] = round((rss.peak - rss.baseline) / MIB, 1)
    results["upload_mib_s"] = round(args.upload_mib / upload_s, 1)

    started = time.perf_counter()
    received = await download(base, f"/api/v1/files/{file_id}/download", headers, buffer)
    download_s = time.perf_counter() - started
    assert received == size, (received, size)
    results["download_mib_s"] = round(args.upload_mib / download_s, 1)

    # The same bytes from a bare sendfile loop to the same client: what any
    # server could reach over loopback here, next to the API's figure.
    stored = scratch / "storage" / content_key(uploaded["checksum"].removeprefix("sha256:"))
    bare = BareFileServer(stored)
    started = time.perf_counter()
    received = await download(bare.base, "/", {}, buffer)
    bare_s = time.perf_counter() - started
    bare.join()
    assert received == size, (received, size)
    results["loopback_sendfile_mib_s"] = round(args.upload_mib / bare_s, 1)

    video_size = args.video_mib * MIB
    video_id = (await upload(base, headers, MP4_HEAD, video_size, "video.mp4", block))["id"]
    path = f"/api/v1/files/{video_id}/stream"
    rng = random.Random(0)
    latencies: list[float] = []

    async def one_range() -> int:
        start = rng.randrange(0, video_size - MIB)
        began = time.perf_counter()
        range_header = {"Range": f"bytes={start}-{start + MIB - 1}"}
        # A buffer of its own: concurrent reads into one could mix up headers.
        own = bytearray(256 * 1024)
        got = await download(base, path, {**headers, **range_header}, own, status=206)
        latencies.append((time.perf_counter() - began) * 1000)
        assert got == MIB, got
        return got

    started = time.perf_counter()
    sizes = await asyncio.gather(*(one_range() for _ in range(args.concurrency)))
    wall = time.perf_counter() - started
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
    results["download_vs_loopback_sendfile"] = round(
        results["download_mib_s"] / results["loopback_sendfile_mib_s"], 2
    )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--upload-mib", type=int, default=1024)
    parser.add_argument("--video-mib", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=200)
    args = parser.parse_args()

    env = {"MAX_UPLOAD_BYTES": str((args.upload_mib + 10) * MIB)}
    with running_service({"web": ["serve"]}, env=env) as service:
        results = asyncio.run(
            run(
                args, service.base_url, service.token, service.processes["web"].pid, service.scratch
            )
        )
    print_figures(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
