"""Storage in a local directory: ``<root>/<key>``.

Blocking file I/O runs on a small dedicated thread pool.  Writes are batched
(~4 MiB per hand-off) and pipelined: while one batch is hashed and written in
a worker thread, the event loop collects the next one, so a streaming upload
costs one thread hop per batch rather than per network chunk.  Reads prefetch
the next chunk the same way.

Objects are written to ``<dir>/.t2m-part-<random>`` and renamed into place after
fsync, so readers never see a partial object and a crash leaves only temp files
(which are not valid keys, never listed, and may be swept by maintenance).
When fsync is on, disk writeback of each written batch is started at once
(``sync_file_range``), so the disk works while the rest of the stream arrives and
the final fsync only waits for the last batches instead of the whole object.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import hashlib
import logging
import os
import secrets
import shutil
import stat as stat_module
import sys
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Callable,
    Iterator,
    Sequence,
)
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from t2m.errors import NotFound, PayloadTooLarge, StorageError
from t2m.storage.base import (
    DEFAULT_CHUNK_SIZE,
    SEGMENTS,
    TEMP_PREFIX,
    ObjectInfo,
    PutResult,
    Storage,
    check_range,
    validate_key,
    validate_prefix,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
_Buffer = bytes | bytearray | memoryview

_BATCH_BYTES = 4 * 1024 * 1024
_COPY_BUFFER = 1024 * 1024
_LIST_BATCH = 512
# Linux limits one writev() to IOV_MAX (1024) buffers.
_IOV_MAX = 1024

# Shared by every LocalStorage in the process: file I/O threads mostly wait on
# the kernel, so a handful serves many concurrent streams.
_EXECUTOR = ThreadPoolExecutor(max_workers=8, thread_name_prefix="t2m-storage")


def _submit(fn: Callable[..., T], *args: Any) -> Future[T]:
    return _EXECUTOR.submit(fn, *args)


async def _run(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.wrap_future(_submit(fn, *args))


async def _wait(future: Future[T]) -> T:
    """The result of a thread job; no event-loop round trip if it is already done."""
    if future.done():
        return future.result()
    return await asyncio.wrap_future(future)


def _after(pending: Future[Any] | None, cleanup: Callable[[], None]) -> None:
    """Run ``cleanup`` once ``pending`` (a thread job possibly still running) ends.

    Closing a file descriptor while another thread still writes to it could
    redirect that write to whatever file reuses the number, so closing waits.
    """
    if pending is None or pending.done():
        cleanup()
    else:
        pending.add_done_callback(lambda _f: cleanup())


def _writev(fd: int, buffers: Sequence[memoryview]) -> int:
    """One ``writev`` call; a seam so tests can simulate a full disk."""
    return os.writev(fd, buffers)


def _write_all(fd: int, buffers: Sequence[_Buffer]) -> None:
    views = [memoryview(b) for b in buffers if b]
    while views:
        written = _writev(fd, views[:_IOV_MAX])
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if written:
            views[0] = views[0][written:]


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_sync_file_range = _load_sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>: start writeback, do not wait for it


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a range to disk now; only a hint.

    Without it, dirty pages of a large upload mostly wait for the final fsync
    (the kernel starts writeback by itself only past dirty_background_ratio),
    which then stalls for the time the disk needs to write all of them.
    """
    if _sync_file_range is not None:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _storage_error(exc: OSError, action: str, key: str) -> StorageError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        message = f"Storage is full: cannot {action} {key}"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        message = f"Storage is not writable: cannot {action} {key}"
    else:
        message = f"Storage I/O error: cannot {action} {key} ({exc.strerror or exc})"
    return StorageError(message, full=exc.errno in (errno.ENOSPC, errno.EDQUOT))


