"""Benchmark the render stage (no assertions: it prints figures).

Default run, all at 720p30 unless said otherwise:

1. ours: a 60 s, 10-scene video with crossfades and one image asset;
2. moviepy 2.x: the same storyboard as a straightforward CompositeVideoClip
   (ImageClip cards, CrossFadeIn, a zooming ImageClip for the photo), same
   size/fps/codec/preset, cards drawn by the same code;
3. renditions: a 1080p ladder (1080p, 720p, 480p) rendered as one ffmpeg run
   with split outputs vs one run per rendition.

``--minutes 10`` renders a 10-minute video with ours only and reports its
peak memory (target: under 400 MiB for the whole process tree).

Every render runs in a fresh child process; a sampler adds up the RSS of
that process and its children (ffmpeg) every 50 ms, so the peak includes
the encoder.  Prints a table and one JSON line.

    .venv/bin/python bench/bench_render.py
    .venv/bin/python bench/bench_render.py --minutes 10
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

WORDS = [
    *("render", "scene", "camera", "light", "story", "motion", "colour", "frame", "signal"),
    *("voice", "music", "title", "queue", "pixel", "stream", "audience", "moment", "worker"),
    *("text", "sound", "video"),
]


def make_script(scenes: int, image_scene: int | None) -> bytes:
    parts = []
    for i in range(scenes):
        words = " ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(8 + (i * 5) % 14))
        lines = [f"# Scene {i + 1}", words.capitalize() + "."]
        if i == image_scene:
            lines.insert(1, "[background: asset:photo]")
        parts.append("\n".join(lines))
    return "\n\n".join(parts).encode()


def make_photo(path: Path) -> None:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (1920, 1280), "#204060")
    draw = ImageDraw.Draw(img)
    for i in range(0, 1920, 80):
        draw.ellipse((i, (i * 7) % 1100, i + 160, (i * 7) % 1100 + 160), fill=(i % 255, 120, 200))
    img.save(path, quality=90)


def build(seconds: float, scenes: int, quality: str, renditions: list[str] | None) -> Any:
    from pipeline.stages.script import parse_script
    from pipeline.stages.storyboard_planner import build_storyboard

    script = parse_script(make_script(scenes, image_scene=min(3, scenes - 1)))
    return build_storyboard(
        script,
        quality=quality,
        target_duration=seconds,
        assets={"photo": "image/jpeg"},
        renditions=renditions,
    )


def run_ours(job: dict[str, Any]) -> dict[str, Any]:
    from pipeline.stages.render import render_video

    sb = build(job["seconds"], job["scenes"], job["quality"], job["renditions"])
    started = time.perf_counter()
    result = render_video(
        sb,
        Path(job["out"]),
        asset_paths={"photo": Path(job["photo"])},
        strategy=job.get("strategy", "split"),
    )
    wall = time.perf_counter() - started
    size = sum(p.stat().st_size for p in result.renditions.values())
    return {"wall_s": wall, "video_s": sb.duration_s, "bytes": size}


def run_moviepy(job: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    from moviepy import CompositeVideoClip, ImageClip, vfx
    from PIL import Image, ImageOps

    from pipeline.stages.text_cards import CardColors, CardText, draw_card, gradient

    sb = build(job["seconds"], job["scenes"], job["quality"], [job["quality"]])
    started = time.perf_counter()
    fps = sb.fps
    clips = []
    for scene in sb.scenes:
        card = CardText(scene.lines, scene.title_lines, scene.cjk_locale)
        start = scene.start_frame / fps
        duration = scene.frames / fps
        if scene.background.kind == "gradient":
            bg = gradient(sb.width, sb.height, scene.background.colors, scene.background.angle_deg)
            image = draw_card(card, sb.card, background=bg).convert("RGB")
            clip = ImageClip(np.asarray(image)).with_duration(duration)
        else:
            with Image.open(job["photo"]) as photo:
                fitted = ImageOps.fit(photo.convert("RGB"), (sb.width, sb.height))
            zoom = vfx.Resize(lambda t, d=duration: 1 + 0.15 * t / d)
            moving = ImageClip(np.asarray(fitted)).with_duration(duration).with_effects([zoom])
            overlay = draw_card(card, sb.card, colors=CardColors(panel_alpha=110))
            text = ImageClip(np.asarray(overlay)).with_duration(duration)
            clip = CompositeVideoClip(
                [moving.with_position("center"), text], size=(sb.width, sb.height)
            ).with_duration(duration)
        if scene.transition_in_frames:
            clip = clip.with_effects([vfx.CrossFadeIn(scene.transition_in_frames / fps)])
        clips.append(clip.with_start(start))
    video = CompositeVideoClip(clips, size=(sb.width, sb.height)).with_duration(sb.duration_s)
    out = Path(job["out"]) / "moviepy.mp4"
    out.parent.mkdir(parents=True, exist_ok=True)
    video.write_videofile(
        str(out), fps=fps, codec="libx264", preset="veryfast", audio=False, logger=None
    )
    wall = time.perf_counter() - started
    return {"wall_s": wall, "video_s": sb.duration_s, "bytes": out.stat().st_size}


def _child(kind: str, job: dict[str, Any], queue: Any) -> None:
    try:
        queue.put(("ok", run_ours(job) if kind == "ours" else run_moviepy(job)))
    except BaseException as exc:  # report, the parent prints it
        queue.put(("error", repr(exc)))


def measure(kind: str, job: dict[str, Any]) -> dict[str, Any]:
    """Run one render in a fresh process, sampling the RSS of its process tree."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(kind, job, queue))
    proc.start()
    peak = 0
    peak_python = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_python
        try:
            root = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:
            return
        while not stop.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree))
                peak_python = max(peak_python, root.memory_info().rss)
            except psutil.Error:
                pass
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    status, payload = queue.get()
    proc.join()
    stop.set()
    sampler.join()
    if status != "ok":
        raise SystemExit(f"{kind} render failed: {payload}")
    payload["peak_rss_mib"] = peak / 2**20
    payload["peak_python_mib"] = peak_python / 2**20
    payload["realtime_x"] = payload["video_s"] / payload["wall_s"]
    print(f"  {kind}: {json.dumps({k: round(v, 2) for k, v in payload.items()})}", flush=True)
    return payload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--scenes", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=None, help="long-video memory run")
    parser.add_argument("--ladder-seconds", type=float, default=30.0)
    parser.add_argument("--skip-moviepy", action="store_true")
    parser.add_argument("--skip-ladder", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="t2m-bench-") as tmp:
        root = Path(tmp)
        photo = root / "photo.jpg"
        make_photo(photo)
        base = {"photo": str(photo), "quality": "720p", "renditions": ["720p"]}
        rows: list[tuple[str, dict[str, Any]]] = []
        if args.minutes:
            seconds = args.minutes * 60
            job = {**base, "seconds": seconds, "scenes": max(2, round(seconds / 6))}
            rows.append(
                (
                    f"ours {args.minutes:g} min 720p",
                    measure("ours", {**job, "out": str(root / "long")}),
                )
            )
        else:
            job = {**base, "seconds": args.seconds, "scenes": args.scenes}
            rows.append(("ours 720p", measure("ours", {**job, "out": str(root / "ours")})))
            if not args.skip_moviepy:
                rows.append(("moviepy 720p", measure("moviepy", {**job, "out": str(root / "mp")})))
            if not args.skip_ladder:
                ladder = {
                    **base,
                    "quality": "1080p",
                    "renditions": ["1080p", "720p", "480p"],
                    "seconds": args.ladder_seconds,
                    "scenes": max(2, round(args.scenes * args.ladder_seconds / args.seconds)),
                }
                for strategy in ("split", "separate"):
                    out = str(root / f"ladder-{strategy}")
                    rows.append(
                        (
                            f"ours 1080p ladder, {strategy}",
                            measure("ours", {**ladder, "strategy": strategy, "out": out}),
                        )
                    )

    print(f"{'render':34} {'video s':>8} {'wall s':>8} {'x realtime':>10} {'peak MiB':>9}")
    for name, r in rows:
        print(
            f"{name:34} {r['video_s']:8.1f} {r['wall_s']:8.2f} {r['realtime_x']:10.2f}"
            f" {r['peak_rss_mib']:9.0f}"
        )
    figures: dict[str, Any] = {name: {k: round(v, 3) for k, v in r.items()} for name, r in rows}
    names = dict(rows)
    if "ours 720p" in names and "moviepy 720p" in names:
        figures["speedup_vs_moviepy"] = round(
            names["moviepy 720p"]["wall_s"] / names["ours 720p"]["wall_s"], 2
        )
        print(f"ours is {figures['speedup_vs_moviepy']}x faster than moviepy")
    split = names.get("ours 1080p ladder, split")
    separate = names.get("ours 1080p ladder, separate")
    if split and separate:
        figures["ladder_split_vs_separate"] = round(separate["wall_s"] / split["wall_s"], 2)
        ratio = figures["ladder_split_vs_separate"]
        print(f"ladder: one split run is {ratio}x as fast as one run per rendition")
    print(json.dumps({"bench": "render", "cpus": psutil.cpu_count(), **figures}))


if __name__ == "__main__":
    main()
