"""A packaged HLS tree and a video file of a user's that has it (API and browser tests)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from api.keys import STORAGE
from pipeline.stages.hls_package import content_type, package_hls
from pipeline.stages.seek_previews import make_storyboard
from tests.api.files_helpers import completed_video_job
from tests.support.media import h264_mp4, png_bytes

VTT = "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nHello there.\n"


def package_tree(work: Path, heights: tuple[int, ...] = (360, 720), seconds: float = 6) -> Path:
    """Renditions of a test pattern, packaged with captions and seek previews."""
    sources = {
        f"{height}p": h264_mp4(work / f"{height}p.mp4", height=height, seconds=seconds)
        for height in heights
    }
    (work / "subtitles.vtt").write_text(VTT)
    result = package_hls(sources, work / "out", subtitles_vtt=work / "subtitles.vtt")
    top = max(result.variants, key=lambda v: v.height)
    make_storyboard(
        sources[top.quality], work / "out", duration_s=result.duration_s, width=top.width,
        height=top.height,
    )  # fmt: skip
    return work / "out"


def tree_files(tree: Path) -> list[Path]:
    return sorted(p for p in tree.rglob("*") if p.is_file())


async def stored_video(client: Any, db: Any, user: Any, tree: Path) -> tuple[str, str]:
    """A completed job of ``user`` whose video file has ``tree`` and sidecar
    captions in storage (job id, file id)."""
    picture = png_bytes(color=(secrets.randbelow(256), 2, 3))
    job_id, file_id = await completed_video_job(client, db, user, picture, title="Pattern")
    storage = client.server.app[STORAGE]
    for path in tree_files(tree):
        name = path.relative_to(tree).as_posix()
        await storage.put_file(f"hls/{file_id}/{name}", path, content_type=content_type(name))
    await storage.put_bytes(f"videos/{job_id}/subtitles.vtt", VTT.encode())
    return job_id, file_id