class _TempWriter:
    """A temp file beside its final path, hashed as it is written.  Thread-side.

    Its own I/O failures surface as :class:`StorageError`, so an ``OSError``
    from the data source (a client's connection reset) is never mistaken for
    a storage failure.
    """

    def __init__(self, key: str, final: Path, fsync: bool) -> None:
        self.key = key
        self.final = final
        self.fsync = fsync
        self.temp = final.with_name(f"{TEMP_PREFIX}{secrets.token_hex(8)}")
        self.sha = hashlib.sha256()
        self.fd = -1
        self.written = 0

    def open(self) -> None:
        try:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
            self.fd = os.open(self.temp, flags, 0o666)
        except OSError as exc:
            raise _storage_error(exc, "write", self.key) from exc

    def hash(self, buffers: Sequence[_Buffer]) -> None:
        for buffer in buffers:
            self.sha.update(buffer)

    def write(self, buffers: Sequence[_Buffer]) -> None:
        try:
            _write_all(self.fd, buffers)
        except OSError as exc:
            raise _storage_error(exc, "write", self.key) from exc
        size = sum(len(b) for b in buffers)
        if self.fsync:
            _start_writeback(self.fd, self.written, size)
        self.written += size

    def commit(self) -> str:
        try:
            if self.fsync:
                os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1
            os.replace(self.temp, self.final)
            if self.fsync:
                _fsync_dir(self.final.parent)
        except OSError as exc:
            raise _storage_error(exc, "write", self.key) from exc
        return self.sha.hexdigest()

    def unlink(self) -> None:
        try:
            self.temp.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            log.warning("could not remove temp file %s", self.temp, exc_info=True)

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1

    def abort(self, pending: Future[Any] | None) -> None:
        # Unlink at once (an open file can be unlinked on POSIX) so no temp
        # file outlives the failed call; close only when the writer thread is done.
        self.unlink()
        _after(pending, self.close)


def _info(key: str, st: os.stat_result) -> ObjectInfo:
    return ObjectInfo(
        key=key,
        size=st.st_size,
        modified=datetime.fromtimestamp(st.st_mtime, UTC),
        etag=f"{st.st_mtime_ns:x}-{st.st_size:x}",
    )


def _walk(directory: Path, key_prefix: str, name_filter: str) -> Iterator[ObjectInfo]:
    """Objects under ``directory`` in lexicographic key order.

    Sorting a directory's entries with ``name + '/'`` for subdirectories gives
    exactly the order S3 lists keys in.
    """
    try:
        with os.scandir(directory) as it:
            entries = [e for e in it if e.name.startswith(name_filter)]
    except (FileNotFoundError, NotADirectoryError):
        return
    decorated = []
    for entry in entries:
        if entry.name.startswith(TEMP_PREFIX):
            continue
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            continue
        decorated.append((entry.name + "/" if is_dir else entry.name, is_dir, entry))
    decorated.sort(key=lambda item: item[0])
    for _, is_dir, entry in decorated:
        key = key_prefix + entry.name
        if is_dir:
            yield from _walk(Path(entry.path), key + "/", "")
        else:
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # deleted while listing
            yield _info(key, st)


def _next_batch(iterator: Iterator[ObjectInfo]) -> list[ObjectInfo]:
    batch: list[ObjectInfo] = []
    for info in iterator:
        batch.append(info)
        if len(batch) >= _LIST_BATCH:
            break
    return batch


