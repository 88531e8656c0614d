"""Thumbnails of images, videos, PDFs (first page) and audio cover art.

Three sizes, bounded by their longest side: small 160, medium 320, large 640
pixels; never upscaled.  Output is baseline JPEG (quality 85): every browser,
mail client and image library shows it, Pillow encodes it fastest, and a
thumbnail never needs transparency (alpha is flattened onto white).  WebP would
save ~25 % of a few KiB per thumbnail, not worth losing universal support.

Memory stays small: JPEGs are decoded at reduced DCT scale (``Image.draft``),
videos are decoded only around a few seek points, PDFs are rendered straight at
the target resolution.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import av
from PIL import Image, ImageOps

from pipeline.stages.ffmpeg_runner import upload_av_options
from pipeline.stages.file_errors import UnusableFile

log = logging.getLogger(__name__)

SIZES: dict[str, int] = {"small": 160, "medium": 320, "large": 640}
THUMBNAIL_MIME = "image/jpeg"
THUMBNAIL_EXTENSION = ".jpg"
JPEG_QUALITY = 85

_LARGEST = max(SIZES.values())
# Formats that cannot be decoded at reduced size are refused above this many
# pixels (an RGBA 64 MP image is 256 MiB decoded).
MAX_DECODE_PIXELS = 64_000_000
# Fractions of the duration tried when no time is given.
_SAMPLE_POINTS = (0.1, 0.25, 0.4, 0.55, 0.7, 0.85)
_MAX_FRAMES_PER_SEEK = 150  # decode at most this far past a keyframe
_BACKGROUND = (255, 255, 255)
# PDFium is not thread-safe and Dramatiq runs actors in threads.
_PDFIUM_LOCK = threading.Lock()


class ThumbnailError(UnusableFile):
    """No thumbnail can be made for this file."""


def make_thumbnails(
    src: Path, file_type: str, out_dir: Path, *, at_seconds: float | None = None
) -> dict[str, Path]:
    """Write ``small.jpg``, ``medium.jpg`` and ``large.jpg`` into ``out_dir``.

    ``at_seconds`` picks the video frame; without it several frames across the
    video are compared and the most detailed (highest luminance entropy) wins,
    so fades from black and title-less intros are skipped.  Returns
    ``{"small": path, "medium": path, "large": path}``.
    """
    src = Path(src)
    if not src.is_file():
        raise ThumbnailError(f"no such file: {src.name}")
    if file_type == "image":
        image = _load_image(src)
    elif file_type == "video":
        image = _video_frame(src, at_seconds)
    elif file_type == "document":
        image = _pdf_first_page(src)
    elif file_type == "audio":
        image = _cover_art(src)
    else:
        raise ThumbnailError(f"no thumbnails for file type {file_type!r}")
    return _write_sizes(_to_rgb(image), Path(out_dir))


def _write_sizes(image: Image.Image, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    current = image
    # Largest first, each from the previous one: cheaper and just as sharp.
    for name, edge in sorted(SIZES.items(), key=lambda item: -item[1]):
        current = current.copy()
        current.thumbnail((edge, edge), Image.Resampling.LANCZOS, reducing_gap=3.0)
        target = out_dir / f"{name}{THUMBNAIL_EXTENSION}"
        temp = out_dir / f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            current.save(temp, "JPEG", quality=JPEG_QUALITY, optimize=True)
            os.replace(temp, target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        written[name] = target
    return {name: written[name] for name in SIZES}


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB with any transparency flattened onto white; 16-bit scaled to 8-bit."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        image = image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    elif image.mode == "F":
        image = image.convert("L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("LA", "PA", "La", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, _BACKGROUND)
        background.paste(image, mask=image.getchannel("A"))
        return background
    if image.mode != "RGB":
        image = image.convert("RGB")
    return image


# -- images -------------------------------------------------------------------
def _load_image(src: Path) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(src) as image:
                if image.format == "JPEG":
                    # DCT scaling: decode at 1/2…1/8 size, still >= the largest thumbnail.
                    image.draft("RGB", (_LARGEST, _LARGEST))
                elif image.width * image.height > MAX_DECODE_PIXELS:
                    raise ThumbnailError(
                        f"image of {image.width}x{image.height} is too large to thumbnail"
                    )
                image.load()
                oriented = ImageOps.exif_transpose(image)
                if oriented is image:
                    oriented = image.copy()
                return oriented
    except ThumbnailError:
        raise
    except Image.DecompressionBombError as exc:
        raise ThumbnailError(f"image too large: {exc}") from exc
    except Exception as exc:  # Pillow raises many types on malformed input
        raise ThumbnailError(f"unreadable image: {exc}") from exc


# -- video / audio ------------------------------------------------------------
def _oriented(frame: Any, image: Image.Image) -> Image.Image:
    # The display matrix rotates counterclockwise, like Image.rotate.
    rotation = int(getattr(frame, "rotation", 0) or 0) % 360
    transpose = {
        90: Image.Transpose.ROTATE_90,
        180: Image.Transpose.ROTATE_180,
        270: Image.Transpose.ROTATE_270,
    }.get(rotation)
    return image.transpose(transpose) if transpose is not None else image


def _frame_image(frame: Any) -> Image.Image:
    """The frame scaled (by swscale) so its longest side is at most the largest size."""
    width, height = frame.width, frame.height
    scale = min(1.0, _LARGEST / max(width, height))
    size = {
        "width": max(2, round(width * scale)),
        "height": max(2, round(height * scale)),
    }
    image = frame.to_image(**size, interpolation="AREA") if scale < 1 else frame.to_image()
    return _oriented(frame, image)


def _detail(image: Image.Image) -> float:
    """Luminance entropy in bits: 0 for a black or flat frame, ~7 for a busy one."""
    small = image.convert("L")
    small.thumbnail((96, 96), Image.Resampling.BILINEAR)
    return float(small.entropy())


def _frame_at(container: Any, stream: Any, seconds: float, start: float) -> Any:
    """The first frame at or after ``seconds`` (from the stream start)."""
    target = start + max(0.0, seconds)
    timestamp = int(target / stream.time_base) if stream.time_base else 0
    try:
        container.seek(timestamp, stream=stream, backward=True, any_frame=False)
    except av.FFmpegError:
        container.seek(0, stream=stream)
    last = None
    for decoded, frame in enumerate(container.decode(stream)):
        last = frame
        if frame.time is None or frame.time >= target or decoded >= _MAX_FRAMES_PER_SEEK:
            return frame
    return last  # target past the last frame: the last one


def _video_stream(container: Any) -> Any:
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def _video_frame(src: Path, at_seconds: float | None) -> Image.Image:
    try:
        container = av.open(str(src), metadata_errors="ignore", options=upload_av_options())
    except (av.FFmpegError, OSError) as exc:
        raise ThumbnailError(f"unreadable video: {exc}") from exc
    try:
        with container:
            stream = _video_stream(container)
            if stream is None:
                raise ThumbnailError("no video stream")
            stream.thread_type = "AUTO"
            start = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
            if container.duration:
                duration = container.duration / av.time_base
            elif stream.duration:
                duration = float(stream.duration * stream.time_base)
            else:
                duration = 0.0
            if at_seconds is not None:
                limit = duration if duration > 0 else at_seconds
                frame = _frame_at(container, stream, min(max(0.0, at_seconds), limit), start)
                if frame is None:
                    raise ThumbnailError("no decodable frame")
                return _frame_image(frame)
            points = (
                [duration * f for f in _SAMPLE_POINTS] if duration > 0 else [0.0, 1.0, 2.0, 4.0]
            )
            best: Image.Image | None = None
            best_detail = -1.0
            seen: set[Any] = set()
            for seconds in points:
                frame = _frame_at(container, stream, seconds, start)
                if frame is None or frame.pts in seen:
                    continue
                seen.add(frame.pts)
                image = _frame_image(frame)
                detail = _detail(image)
                if detail > best_detail:
                    best, best_detail = image, detail
            if best is None:
                raise ThumbnailError("no decodable frame")
            return best
    except ThumbnailError:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise ThumbnailError(f"undecodable video: {exc}") from exc


def _cover_art(src: Path) -> Image.Image:
    """The picture embedded in an audio file (ID3 APIC, MP4 covr, FLAC picture)."""
    try:
        with av.open(str(src), metadata_errors="ignore", options=upload_av_options()) as container:
            for stream in container.streams.video:
                if stream.disposition & av.stream.Disposition.attached_pic:
                    for frame in container.decode(stream):
                        return _frame_image(frame)
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise ThumbnailError(f"unreadable audio: {exc}") from exc
    raise ThumbnailError("audio file has no cover art")


# -- documents ----------------------------------------------------------------
def _pdf_first_page(src: Path) -> Image.Image:
    with open(src, "rb") as handle:
        head = handle.read(1024)
    if b"%PDF-" not in head:
        raise ThumbnailError("no thumbnails for text documents")
    import pypdfium2 as pdfium

    with _PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(str(src))
        except pdfium.PdfiumError as exc:
            raise ThumbnailError(f"unreadable PDF: {exc}") from exc
        try:
            if len(pdf) < 1:
                raise ThumbnailError("PDF has no pages")
            page = pdf[0]
            try:
                width, height = page.get_size()
                if width <= 0 or height <= 0:
                    raise ThumbnailError("PDF page has no area")
                scale = _LARGEST / max(width, height)
                bitmap = page.render(scale=scale, fill_color=(255, 255, 255, 255))
                try:
                    # to_pil may share the bitmap's buffer: copy before closing it.
                    return bitmap.to_pil().copy()
                finally:
                    bitmap.close()
            finally:
                page.close()
        except pdfium.PdfiumError as exc:
            raise ThumbnailError(f"unrenderable PDF: {exc}") from exc
        finally:
            pdf.close()
