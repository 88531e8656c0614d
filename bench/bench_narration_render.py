"""Benchmark what narration costs the render (no assertions: it prints figures).

In one run, on the same 60 s 720p storyboard (10 scenes, crossfades, one
photo, the default 720p+480p renditions):

1. silent: as the render does today (a silent AAC track);
2. narrated: the same storyboard with one spoken sentence every ~3 s
   (espeak-ng clips, as the narrate stage stores them), background music
   ducked under the voice, loudness measured and normalised;

each rendered ``--repeat`` times alternately; the ratio of the medians is
what narration adds (target: ≤ 1.5).  Also times laying ``--clips`` clips on
one narration track (the premix, see pipeline/stages/narration_mix.py).

    .venv/bin/python bench/bench_narration_render.py
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_render import build, make_photo  # noqa: E402
from pipeline.stages.ffmpeg_runner import ffmpeg_executable  # noqa: E402
from pipeline.stages.narration_mix import mix_narration  # noqa: E402
from pipeline.stages.narration_plan import SpeechClip  # noqa: E402
from pipeline.stages.render import render_video  # noqa: E402
from pipeline.stages.storyboard import MusicPlan  # noqa: E402

SENTENCES = [
    "Plain text becomes a narrated video.",
    "Every scene is spoken sentence by sentence.",
    "Music steps back while the voice speaks.",
    "Captions follow the voice word by word.",
    "The mix is normalised to sixteen LUFS.",
]


def speak(text: str, directory: Path) -> tuple[Path, float]:
    import wave

    path = directory / f"s{abs(hash(text))}.wav"
    if not path.exists():
        subprocess.run(["espeak-ng", "-w", str(path), text], check=True)
    with wave.open(str(path)) as w:
        return path, w.getnframes() / w.getframerate()


def narration(
    seconds: float, every_s: float, directory: Path
) -> tuple[tuple[SpeechClip, ...], dict[str, Path]]:
    clips: list[SpeechClip] = []
    paths: dict[str, Path] = {}
    at, n = 0.5, 0
    while True:
        text = SENTENCES[n % len(SENTENCES)]
        path, length = speak(text, directory)
        if at + length > seconds - 0.5:
            break
        key = f"tts/bench/{n:05d}.wav"  # distinct keys: every clip is decoded, as in a real job
        paths[key] = path
        clips.append(SpeechClip(n, text, key, at, length))
        at += max(every_s, length + 0.3)
        n += 1
    return tuple(clips), paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--scenes", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clips", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="t2m-bench-") as tmp:
        root = Path(tmp)
        photo = root / "photo.jpg"
        make_photo(photo)
        music = root / "music.wav"
        subprocess.run(
            [
                *(ffmpeg_executable(), "-v", "error", "-y", "-f", "lavfi"),
                *("-i", "sine=frequency=220:duration=30", "-af", "volume=0.3", str(music)),
            ],
            check=True,
        )
        silent = build(args.seconds, args.scenes, "720p", None)
        clips, paths = narration(silent.duration_s, 3.0, root)
        narrated = dataclasses.replace(silent, narration=clips, music=MusicPlan(asset_id="music"))
        assets = {"photo": photo, "music": music}
        times: dict[str, list[float]] = {"silent": [], "narrated": []}
        for i in range(args.repeat):
            for name, sb in (("silent", silent), ("narrated", narrated)):
                started = time.perf_counter()
                render_video(sb, root / f"{name}{i}", asset_paths=assets, narration_paths=paths)
                times[name].append(time.perf_counter() - started)
                print(f"  {name} #{i + 1}: {times[name][-1]:.2f} s", flush=True)
        # The premix alone, for --clips clips over their length.
        many, many_paths = narration(args.clips * 3.0, 3.0, root)
        started = time.perf_counter()
        mix_narration(many, many_paths, root / "many.wav", args.clips * 3.0 + 1)
        premix = time.perf_counter() - started
    silent_s, narrated_s = (statistics.median(times[k]) for k in ("silent", "narrated"))
    figures = {
        "video_s": silent.duration_s,
        "narration_clips": len(clips),
        "silent_median_s": round(silent_s, 2),
        "narrated_median_s": round(narrated_s, 2),
        "narrated_over_silent": round(narrated_s / silent_s, 3),
        "premix_clips": len(many),
        "premix_s": round(premix, 2),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