class LocalStorage(Storage):
    backend_name = "local"

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = Path(root).resolve()
        self.fsync = fsync

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    # -- writing ----------------------------------------------------------
    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        max_bytes: int | None = None,
        content_type: str | None = None,
    ) -> PutResult:
        writer = _TempWriter(key, self._path(key), self.fsync)
        await _run(writer.open)
        # Three stages overlap: the event loop copies incoming chunks into one of
        # two reusable buffers while one thread hashes the other buffer and a
        # second thread writes it (hashlib and os.write release the GIL).  Whole
        # batches, not network chunks, cross to the threads: a thread re-taking
        # the GIL once per 64 KiB chunk would wait on the busy event loop each time.
        buffers = (bytearray(_BATCH_BYTES), bytearray(_BATCH_BYTES))
        current = 0
        filled = 0
        pending: Future[None] | None = None  # the write in flight
        hashing: Future[None] | None = None
        total = 0

        async def settle() -> None:
            nonlocal pending, hashing
            if hashing is not None:
                await _wait(hashing)
                hashing = None
            if pending is not None:
                await _wait(pending)
                pending = None

        async def flush() -> None:
            nonlocal current, filled, pending, hashing
            await settle()  # the previous batch is done with the other buffer
            data = [memoryview(buffers[current])[:filled]]
            hashing = _submit(writer.hash, data)
            pending = _submit(writer.write, data)
            current, filled = 1 - current, 0

        try:
            async for chunk in chunks:
                size = len(chunk)
                if not size:
                    continue
                total += size
                if max_bytes is not None and total > max_bytes:
                    raise PayloadTooLarge(f"Upload exceeds the limit of {max_bytes} bytes")
                view = memoryview(chunk)
                offset = 0
                while offset < size:
                    take = min(size - offset, _BATCH_BYTES - filled)
                    buffers[current][filled : filled + take] = view[offset : offset + take]
                    filled += take
                    offset += take
                    if filled == _BATCH_BYTES:
                        await flush()
            if filled:
                await flush()
            await settle()
            digest = await _run(writer.commit)
        except BaseException:
            writer.abort(pending)
            raise
        return PutResult(size=total, sha256_hex=digest)

    async def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> PutResult:
        writer = _TempWriter(key, self._path(key), self.fsync)

        def copy() -> PutResult:
            # A missing or unreadable source is the caller's problem: its OSError
            # propagates as is; failures on our side are StorageError.
            with open(path, "rb", buffering=0) as source:
                writer.open()
                try:
                    size = 0
                    while data := source.read(_COPY_BUFFER):
                        writer.hash([data])
                        writer.write([data])
                        size += len(data)
                    return PutResult(size=size, sha256_hex=writer.commit())
                except BaseException:
                    writer.unlink()
                    writer.close()
                    raise

        return await _run(copy)

    # -- reading ----------------------------------------------------------
    async def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await _run(path.read_bytes)
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise NotFound("Stored object not found") from exc
        except OSError as exc:
            raise _storage_error(exc, "read", key) from exc

    async def download_to(self, key: str, path: Path) -> int:
        source = self._path(key)
        target = Path(path)
        temp = target.with_name(f"{target.name}.{secrets.token_hex(4)}.part")

        def copy() -> int:
            try:
                shutil.copyfile(source, temp)
                os.replace(temp, target)
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
            return target.stat().st_size

        try:
            return await _run(copy)
        except FileNotFoundError as exc:
            if not source.is_file():
                raise NotFound("Stored object not found") from exc
            raise
        except OSError as exc:
            raise _storage_error(exc, "read", key) from exc

    async def iter_range(
        self,
        key: str,
        start: int = 0,
        end_inclusive: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> AsyncGenerator[bytes, None]:
        path = self._path(key)

        def open_file() -> tuple[int, int]:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                size = os.fstat(fd).st_size
            except BaseException:
                os.close(fd)
                raise
            return fd, size

        try:
            fd, size = await _run(open_file)
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise NotFound("Stored object not found") from exc
        except OSError as exc:
            raise _storage_error(exc, "read", key) from exc
        pending: Future[bytes] | None = None
        try:
            end = check_range(size, start, end_inclusive)
            position = start
            remaining = end - start + 1
            if remaining > 0:
                pending = _submit(os.pread, fd, min(chunk_size, remaining), position)
            while pending is not None:
                data = await _wait(pending)
                pending = None
                if not data:
                    break  # truncated underneath us (should not happen: renames only)
                position += len(data)
                remaining -= len(data)
                if remaining > 0:
                    # Prefetch the next chunk while the consumer sends this one.
                    pending = _submit(os.pread, fd, min(chunk_size, remaining), position)
                yield data
        except OSError as exc:
            raise _storage_error(exc, "read", key) from exc
        finally:
            _after(pending, lambda: os.close(fd))

    async def stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            st = await _run(os.stat, path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise _storage_error(exc, "stat", key) from exc
        if not stat_module.S_ISREG(st.st_mode):  # a "directory key" is not an object
            return None
        return _info(key, st)

    async def list(self, prefix: str = "") -> AsyncGenerator[ObjectInfo, None]:
        validate_prefix(prefix)
        directory_part, _, name_filter = prefix.rpartition("/")
        directory = self.root / directory_part if directory_part else self.root
        key_prefix = f"{directory_part}/" if directory_part else ""
        walker = _walk(directory, key_prefix, name_filter)
        if not directory_part:
            # Top level: only segment directories hold objects.
            walker = (info for info in walker if info.key.split("/", 1)[0] in SEGMENTS)
        try:
            while True:
                batch = await _run(_next_batch, walker)
                if not batch:
                    break
                for info in batch:
                    yield info
        except OSError as exc:
            raise _storage_error(exc, "list", prefix or "/") from exc

    # -- changing ---------------------------------------------------------
    async def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            await _run(path.unlink, True)
        except (IsADirectoryError, NotADirectoryError):
            return
        except OSError as exc:
            raise _storage_error(exc, "delete", key) from exc

    async def move(self, src: str, dst: str) -> None:
        source, target = self._path(src), self._path(dst)

        def rename() -> None:
            if not source.is_file():
                raise FileNotFoundError(errno.ENOENT, "no such object", str(source))
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
            if self.fsync:
                _fsync_dir(target.parent)

        try:
            await _run(rename)
        except FileNotFoundError as exc:
            raise NotFound("Stored object not found") from exc
        except OSError as exc:
            raise _storage_error(exc, "move", f"{src} -> {dst}") from exc

    # -- administration ---------------------------------------------------
    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "backend": self.backend_name,
            "root": str(self.root),
            "fsync": self.fsync,
            "segments": list(SEGMENTS),
        }
        try:
            vfs = os.statvfs(self.root)
        except OSError:
            return info
        info["total_bytes"] = vfs.f_frsize * vfs.f_blocks
        info["free_bytes"] = vfs.f_frsize * vfs.f_bavail
        return info

    async def reap_partial_writes(self, older_than: datetime) -> tuple[str, ...]:
        # A process killed mid-write leaves its temp file beside the final
        # path, in any segment; a live writer keeps touching its own.
        cutoff = older_than.timestamp()

        def sweep() -> list[str]:
            removed: list[str] = []
            for segment in SEGMENTS:
                for path in (self.root / segment).rglob(f"{TEMP_PREFIX}*"):
                    try:
                        if path.is_file() and path.stat().st_mtime < cutoff:
                            path.unlink()
                            removed.append(str(path.relative_to(self.root)))
                    except FileNotFoundError:  # finished or reaped meanwhile
                        continue
            return removed

        try:
            return tuple(await _run(sweep))
        except OSError as exc:
            raise _storage_error(exc, "clean", "partial writes") from exc

    async def usage_by_segment(self) -> dict[str, dict[str, int]]:
        def count(directory: Path) -> dict[str, int]:
            objects = size = 0
            stack = [directory]
            while stack:
                try:
                    with os.scandir(stack.pop()) as it:
                        for entry in it:
                            if entry.name.startswith(TEMP_PREFIX):
                                continue
                            if entry.is_dir(follow_symlinks=False):
                                stack.append(Path(entry.path))
                            elif entry.is_file(follow_symlinks=False):
                                try:
                                    size += entry.stat(follow_symlinks=False).st_size
                                except FileNotFoundError:
                                    continue
                                objects += 1
                except (FileNotFoundError, NotADirectoryError):
                    continue
            return {"objects": objects, "bytes": size}

        def count_all() -> dict[str, dict[str, int]]:
            return {segment: count(self.root / segment) for segment in SEGMENTS}

        try:
            return await _run(count_all)
        except OSError as exc:
            raise _storage_error(exc, "scan", str(self.root)) from exc

    async def health(self) -> None:
        probe = self.root / "tmp" / f"{TEMP_PREFIX}health-{secrets.token_hex(4)}"

        def check() -> None:
            probe.parent.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"ok")
            probe.unlink()

        try:
            await _run(check)
        except OSError as exc:
            raise _storage_error(exc, "write", "a health probe in") from exc
