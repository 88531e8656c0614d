"""Segmented rendering: speed-up with workers, overhead, re-render, peak memory.

A 720p video of ``--minutes`` (default 10) with 10 scenes a minute (every
fifth an image scene, crossfades between all) is rendered, in one run:

* single pass on one core (``render_video`` pinned with ``taskset``);
* segmented on one core: one worker takes every piece (the sound, then the
  segments) in turn, then the join;
* segmented on two workers pinned to a core each, taking the pieces in
  queue order as each becomes idle (a render worker takes one message at a
  time), then the join;
* after editing one scene: only the pieces whose content key changed
  (the sound is reused when its inputs did not change), then the join;
* peak RSS of ffmpeg for the heaviest segment of 200 image scenes.

Every figure is wall time, child start-up included alike; ratios are
measured within the same run (the machine may be shared).  The one-core
run's profile splits it into segments, sound, join and start-up.

    python -m bench.bench_segments [--minutes 10] [--cores 0,1] [--skip-peak]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHILD = r"""
import json, os, resource, sys, time
from pathlib import Path
from pipeline.stages.render import render_video
from pipeline.stages.segment_assemble import assemble_video
from pipeline.stages.segment_plan import segments
from pipeline.stages.segment_render import render_segment
from pipeline.stages.segment_sound import render_sound
from pipeline.stages.storyboard import Storyboard
mode, sb_path, root = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
sb = Storyboard.from_dict(json.loads(sb_path.read_text()))
assets = {"photo": root / "photo.jpg"}
parts = segments(sb, list(sb.segments))
started = time.monotonic()
timings = {}
if mode == "single":
    render_video(sb, root / "single", asset_paths=assets)
elif mode == "worker":
    # A render worker taking one message at a time from a FIFO queue: the
    # pieces in argv[4] ("sound" first, then segment indices), each claimed
    # by whichever worker is idle first.
    run, claims = sys.argv[5], root / "claims" / sys.argv[5]
    claims.mkdir(parents=True, exist_ok=True)
    for piece in json.loads(sys.argv[4]):
        try:
            os.close(os.open(claims / str(piece), os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            continue
        t0 = time.monotonic()
        if piece == "sound":
            render_sound(sb, root / "sound" / run, asset_paths=assets)
        else:
            out = root / "segments" / run / f"{piece:04d}"
            render_segment(sb, parts[piece], out, asset_paths=assets)
        timings[str(piece)] = time.monotonic() - t0
elif mode == "assemble":
    run = sys.argv[4]
    files = {
        r.quality: [root / "segments" / run / f"{p.index:04d}" / f"{r.quality}.mp4"
                    for p in parts]
        for r in sb.renditions
    }
    assemble_video(sb, files, root / "sound" / run / "sound.m4a", root / "joined" / run)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"seconds": time.monotonic() - started, "peak_mb": peak, "pieces": timings}))
