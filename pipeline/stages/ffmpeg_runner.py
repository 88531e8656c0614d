"""Run ffmpeg with progress reporting, cancellation and a time limit.

Dramatiq's time limit cannot interrupt a thread blocked on a child process,
so this loop owns the child: it polls ffmpeg's ``-progress`` output and the
caller's ``should_cancel`` at least every ``poll_s`` seconds and kills the
child (SIGKILL: nothing of a cancelled output is worth finalising) when asked
to stop.  Progress is ffmpeg's own ``out_time`` against the expected
duration, reported through ``on_progress`` in the caller's thread, never
going backwards.

Uploaded media is read with :data:`UPLOAD_PROTOCOLS` and
:data:`UPLOAD_DEMUXERS` only (:func:`upload_input_options`,
:func:`upload_movie_options`): a file can name other files or URLs (an HLS
or ffconcat playlist, a reference inside a container), and ffmpeg picks the
demuxer from the content, so without both lists an upload could make a
worker read another local file or open a URL.  Each run may also get an
address-space limit (``RLIMIT_AS``, set in the child before exec) so one
hostile or oversized input cannot take the host's memory, and a wall-time
limit.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg

from pipeline.stages.render_errors import RenderCancelled, RenderError, RenderTimeout

ProgressCallback = Callable[[float], None]
CancelCheck = Callable[[], bool]

# Failures that retrying cannot fix: the input or the graph is wrong.
_PERMANENT_MARKERS = (
    "invalid data found when processing input",
    "moov atom not found",
    "does not contain any stream",
    "matches no streams",
    "no such filter",
    "error initializing filter",
    "error parsing",
    "invalid argument",
    "unknown encoder",
    "decoder not found",
    "no decoder",
    "could not find codec parameters",
    "unsupported codec",
    "no such file or directory",
    "permission denied",
    "unrecognized option",
    "option not found",
    "not on whitelist",
)
# Failures of the machine rather than the job.
_TRANSIENT_MARKERS = (
    "no space left on device",
    "cannot allocate memory",
    "resource temporarily unavailable",
    "too many open files",
    "input/output error",
    "connection",
)


# Protocols an uploaded input may be opened with: local files only.
UPLOAD_PROTOCOLS = "file,pipe"
# Demuxers of the containers T2M accepts as uploads (see media_types): never
# playlist demuxers (hls, concat), images sequences or devices.
UPLOAD_DEMUXERS = (
    "mov,mp4,m4a,3gp,3g2,mj2",
    "matroska,webm",
    "avi",
    "mpeg",
    "mpegts",
    "flv",
    "asf",
    "mp3",
    "wav",
    "ogg",
    "flac",
    "aac",
    "aiff",
    "amr",
    "amrnb",
    "amrwb",
)
UPLOAD_DEMUXER_NAMES = frozenset(",".join(UPLOAD_DEMUXERS).split(","))


def upload_input_options() -> list[str]:
    """ffmpeg command-line options to put before ``-i <uploaded file>``."""
    return [
        "-protocol_whitelist",
        UPLOAD_PROTOCOLS,
        "-format_whitelist",
        ",".join(sorted(UPLOAD_DEMUXER_NAMES)),
    ]


def upload_av_options() -> dict[str, str]:
    """The same restrictions as PyAV ``av.open(..., options=...)``."""
    return {
        "protocol_whitelist": UPLOAD_PROTOCOLS,
        "format_whitelist": ",".join(sorted(UPLOAD_DEMUXER_NAMES)),
    }


def upload_movie_options() -> str:
    """``format_opts`` of a ``movie=`` filter source reading an uploaded file
    (quoted: the lists hold commas, which a filter graph would split on)."""
    names = ",".join(sorted(UPLOAD_DEMUXER_NAMES))
    return f"format_opts='format_whitelist={names}\\:protocol_whitelist=file'"


# How allocations past RLIMIT_AS show (thread stacks are address space too).
_OUT_OF_MEMORY_MARKERS = ("cannot allocate memory", "pthread_create() failed")


@dataclass(frozen=True)
class FfmpegRun:
    elapsed_s: float
    stderr_tail: str


def ffmpeg_executable() -> str:
    """The static ffmpeg shipped by imageio-ffmpeg (libx264, aac, xfade, drawtext)."""
    return str(imageio_ffmpeg.get_ffmpeg_exe())


class MonotonicProgress:
    """Wraps a callback: clamps to [0, 1], never reports a smaller value,
    and skips steps under ``min_step`` so callers are not flooded."""

    def __init__(self, callback: ProgressCallback | None, *, min_step: float = 0.005) -> None:
        self._callback = callback
        self._min_step = min_step
        self.value = 0.0
        self._reported = -1.0

    def __call__(self, fraction: float) -> None:
        fraction = min(1.0, max(0.0, fraction))
        if fraction <= self.value and self._reported >= 0:
            return
        self.value = max(self.value, fraction)
        if self._callback is not None and (
            self.value - self._reported >= self._min_step or self.value >= 1.0
        ):
            self._reported = self.value
            self._callback(self.value)


_PR_SET_PDEATHSIG = 1


def _child_setup(memory_limit_bytes: int | None) -> Callable[[], None] | None:
    """The ``preexec_fn`` of an ffmpeg child: death with the parent, memory cap."""
    die = _die_with_parent()
    if not memory_limit_bytes:
        return die
    limit = (int(memory_limit_bytes), int(memory_limit_bytes))
    address_space = resource.RLIMIT_AS
    setrlimit = resource.setrlimit

    # Same constraints as _die_with_parent's: only prebuilt objects and one
    # system call.  An allocation past the cap fails inside ffmpeg ("Cannot
    # allocate memory"), which it reports and exits on.
    def setup() -> None:
        if die is not None:
            die()
        setrlimit(address_space, limit)

    return setup


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel SIGKILL ffmpeg when its parent dies.

    ffmpeg runs in a session of its own (below), so a worker killed with
    SIGKILL - its process group included - would leave it running, burning
    CPU and writing into scratch space the redelivered attempt reuses.  Linux
    only; elsewhere nothing is armed.  The death signal follows the thread
    that forked, which here blocks on this very child until it exits.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    # Runs in the child between fork and exec, while the worker has other
    # threads: it imports nothing and takes no lock another thread could
    # hold at fork time (prctl is resolved above; getppid and _exit are
    # plain system calls; the small ints it makes come from the allocator
    # the forking thread's GIL protects, and glibc resets malloc on fork).
    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arm


def run_ffmpeg(
    args: Sequence[str],
    *,
    cwd: Path,
    total_duration_s: float,
    log_path: Path,
    on_progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    poll_s: float = 0.25,
    timeout_s: float | None = None,
    executable: str | None = None,
    memory_limit_bytes: int | None = None,
) -> FfmpegRun:
    """Run ``ffmpeg <args>`` in ``cwd``; raises RenderError/RenderCancelled/RenderTimeout.

    ``on_progress`` receives the fraction of ``total_duration_s`` written so
    far (0..1, monotonic); 1.0 is left to the caller, who knows when the
    outputs are really done.  ``memory_limit_bytes`` caps the child's
    address space (``RLIMIT_AS``); None or 0 leaves it unbounded.
    """
    argv = [
        executable or ffmpeg_executable(),
        "-progress", "pipe:1", "-stats_period", "0.5", "-nostats",
        *args,
    ]  # fmt: skip
    started = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            # Own process group: a signal meant for the worker (Ctrl-C,
            # honcho restart) does not hit ffmpeg mid-write, and we kill it
            # ourselves, by pid.
            start_new_session=True,
            preexec_fn=_child_setup(memory_limit_bytes),
        )
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    buffer = b""
    try:
        while True:
            if should_cancel is not None and should_cancel():
                _kill(proc)
                raise RenderCancelled()
            if timeout_s is not None and time.monotonic() - started > timeout_s:
                _kill(proc)
                raise RenderTimeout(f"ffmpeg ran longer than {timeout_s:g} s and was stopped")
            events = selector.select(timeout=poll_s)
            if events:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:  # EOF: ffmpeg is exiting
                    break
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    _handle_progress_line(line, total_duration_s, on_progress)
            elif proc.poll() is not None:
                break
        # stdout closed; the exit follows promptly, but keep honouring cancel.
        while proc.poll() is None:
            if should_cancel is not None and should_cancel():
                _kill(proc)
                raise RenderCancelled()
            time.sleep(min(poll_s, 0.05))
    finally:
        selector.close()
        if proc.poll() is None:  # an exception (cancel, a failing callback) got us here
            _kill(proc)
        proc.stdout.close()
    elapsed = time.monotonic() - started
    tail = _tail(log_path)
    if proc.returncode != 0:
        if memory_limit_bytes and any(m in tail.lower() for m in _OUT_OF_MEMORY_MARKERS):
            # Past our own cap the same plan fails again: not the machine's fault.
            raise RenderError(
                f"ffmpeg needed more than its memory limit of {memory_limit_bytes // 2**20} MiB"
                " (FFMPEG_MEMORY_LIMIT_MB); not retried",
                permanent=True,
                details={"returncode": proc.returncode, "stderr": tail[-2000:]},
            )
        raise RenderError(
            _message(proc.returncode, tail),
            permanent=is_permanent_failure(proc.returncode, tail),
            details={"returncode": proc.returncode, "stderr": tail[-2000:]},
        )
    return FfmpegRun(elapsed_s=elapsed, stderr_tail=tail)


def _handle_progress_line(
    line: bytes, total_duration_s: float, on_progress: ProgressCallback | None
) -> None:
    if on_progress is None or not line.startswith(b"out_time_us=") or total_duration_s <= 0:
        return
    value = line.split(b"=", 1)[1].strip()
    if not value.isdigit():  # "N/A" before the first frame
        return
    on_progress(min(1.0, int(value) / 1_000_000 / total_duration_s))


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def _tail(path: Path, size: int = 8192) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - size))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def is_permanent_failure(returncode: int, stderr: str) -> bool:
    """Classify an ffmpeg failure.  Unknown causes count as transient: a
    retry is cheap next to failing a job for a machine's hiccup."""
    if returncode == -signal.SIGKILL:
        # Nothing here SIGKILLs ffmpeg but our own cancel/timeout (raised
        # before this); the kernel's OOM killer does.  The same plan would
        # be killed again: retrying it only repeats the memory spike.
        return True
    if returncode < 0:  # another signal (a shutdown): not the job's fault
        return False
    text = stderr.lower()
    if any(marker in text for marker in _TRANSIENT_MARKERS):
        return False
    return any(marker in text for marker in _PERMANENT_MARKERS)


def _message(returncode: int, stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else "no error output"
    if returncode == -signal.SIGKILL:
        return (
            "ffmpeg was killed (SIGKILL, most likely out of memory): this storyboard"
            f" needs more memory than the worker has; not retried: {last}"
        )
    if returncode < 0:
        return f"ffmpeg was killed by signal {-returncode}: {last}"
    return f"ffmpeg failed with exit code {returncode}: {last}"
