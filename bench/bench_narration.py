"""Speech synthesis: speed per engine, cache savings, narrate worker memory.

1. Seconds of speech per CPU-second, per engine (piper-tts in its child
   process, espeak-ng per sentence), the CPU counted in the engine's own
   processes and ours, on one core (the child runs one onnxruntime thread).
2. A cached re-run: the narrate stage over the sample script twice against
   one store; the second run reads every sentence back.  Savings =
   1 - second / first (wall time).
3. Peak RSS of a narrating process: ours plus the piper child, sampled
   every 20 ms while it narrates the 60-scene sample (the worker's figure is
   the sum: the child is the worker's).

    python bench/bench_narration.py [--sentences 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.stages.narrate import engines  # noqa: E402
from pipeline.stages.narrate.sentences import split_sentences  # noqa: E402
from pipeline.stages.narrate.stage import (  # noqa: E402
    NarrationOptions,
    Narrator,
    narrate_script,
)
from pipeline.stages.script import parse_script  # noqa: E402
from t2m.storage.local import LocalStorage  # noqa: E402

SAMPLES = REPO.parent / "shared" / "samples" / "scripts"


def _samples_dir() -> Path:
    for candidate in (SAMPLES, REPO / "tests" / "data" / "samples"):
        if candidate.exists():
            return candidate
    from tests.samples import SCRIPTS

    return Path(SCRIPTS)


def _cpu_of_tree() -> float:
    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += sum(child.cpu_times()[:2])
    # Children already reaped (espeak-ng runs) are counted by the kernel here.
    return total + sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2])


def engine_speed(voice: str, sentences: list[str]) -> dict[str, float]:
    engines.synthesize("Warm up.", voice)  # start the child, load the voice
    cpu0, wall0 = _cpu_of_tree(), time.perf_counter()
    speech = sum(engines.synthesize(s, voice).duration_s for s in sentences)
    cpu, wall = _cpu_of_tree() - cpu0, time.perf_counter() - wall0
    return {
        "speech_s": round(speech, 1),
        "cpu_s": round(cpu, 2),
        "wall_s": round(wall, 2),
        "speech_s_per_cpu_s": round(speech / cpu, 1),
    }


async def cached_rerun(script_bytes: bytes) -> dict[str, float]:
    script = parse_script(script_bytes)
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStorage(Path(tmp), fsync=False)
        runs = []
        for _ in range(2):
            started = time.perf_counter()
            await narrate_script(script, NarrationOptions(), Narrator(store))
            runs.append(time.perf_counter() - started)
    return {
        "first_s": round(runs[0], 2),
        "cached_s": round(runs[1], 3),
        "saved_pct": round(100 * (1 - runs[1] / runs[0]), 1),
    }


def peak_rss(script_path: Path) -> dict[str, float]:
    engines.stop_all()  # a fresh child: its peak is measured from its start
    engines.reopen_all()
    peaks = {"ours": 0, "children": 0, "total": 0}
    done = threading.Event()

    def sample() -> None:
        me = psutil.Process()
        while not done.is_set():
            ours = me.memory_info().rss
            kids = 0
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    kids += child.memory_info().rss
            peaks["ours"] = max(peaks["ours"], ours)
            peaks["children"] = max(peaks["children"], kids)
            peaks["total"] = max(peaks["total"], ours + kids)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    script = parse_script(script_path.read_bytes())
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(narrate_script(script, NarrationOptions(), Narrator(LocalStorage(Path(tmp)))))
    done.set()
    sampler.join()
    return {k: round(v / 2**20, 1) for k, v in peaks.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=20)
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, children too
    samples = _samples_dir()
    english = split_sentences((samples / "long_60_scenes.txt").read_text())[: args.sentences]
    french = [
        "Bonjour tout le monde, ceci est une phrase de test.",
        "La vidéo est prête et vous pouvez la regarder maintenant.",
    ] * (args.sentences // 2)
    report = {
        "piper (en-us-joe)": engine_speed("en-us-joe", english),
        "espeak-ng (espeak-fr)": engine_speed("espeak-fr", french),
        "cached_rerun (sample script)": asyncio.run(
            cached_rerun((samples / "sample_video_script.txt").read_bytes())
        ),
        "peak_rss_mib (60-scene sample)": peak_rss(samples / "long_60_scenes.txt"),
    }
    engines.stop_all()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
