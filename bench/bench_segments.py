"""Segmented rendering: speed-up with workers, overhead, re-render, peak memory.

A 720p video of ``--minutes`` (default 10) with 10 scenes a minute (every
fifth an image scene, crossfades between all) is rendered, in one run:

* single pass on one core (``render_video`` pinned with ``taskset``);
* segmented on one core: every segment in turn, then the join;
* segmented on two workers pinned to a core each (segments dealt out in
  turn, as two idle workers take them from the queue), then the join;
* after editing one scene: only the segments whose content key changed,
  then the join;
* peak RSS of ffmpeg for the heaviest segment of 200 image scenes.

Ratios are measured within the same run (the machine may be shared).

    python -m bench.bench_segments [--minutes 10] [--cores 0,1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from pipeline.stages.render import render_video
from pipeline.stages.segment_assemble import assemble_video
from pipeline.stages.segment_plan import segments
from pipeline.stages.segment_render import render_segment
from pipeline.stages.storyboard import Storyboard
mode, sb_path, root = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
sb = Storyboard.from_dict(json.loads(sb_path.read_text()))
assets = {"photo": root / "photo.jpg"}
parts = segments(sb, list(sb.segments))
started = time.monotonic()
if mode == "single":
    render_video(sb, root / "single", asset_paths=assets)
elif mode == "segments":
    for index in json.loads(sys.argv[4]):
        out = root / "segments" / sys.argv[5] / f"{index:04d}"
        render_segment(sb, parts[index], out, asset_paths=assets)
elif mode == "assemble":
    files = {
        r.quality: [root / "segments" / sys.argv[4] / f"{p.index:04d}" / f"{r.quality}.mp4"
                    for p in parts]
        for r in sb.renditions
    }
    assemble_video(sb, files, root / "joined", asset_paths=assets)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"seconds": time.monotonic() - started, "peak_mb": peak}))
"""


def _child(core: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["taskset", "-c", core, sys.executable, "-c", CHILD, *args],
        stdout=subprocess.PIPE,
        text=True,
    )


def _result(proc: subprocess.Popen[str]) -> dict[str, float]:
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
    args = parser.parse_args()
    core_a, core_b = args.cores.split(",")
    from PIL import Image, ImageDraw

    from pipeline.stages.segment_plan import segments
    from pipeline.stages.segment_render import segment_key
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
        every = json.dumps([p.index for p in parts])
        print(f"{sb.duration_s:.0f} s, {len(sb.scenes)} scenes, {len(parts)} segments")
        sbp = str(root / "sb.json")

        single = _result(_child(core_a, "single", sbp, tmp))["seconds"]
        one = _result(_child(core_a, "segments", sbp, tmp, every, "one"))
        join = _result(_child(core_a, "assemble", sbp, tmp, "one"))["seconds"]
        seg_one = one["seconds"] + join
        started = time.monotonic()
        workers = [
            _child(core, "segments", sbp, tmp, json.dumps([p.index for p in parts[k::2]]), "two")
            for k, core in enumerate((core_a, core_b))
        ]
        for proc in workers:
            _result(proc)
        _result(_child(core_a, "assemble", sbp, tmp, "two"))
        seg_two = time.monotonic() - started

        edited = _storyboard(args.minutes, edited=len(sb.scenes) // 2)
        assert isinstance(edited, Storyboard)
        (root / "edited.json").write_text(json.dumps(edited.to_dict()))
        sums = {"photo": "x"}
        old = {segment_key(sb, p, sums) for p in parts}
        new_parts = segments(edited, list(edited.segments))
        changed = [p.index for p in new_parts if segment_key(edited, p, sums) not in old]
        # Unchanged segments are reused: copy "one"'s files under the edit's run.
        for p in new_parts:
            if p.index not in changed:
                dst = root / "segments" / "edit" / f"{p.index:04d}"
                dst.parent.mkdir(parents=True, exist_ok=True)
                (root / "segments" / "one" / f"{p.index:04d}").rename(dst)
        ep = str(root / "edited.json")
        redo = _result(_child(core_a, "segments", ep, tmp, json.dumps(changed), "edit"))
        rejoin = _result(_child(core_a, "assemble", ep, tmp, "edit"))["seconds"]
        rerender = redo["seconds"] + rejoin

    peak = _peak_200()
    figures = {
        "single_pass_1_core_s": round(single, 1),
        "segmented_1_core_s": round(seg_one, 1),
        "segmented_2_workers_s": round(seg_two, 1),
        "speed_up_2_workers": round(seg_one / seg_two, 2),
        "segmented_overhead_pct": round(100 * (seg_one / single - 1), 1),
        "edit_one_scene_segments": len(changed),
        "rerender_s": round(rerender, 1),
        "rerender_pct_of_full": round(100 * rerender / seg_one, 1),
        "peak_rss_mb_200_images_720p": round(peak, 0),
    }
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