"""


def _child(core: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["taskset", "-c", core, sys.executable, "-c", CHILD, *args],
        stdout=subprocess.PIPE,
        text=True,
    )


def _result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"child failed ({proc.returncode})")
    return dict(json.loads(out.strip().splitlines()[-1]))


def _storyboard(minutes: float, edited: int | None = None) -> object:
    from pipeline.stages.script import parse_script
    from pipeline.stages.segment_plan import with_plan
    from pipeline.stages.storyboard_planner import build_storyboard

    scenes = max(2, round(10 * minutes))
    lines = []
    for i in range(scenes):
        background = "[background: asset:photo]\n" if i % 5 == 2 else ""
        text = "An edited line." if i == edited else f"Scene {i}: a line of text for the card."
        lines.append(f"{background}[duration: 6s]\n{text}")
    raw = "\n\n".join(lines)
    sb = build_storyboard(
        parse_script(raw.encode()), quality="720p", assets={"photo": "image/jpeg"}
    )
    return with_plan(sb)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--cores", default="0,1", help="two CPU numbers")
    parser.add_argument("--skip-peak", action="store_true", help="skip the 200-photo peak RSS")
    args = parser.parse_args()
    core_a, core_b = args.cores.split(",")
    from PIL import Image, ImageDraw

    from pipeline.stages.segment_plan import segments
    from pipeline.stages.segment_render import segment_key
    from pipeline.stages.segment_sound import sound_key
    from pipeline.stages.storyboard import Storyboard

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        img = Image.new("RGB", (1600, 1000), "#336699")
        draw = ImageDraw.Draw(img)
        for x in range(0, 1600, 60):
            draw.line((x, 0, x, 1000), fill="yellow", width=6)
        img.save(root / "photo.jpg", quality=90)
        sb = _storyboard(args.minutes)
        assert isinstance(sb, Storyboard)
        (root / "sb.json").write_text(json.dumps(sb.to_dict()))
        parts = segments(sb, list(sb.segments))
        print(f"{sb.duration_s:.0f} s, {len(sb.scenes)} scenes, {len(parts)} segments")
        sbp = str(root / "sb.json")

        def timed(*procs: subprocess.Popen[str]) -> tuple[float, list[dict[str, Any]]]:
            started = time.monotonic()
            results = [_result(p) for p in procs]
            return time.monotonic() - started, results

        # Every figure is wall time from starting the child(ren) to the end,
        # process start-up included alike.
        single, _ = timed(_child(core_a, "single", sbp, tmp))
        pieces = json.dumps(["sound", *[p.index for p in parts]])
        one_s, (one,) = timed(_child(core_a, "worker", sbp, tmp, pieces, "one"))
        join, _ = timed(_child(core_a, "assemble", sbp, tmp, "one"))
        seg_one = one_s + join
        two_s, _ = timed(
            *(_child(core, "worker", sbp, tmp, pieces, "two") for core in (core_a, core_b))
        )
        join_two, _ = timed(_child(core_a, "assemble", sbp, tmp, "two"))
        seg_two = two_s + join_two

        edited = _storyboard(args.minutes, edited=len(sb.scenes) // 2)
        assert isinstance(edited, Storyboard)
        (root / "edited.json").write_text(json.dumps(edited.to_dict()))
        sums = {"photo": "x"}
        old = {segment_key(sb, p, sums) for p in parts}
        new_parts = segments(edited, list(edited.segments))
        changed: list[int | str] = [
            p.index for p in new_parts if segment_key(edited, p, sums) not in old
        ]
        if sound_key(edited, sums) != sound_key(sb, sums):
            changed.insert(0, "sound")
        else:  # reused, as a render worker finds it stored
            (root / "sound" / "one").rename(root / "sound" / "edit")
        # Unchanged segments are reused: move "one"'s files under the edit's run.
        for p in new_parts:
            if p.index not in changed:
                dst = root / "segments" / "edit" / f"{p.index:04d}"
                dst.parent.mkdir(parents=True, exist_ok=True)
                (root / "segments" / "one" / f"{p.index:04d}").rename(dst)
        ep = str(root / "edited.json")
        redo, _ = timed(_child(core_a, "worker", ep, tmp, json.dumps(changed), "edit"))
        rejoin, _ = timed(_child(core_a, "assemble", ep, tmp, "edit"))
        rerender = redo + rejoin

    timings = one["pieces"]
    segment_times = [t for k, t in timings.items() if k != "sound"]
    figures = {
        "single_pass_1_core_s": round(single, 1),
        "segmented_1_core_s": round(seg_one, 1),
        "segmented_2_workers_s": round(seg_two, 1),
        "speed_up_2_workers": round(seg_one / seg_two, 2),
        "segmented_overhead_pct": round(100 * (seg_one / single - 1), 1),
        "profile_1_core": {
            "segments_s": round(sum(segment_times), 1),
            "segment_mean_s": round(sum(segment_times) / len(segment_times), 2),
            "segment_max_s": round(max(segment_times), 2),
            "sound_s": round(timings["sound"], 2),
            "join_s": round(join, 2),
            "worker_start_and_idle_s": round(one_s - sum(timings.values()), 2),
        },
        "edit_one_scene_pieces": changed,
        "rerender_s": round(rerender, 1),
        "rerender_pct_of_full": round(100 * rerender / seg_one, 1),
    }
    if not args.skip_peak:
        figures["peak_rss_mb_200_images_720p"] = round(_peak_200(), 0)
    print(json.dumps(figures, indent=2))


def _peak_200() -> float:
    from tests.hardening.test_render_budget import RENDER_CHILD

    with tempfile.TemporaryDirectory() as root:
        done = subprocess.run(
            [sys.executable, "-c", RENDER_CHILD, "200", "720p", root],
            capture_output=True,
            text=True,
            check=True,
        )
    return float(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
