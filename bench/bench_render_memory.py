"""Peak memory of the render's ffmpeg against the number of image scenes.

Renders storyboards of N image-background scenes (one small photo, the
attack of the render-memory issue) at each quality, each in a fresh
subprocess so ``RUSAGE_CHILDREN`` holds that render's ffmpeg alone, and
prints the peak RSS and a least-squares fit ``base + per_scene * N``
(what ``pipeline.stages.render_budget`` uses).

    python -m bench.bench_render_memory [--quality 720p] [--scenes 2,8,16]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = r"""
import json, resource, sys
from pathlib import Path
from PIL import Image
from pipeline.stages.render import render_video
from pipeline.stages.script import parse_script
from pipeline.stages.storyboard_planner import build_storyboard
quality, count, root = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
photo = root / "photo.png"
Image.new("RGB", (640, 480), "#557799").save(photo)
raw = "\n\n".join(f"[background: asset:p]\n[duration: 1s]\nScene {i}" for i in range(count))
sb = build_storyboard(parse_script(raw.encode()), quality=quality, assets={"p": "image/png"})
render_video(sb, root / "out", asset_paths={"p": photo})
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"quality": quality, "scenes": count, "peak_mb": peak_kib / 1024}))
"""


def measure(quality: str, count: int) -> float:
    with tempfile.TemporaryDirectory() as root:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, quality, str(count), root],
            capture_output=True,
            text=True,
            check=True,
        )
    return float(json.loads(done.stdout.strip().splitlines()[-1])["peak_mb"])


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum(
        (x - mean_x) ** 2 for x, _ in points
    )
    return mean_y - slope * mean_x, slope


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quality", default="720p,1080p")
    parser.add_argument("--scenes", default="2,8,16")
    args = parser.parse_args()
    for quality in args.quality.split(","):
        points = [(n, measure(quality, n)) for n in map(int, args.scenes.split(","))]
        for n, mb in points:
            print(f"{quality} {n:4d} image scenes: ffmpeg peak {mb:7.1f} MB")
        base, per_scene = fit(points)
        print(f"{quality} fit: {base:.1f} MB + {per_scene:.1f} MB per image scene")


if __name__ == "__main__":
    main()
