"""Media bombs are refused from their headers, before any decode."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from pipeline.stages.probe import MediaLimits, ProbeError, probe_media
from pipeline.stages.upload_processing import process_local_upload
from tests.pipeline.stages.test_media_types import make_video


def _huge_png(path: Path) -> Path:
    # 13000×13000 one-bit pixels: 169 million pixels, a few hundred KiB on the wire.
    Image.new("1", (13000, 13000)).save(path, optimize=True)
    return path


def test_an_image_over_the_pixel_limit_fails_before_decoding(tmp_path: Path) -> None:
    bomb = _huge_png(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 1024 * 1024
    with pytest.raises(ProbeError, match="169,000,000 pixels"):
        probe_media(bomb, "image", "image/png")
    result = process_local_upload(
        bomb, file_type="image", mime="image/png", work_dir=tmp_path / "thumbs"
    )
    assert result.status == "failed" and result.thumbnails == {}
    assert result.error is not None and "MAX_IMAGE_PIXELS" in result.error
    assert not (tmp_path / "thumbs").exists()  # nothing was decoded into thumbnails


def test_the_setting_is_capped_by_pillows_ceiling(tmp_path: Path) -> None:
    bomb = _huge_png(tmp_path / "bomb.png")
    with pytest.raises(ProbeError, match="MAX_IMAGE_PIXELS"):
        probe_media(bomb, "image", "image/png", limits=MediaLimits(max_pixels=10**12))


def test_an_animation_with_too_many_frames_fails(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (4, 4), (i % 256, i // 256, 0)) for i in range(1200)]
    path = tmp_path / "many.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=20)
    with pytest.raises(ProbeError, match="too many frames: 1,200"):
        probe_media(path, "image", "image/gif")
    assert (
        probe_media(path, "image", "image/gif", limits=MediaLimits(max_frames=2000))["frames"]
        == 1200
    )


def test_a_video_frame_over_the_pixel_limit_fails(tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", black_seconds=0.2, pattern_seconds=0.2)
    with pytest.raises(ProbeError, match="pixels a frame"):
        probe_media(video, "video", "video/mp4", limits=MediaLimits(max_pixels=100))
