"""A render's memory is bounded by its segment, not by the video.

Videos render in segments holding at most a few image/video scenes, so the
worst storyboard the API accepts (200 image scenes) renders each segment
under the documented bound (SEGMENT_BOUND_MB: 400 MiB at 720p, 700 MiB at
1080p): its heaviest segment is rendered here and ffmpeg's peak resident set
measured (``RUSAGE_CHILDREN`` of a fresh process, so nothing else counts).
A deployment's RENDER_MEMORY_BUDGET_MB below one segment's estimate is still
checked on the script at submission (422) and on the storyboard.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline.stages.render_budget import (
    SEGMENT_BOUND_MB,
    RenderBudgetExceeded,
    check_render_budget,
    max_dynamic_scenes,
    segment_dynamic_cap,
    top_pixels,
)
from t2m.settings import Settings
from tests.processes import REPO

BUDGET_MB = 300.0  # below a 3-photo segment's estimate at 720p


def image_script(scenes: int) -> str:
    return "\n\n".join(
        f"[background: asset:file_{'a' * 24}]\n[duration: 1s]\nScene {i}" for i in range(scenes)
    )


async def test_submission_past_the_budget_is_422(
    aiohttp_client: Any, settings: Settings, db: Any, make_user: Any
) -> None:
    from api.app import create_app

    client = await aiohttp_client(
        create_app(settings.with_overrides(render_memory_budget_mb=BUDGET_MB))
    )
    user = await make_user()
    fits = max_dynamic_scenes(BUDGET_MB, top_pixels("720p"))
    assert fits >= 2
    response = await client.post(
        "/api/v1/videos/generate",
        json={"script": image_script(fits + 1), "quality": "720p"},
        headers=user.headers,
    )
    body = await response.json()
    assert response.status == 422, body
    assert body["error"]["code"] == "VALIDATION_ERROR"
    assert "RENDER_MEMORY_BUDGET_MB" in json.dumps(body["error"]["details"])
    # A lower quality fits more scenes; the same script is accepted there.
    assert max_dynamic_scenes(BUDGET_MB, top_pixels("480p")) > fits
    response = await client.post(
        "/api/v1/videos/generate",
        json={"script": image_script(fits), "quality": "720p"},
        headers=user.headers,
    )
    assert response.status in (200, 201, 202), await response.text()


def test_the_worker_check_is_permanent() -> None:
    with pytest.raises(RenderBudgetExceeded) as info:
        check_render_budget(["x"] * 100, top_pixels("1080p"), BUDGET_MB, what="storyboard")
    assert info.value.retryable is False and info.value.status == 422
    assert check_render_budget([None] * 200, top_pixels("720p"), BUDGET_MB) < BUDGET_MB


def test_any_number_of_photos_fits_the_default_budget() -> None:
    """The estimate is a segment's: 200 photos cost what a few do."""
    for quality in ("720p", "1080p"):
        pixels = top_pixels(quality)
        bound = SEGMENT_BOUND_MB[720 if quality == "720p" else 1080]
        worst = check_render_budget(["x"] * 200, pixels, Settings().render_memory_budget_mb)
        assert worst == check_render_budget(["x"] * segment_dynamic_cap(pixels), pixels, 0)
        assert worst <= bound


RENDER_CHILD = r"""
import json, resource, sys
from pathlib import Path
from PIL import Image
from pipeline.stages.render_budget import segment_dynamic_cap
from pipeline.stages.script import parse_script
from pipeline.stages.segment_plan import segments, with_plan
from pipeline.stages.segment_render import render_segment
from pipeline.stages.storyboard_planner import build_storyboard
count, quality, root = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
photo = root / "photo.png"
Image.new("RGB", (640, 480), "#557799").save(photo)
raw = "\n\n".join(f"[background: asset:p]\n[duration: 1s]\nScene {i}" for i in range(count))
script = parse_script(raw.encode())
sb = with_plan(build_storyboard(script, quality=quality, assets={"p": "image/png"}))
parts = segments(sb, list(sb.segments))
# Every segment is rendered on its own: the heaviest one is a worker's peak.
heaviest = max(parts, key=lambda p: (p.end - p.first + p.lead, p.frames))
cap = segment_dynamic_cap(sb.width * sb.height)
assert heaviest.end - heaviest.first <= cap, (heaviest, cap)
render_segment(sb, heaviest, root / "out", asset_paths={"p": photo})
print(json.dumps(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))
"""


@pytest.mark.parametrize("quality", ["720p", "1080p"])
def test_the_worst_accepted_storyboard_renders_under_the_bound(
    tmp_path: Path, quality: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", RENDER_CHILD, "200", quality, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    peak_mb = float(done.stdout.strip().splitlines()[-1])
    bound = SEGMENT_BOUND_MB[720 if quality == "720p" else 1080]
    assert peak_mb < bound, f"200 image scenes at {quality} peaked at {peak_mb:.0f} MiB"
