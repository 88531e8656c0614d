"""One job cannot take more render memory than RENDER_MEMORY_BUDGET_MB.

The budget is checked on the script at submission (422) and on the storyboard
before rendering; the worst storyboard it admits is rendered here and its
ffmpeg's peak resident set measured (``RUSAGE_CHILDREN`` of a fresh process,
so nothing else counts).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline.stages.render_budget import (
    RenderBudgetExceeded,
    check_render_budget,
    max_dynamic_scenes,
    top_pixels,
)
from t2m.settings import Settings
from tests.processes import REPO

BUDGET_MB = 600.0


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
    assert check_render_budget([None] * 200, top_pixels("1080p"), BUDGET_MB) < BUDGET_MB


RENDER_CHILD = r"""
import json, resource, sys
from pathlib import Path
from PIL import Image
from pipeline.stages.render import render_video
from pipeline.stages.script import parse_script
from pipeline.stages.storyboard import build_storyboard
count, root = int(sys.argv[1]), Path(sys.argv[2])
photo = root / "photo.png"
Image.new("RGB", (640, 480), "#557799").save(photo)
raw = "\n\n".join(f"[background: asset:p]\n[duration: 1s]\nScene {i}" for i in range(count))
sb = build_storyboard(parse_script(raw.encode()), quality="720p", assets={"p": "image/png"})
render_video(sb, root / "out", asset_paths={"p": photo})
print(json.dumps(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))
"""


def test_the_worst_accepted_storyboard_renders_under_the_budget(tmp_path: Path) -> None:
    fits = max_dynamic_scenes(BUDGET_MB, top_pixels("720p"))
    done = subprocess.run(
        [sys.executable, "-c", RENDER_CHILD, str(fits), str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    peak_mb = float(done.stdout.strip().splitlines()[-1])
    assert peak_mb < BUDGET_MB, f"{fits} image scenes peaked at {peak_mb:.0f} MB"
