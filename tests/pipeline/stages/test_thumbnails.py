from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageStat

from pipeline.stages.thumbnails import SIZES, ThumbnailError, make_thumbnails
from tests.pipeline.stages.test_media_types import (
    ELF_HEAD,
    make_jpeg,
    make_mp3,
    make_pdf,
    make_png_rgba,
    make_video,
    make_wav,
)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("thumbs")
    video = make_video(root / "clip.mp4", black_seconds=1.0, pattern_seconds=2.0)
    truncated = root / "truncated.mp4"
    truncated.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    cover = root / "cover.png"
    Image.new("RGB", (300, 300), (200, 30, 30)).save(cover)
    return {
        "jpeg_rotated": make_jpeg(root / "rotated.jpg", (400, 200), orientation=6),
        "jpeg_big": make_jpeg(root / "big.jpg", (4000, 3000)),
        "png": make_png_rgba(root / "alpha.png"),
        "video": video,
        "video_rotated": make_video(
            root / "rotated.mp4",
            black_seconds=0.2,
            pattern_seconds=0.8,
            audio=False,
            size="320x240",
            rotation=90,
        ),
        "video_hd": make_video(
            root / "hd.mp4", black_seconds=0.3, pattern_seconds=0.5, audio=False, size="1280x720"
        ),
        "truncated": truncated,
        "pdf": make_pdf(root / "doc.pdf", pages=2),
        "mp3_cover": make_mp3(root / "cover.mp3", seconds=0.5, cover=cover),
        "wav": make_wav(root / "tone.wav", seconds=0.2),
    }


def open_all(paths: dict[str, Path]) -> dict[str, Image.Image]:
    assert list(paths) == ["small", "medium", "large"]
    images: dict[str, Image.Image] = {}
    for name, path in paths.items():
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.mode == "RGB"
            image.load()
            images[name] = image
    return images


def mean_luma(image: Image.Image) -> float:
    return float(ImageStat.Stat(image.convert("L")).mean[0])


def test_image_sizes_and_exif_orientation(media: dict[str, Path], tmp_path: Path) -> None:
    images = open_all(make_thumbnails(media["jpeg_rotated"], "image", tmp_path))
    # 400x200 with orientation 6 is shown as 200x400: portrait thumbnails.
    assert images["large"].size == (200, 400)  # never upscaled
    assert images["medium"].size == (160, 320)
    assert images["small"].size == (80, 160)
    # The red left half of the stored pixels is on top once rotated clockwise.
    small = images["small"]
    top = small.getpixel((40, 20))
    bottom = small.getpixel((40, 140))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 200 and top[2] < 60
    assert bottom[2] > 200 and bottom[0] < 60


def test_large_jpeg_is_reduced(media: dict[str, Path], tmp_path: Path) -> None:
    images = open_all(make_thumbnails(media["jpeg_big"], "image", tmp_path))
    assert {name: img.size for name, img in images.items()} == {
        "small": (160, 120),
        "medium": (320, 240),
        "large": (640, 480),
    }


def test_alpha_is_flattened_on_white(media: dict[str, Path], tmp_path: Path) -> None:
    images = open_all(make_thumbnails(media["png"], "image", tmp_path))
    large = images["large"]
    assert large.size == (300, 200)
    corner = large.getpixel((5, 5))
    centre = large.getpixel((150, 100))
    assert isinstance(corner, tuple) and isinstance(centre, tuple)
    assert min(corner) > 245  # transparent -> white, not black
    assert centre[1] > 150 and centre[0] < 60


@pytest.mark.parametrize("mode", ["P", "LA", "I;16", "CMYK", "L"])
def test_other_modes(tmp_path: Path, mode: str) -> None:
    source = tmp_path / ("in.tif" if mode in ("I;16", "CMYK") else "in.png")
    image = Image.new("RGB", (50, 40), (10, 120, 200)).convert("I" if mode == "I;16" else mode)
    if mode == "I;16":
        image = Image.new("I;16", (50, 40), 40000)
    image.save(source)
    images = open_all(make_thumbnails(source, "image", tmp_path / "out"))
    assert images["large"].size == (50, 40)
    if mode == "I;16":  # 16-bit scaled down, not clipped to white
        assert 140 < mean_luma(images["large"]) < 175


