"""piper-tts, driven as a long-lived child process (see piper_child).

The child is started on the first sentence that needs it (an English-free
job never loads the neural voice) and kept for the next ones; ``close``
kills it, which is also how a cancelled job stops synthesis at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any

from pipeline.stages.narrate import Synthesis, SynthesisCancelled, SynthesisError
from pipeline.stages.narrate.words import place_words, text_words

START_TIMEOUT_S = 120.0
CHILD = (sys.executable, "-m", "pipeline.stages.narrate.piper_child")


def _voice_files(package: str) -> tuple[Path, Path]:
    # The voice packages expose model_path()/config_path(); importing them
    # loads no engine code (they are data packages).
    module = __import__(package)
    return Path(module.model_path()), Path(module.config_path())


MMAP_THRESHOLD_BYTES = 64 * 1024


class PiperEngine:
    name = "piper"

    def __init__(self, voice_package: str) -> None:
        self.voice_package = voice_package
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self._engine_version = ""
        self._killed = False

    def version(self) -> str:
        try:
            engine = version("piper-tts")
            voice = version(self.voice_package.replace("_", "-"))
        except PackageNotFoundError as exc:
            raise SynthesisError(f"piper voice not installed: {exc}") from None
        return f"piper-tts {engine}; {self.voice_package} {voice}"

    def _patched_model(self, model: Path, env: dict[str, str]) -> Path:
        """The voice with alignment output, made once per machine and voice version."""
        stat = model.stat()
        cache = Path(tempfile.gettempdir()) / "t2m-piper"
        cache.mkdir(parents=True, exist_ok=True)
        patched = cache / f"{model.stem}-{stat.st_size}-{int(stat.st_mtime)}.aligned.onnx"
        if not patched.exists():
            done = subprocess.run(
                [*CHILD, "--patch", str(model), str(patched)],
                env=env,
                capture_output=True,
                text=True,
                timeout=START_TIMEOUT_S,
                check=False,
            )
            if done.returncode != 0:
                raise SynthesisError(f"could not prepare the piper voice: {done.stderr[-300:]}")
        return patched

    def _start(self) -> subprocess.Popen[str]:
        model, config = _voice_files(self.voice_package)
        # One malloc arena: onnxruntime's per-thread arenas would hold freed
        # tensors; see also piper_child._trim.  A fixed mmap threshold: glibc
        # otherwise raises it to the largest block freed, so the decoder's
        # multi-MB activations come from the heap, where freed ones fragment
        # and stay resident; mapped, each goes back to the system when freed.
        env = dict(
            os.environ,
            OMP_NUM_THREADS="1",
            MALLOC_ARENA_MAX="1",
            MALLOC_MMAP_THRESHOLD_=str(MMAP_THRESHOLD_BYTES),
        )
        model = self._patched_model(model, env)
        proc = subprocess.Popen(
            [*CHILD, str(model), str(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        # Known before it is ready, so a cancel while the voice loads kills it.
        self._proc = proc
        if self._killed:
            proc.kill()
        ready = self._read(proc)
        if not ready.get("ready"):
            proc.kill()
            raise SynthesisError("piper child did not start")
        self._engine_version = str(ready.get("version", ""))
        return proc

    def _read(self, proc: subprocess.Popen[str]) -> dict[str, Any]:
        stdout: IO[str] | None = proc.stdout
        assert stdout is not None
        line = stdout.readline()
        if not line:
            if self._killed:
                raise SynthesisCancelled("synthesis stopped")
            raise SynthesisError(f"piper child exited (code {proc.poll()})")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def synthesize(self, text: str, voice: str, rate: float) -> Synthesis:
        with self._lock:
            if self._killed:
                raise SynthesisCancelled("synthesis stopped")
            if self._proc is None or self._proc.poll() is not None:
                if self._proc is not None:
                    _close_pipes(self._proc)  # the killed child's
                self._proc = self._start()
            proc = self._proc
            with tempfile.TemporaryDirectory(prefix="t2m-piper-") as tmp:
                out = Path(tmp) / "clip.wav"
                assert proc.stdin is not None
                try:
                    proc.stdin.write(
                        json.dumps({"text": text, "rate": rate, "out": str(out)}) + "\n"
                    )
                    proc.stdin.flush()
                except (BrokenPipeError, OSError):
                    if self._killed:
                        raise SynthesisCancelled("synthesis stopped") from None
                    raise SynthesisError("piper child is gone") from None
                reply = self._read(proc)
                if self._killed:
                    raise SynthesisCancelled("synthesis stopped")
                if not reply.get("ok"):
                    raise SynthesisError(
                        f"piper could not speak {text[:60]!r}: {reply.get('error')}"
                    )
                wav = out.read_bytes()
        spans = [(float(a), float(b)) for a, b in reply["spans"]]
        return Synthesis(
            wav=wav,
            sample_rate=int(reply["sample_rate"]),
            duration_s=float(reply["duration_s"]),
            words=place_words(text_words(text), spans),
        )

    def close(self) -> None:
        """Kill the child now (callable from any thread: cancel uses it)."""
        self._killed = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        # A sentence being read on another thread still owns the pipes (the
        # next synthesize closes them); otherwise they go with the child.
        if proc is not None and proc.poll() is not None and self._lock.acquire(blocking=False):
            try:
                _close_pipes(proc)
            finally:
                self._lock.release()

    def reopen(self) -> None:
        """Allow a new child after ``close`` (the next job).

        A child still alive (the last job ended normally) is kept for the
        next sentence: dropping the reference would orphan it, a whole
        neural voice held until the worker exits, one more per job.  A
        killed one is replaced by ``synthesize``, which checks ``poll()``.
        No lock: a concurrent job may hold it for a whole sentence, and this
        runs on the worker's event loop."""
        self._killed = False


def _close_pipes(proc: subprocess.Popen[str]) -> None:
    """Close a finished child's pipes: the process is gone, its files are not."""
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()