def test_video_thumbnail_skips_black_intro(media: dict[str, Path], tmp_path: Path) -> None:
    images = open_all(make_thumbnails(media["video"], "video", tmp_path))
    large = images["large"]
    assert large.size == (320, 240)
    assert mean_luma(large) > 40
    assert large.convert("L").entropy() > 3
    assert images["small"].size == (160, 120)


def test_video_thumbnail_at_given_time(media: dict[str, Path], tmp_path: Path) -> None:
    black = open_all(make_thumbnails(media["video"], "video", tmp_path / "a", at_seconds=0.5))
    assert mean_luma(black["large"]) < 10  # the caller asked for the black part
    late = open_all(make_thumbnails(media["video"], "video", tmp_path / "b", at_seconds=99))
    assert mean_luma(late["large"]) > 40  # past the end: the last frame


def test_video_frames_are_scaled_on_decode(media: dict[str, Path], tmp_path: Path) -> None:
    images = open_all(make_thumbnails(media["video_hd"], "video", tmp_path))
    assert {name: img.size for name, img in images.items()} == {
        "small": (160, 90),
        "medium": (320, 180),
        "large": (640, 360),
    }
    assert mean_luma(images["large"]) > 40


def test_video_rotation_is_applied(media: dict[str, Path], tmp_path: Path) -> None:
    images = open_all(make_thumbnails(media["video_rotated"], "video", tmp_path))
    assert images["large"].size == (240, 320)


def test_truncated_video(media: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ThumbnailError):
        make_thumbnails(media["truncated"], "video", tmp_path)


def test_pdf_first_page(media: dict[str, Path], tmp_path: Path) -> None:
    images = open_all(make_thumbnails(media["pdf"], "document", tmp_path))
    large = images["large"]
    assert max(large.size) == 640
    assert large.size[0] < large.size[1]  # portrait page
    # White page with a black square at (100..400, 100..400) of 612x792 points.
    scale = 640 / 792
    inside = large.getpixel((int(250 * scale), int(250 * scale)))
    outside = large.getpixel((int(550 * scale), int(700 * scale)))
    assert isinstance(inside, tuple) and isinstance(outside, tuple)
    assert max(inside) < 40 and min(outside) > 215


def test_audio_cover_art(media: dict[str, Path], tmp_path: Path) -> None:
    images = open_all(make_thumbnails(media["mp3_cover"], "audio", tmp_path))
    assert images["large"].size == (300, 300)
    pixel = images["large"].getpixel((150, 150))
    assert isinstance(pixel, tuple) and pixel[0] > 150 and pixel[1] < 80
    with pytest.raises(ThumbnailError, match="cover"):
        make_thumbnails(media["wav"], "audio", tmp_path / "wav")


def test_output_files(media: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "nested" / "dir"
    paths = make_thumbnails(media["png"], "image", out)
    assert {p.name for p in paths.values()} == {f"{name}.jpg" for name in SIZES}
    assert sorted(p.name for p in out.iterdir()) == ["large.jpg", "medium.jpg", "small.jpg"]
    # Idempotent: a redelivered job overwrites in place.
    assert make_thumbnails(media["png"], "image", out) == paths


@pytest.mark.parametrize(
    ("content", "file_type"),
    [
        (ELF_HEAD, "image"),
        (ELF_HEAD, "video"),
        (b"plain text\n", "document"),
        (b"%PDF-1.4 broken", "document"),
        (b"x", "spreadsheet"),
    ],
)
def test_unsupported(tmp_path: Path, content: bytes, file_type: str) -> None:
    path = tmp_path / "input"
    path.write_bytes(content)
    with pytest.raises(ThumbnailError):
        make_thumbnails(path, file_type, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_huge_non_jpeg_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.stages import thumbnails

    monkeypatch.setattr(thumbnails, "MAX_DECODE_PIXELS", 100 * 100)
    path = tmp_path / "big.png"
    Image.new("RGB", (200, 200)).save(path)
    with pytest.raises(ThumbnailError, match="too large"):
        make_thumbnails(path, "image", tmp_path / "out")
