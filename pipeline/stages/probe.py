"""Technical metadata of a stored upload or render (a local file).

Images with Pillow (header only, EXIF orientation applied to the reported
size), video and audio with PyAV (the ffmpeg binary we ship has no ffprobe),
PDF with pypdf, text by decoding it as a stream.  Audio and video are opened
with the upload demuxers and local-file protocol only (see ffmpeg_runner).
Anything that cannot be read raises :class:`ProbeError`; it is permanent, retrying will not help.
"""

from __future__ import annotations

import codecs
import logging
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from PIL import Image

from pipeline.stages.ffmpeg_runner import UPLOAD_DEMUXER_NAMES, upload_av_options
from pipeline.stages.file_errors import UnusableFile
from pipeline.stages.media_types import HEAD_BYTES, text_encoding
from t2m.settings import Settings

log = logging.getLogger(__name__)

_TEXT_READ = 1024 * 1024
_MAX_PACKETS_TO_FIRST_FRAME = 2000
# EXIF orientations 5–8 rotate by 90° (with or without a mirror).
_TRANSPOSED_ORIENTATIONS = {5, 6, 7, 8}
_EXIF_ORIENTATION = 0x0112
_BOM_LENGTH = {"utf-16-le": 2, "utf-16-be": 2, "utf-32-le": 4, "utf-32-be": 4}


@dataclass(frozen=True)
class MediaLimits:
    """What a probe accepts before anything is decoded (from the header alone).

    ``max_pixels`` bounds one frame (image, animation frame or video frame);
    Pillow's ``Image.MAX_IMAGE_PIXELS`` is its ceiling whatever the setting.
    """

    max_pixels: int = 50_000_000
    max_frames: int = 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> MediaLimits:
        return cls(settings.max_image_pixels, settings.max_image_frames)

    @property
    def pixel_ceiling(self) -> int:
        return min(self.max_pixels, Image.MAX_IMAGE_PIXELS or self.max_pixels)

    def check_frame(self, width: int, height: int) -> None:
        if width * height > self.pixel_ceiling:
            raise ProbeError(
                f"too large: {width}×{height} is {width * height:,} pixels a frame,"
                f" the limit is {self.pixel_ceiling:,} (MAX_IMAGE_PIXELS)"
            )


class ProbeError(UnusableFile):
    """The file cannot be parsed as the type it was detected as."""


def probe_media(
    path: Path, file_type: str, mime: str, *, limits: MediaLimits | None = None
) -> dict[str, Any]:
    """Metadata of ``path``, which was detected as ``file_type`` / ``mime``.

    * image: ``width, height`` (as displayed, after EXIF orientation),
      ``format, mode, orientation, frames, animated, has_alpha``
    * video: ``duration, width, height, fps, codec, bitrate, video_bitrate,
      frames, rotation, format`` and ``audio`` (``codec, bitrate, sample_rate,
      channels`` or ``None``)
    * audio: ``duration, codec, bitrate, sample_rate, channels, format``
    * document (PDF): ``pages, title, author, subject, creator, producer,
      creation_date, encrypted``
    * document (text): ``characters, lines, encoding, bom``
    """
    limits = limits or MediaLimits()
    path = Path(path)
    if not path.is_file():
        raise ProbeError(f"no such file: {path.name}")
    if file_type == "image":
        return _probe_image(path, limits)
    if file_type == "video":
        return _probe_av(path, mime, limits, want_video=True)
    if file_type == "audio":
        return _probe_av(path, mime, limits, want_video=False)
    if file_type == "document":
        if mime == "application/pdf":
            return _probe_pdf(path)
        return _probe_text(path)
    raise ProbeError(f"cannot probe file type {file_type!r}")


# -- images -------------------------------------------------------------------
def _probe_image(path: Path, limits: MediaLimits) -> dict[str, Any]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                # Image.open reads the header only: refuse a bomb before any decode.
                width, height = image.size
                limits.check_frame(width, height)
                fmt = image.format
                mode = image.mode
                frames = int(getattr(image, "n_frames", 1) or 1)
                if frames > limits.max_frames:
                    raise ProbeError(
                        f"too many frames: {frames:,}, the limit is"
                        f" {limits.max_frames:,} (MAX_IMAGE_FRAMES)"
                    )
                orientation = int(image.getexif().get(_EXIF_ORIENTATION, 1) or 1)
                has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
                    "transparency" in image.info
                )
            # verify() checks structure (PNG chunk CRCs, …) without decoding pixels;
            # it needs a fresh image object.
            with Image.open(path) as image:
                image.verify()
    except ProbeError:
        raise
    except Image.DecompressionBombError as exc:
        raise ProbeError(f"image too large: {exc}") from exc
    except Exception as exc:  # Pillow raises many types on malformed input
        raise ProbeError(f"unreadable image: {exc}") from exc
    if orientation in _TRANSPOSED_ORIENTATIONS:
        width, height = height, width
    return {
        "width": width,
        "height": height,
        "format": fmt,
        "mode": mode,
        "orientation": orientation if 1 <= orientation <= 8 else 1,
        "frames": frames,
        "animated": frames > 1,
        "has_alpha": has_alpha,
    }


# -- audio / video ------------------------------------------------------------
_FORMAT_BY_MIME = {
    "video/mp4": "mp4",
    "video/x-m4v": "m4v",
    "video/quicktime": "mov",
    "video/webm": "webm",
    "video/x-matroska": "mkv",
    "video/x-msvideo": "avi",
    "video/mpeg": "mpeg",
    "video/mp2t": "ts",
    "video/x-flv": "flv",
    "video/3gpp": "3gp",
    "video/x-ms-wmv": "wmv",
    "audio/mpeg": "mp3",
    "audio/x-wav": "wav",
    "audio/ogg": "ogg",
    "audio/x-flac": "flac",
    "audio/mp4": "m4a",
    "audio/aac": "aac",
    "audio/x-aiff": "aiff",
    "audio/amr": "amr",
    "audio/webm": "webm",
    "audio/x-matroska": "mka",
    "audio/3gpp": "3gp",
}


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _first_frame(container: Any, stream: Any) -> Any:
    """Decode the first frame of ``stream``: proof the data is really there."""
    for packets, packet in enumerate(container.demux(stream)):
        for frame in packet.decode():
            return frame
        if packets > _MAX_PACKETS_TO_FIRST_FRAME:
            break
    # Flush: some decoders only emit after end of stream.
    for frame in stream.codec_context.decode(None):
        return frame
    return None


def _probe_av(path: Path, mime: str, limits: MediaLimits, *, want_video: bool) -> dict[str, Any]:
    try:
        # Local files and the accepted containers only: a playlist (HLS,
        # ffconcat) posing as media would otherwise make ffmpeg open the
        # files or URLs it names.
        container = av.open(str(path), metadata_errors="ignore", options=upload_av_options())
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise ProbeError(f"unreadable media container: {exc}") from exc
    if not set(container.format.name.split(",")) <= UPLOAD_DEMUXER_NAMES:
        container.close()
        raise ProbeError(f"unsupported container format {container.format.name!r}")
    try:
        with container:
            return _describe_av(container, mime, limits, want_video)
    except ProbeError:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise ProbeError(f"undecodable media: {exc}") from exc


def _describe_av(
    container: Any, mime: str, limits: MediaLimits, want_video: bool
) -> dict[str, Any]:
    video = next(
        (
            s
            for s in container.streams.video
            if not s.disposition & av.stream.Disposition.attached_pic
        ),
        None,
    )
    audio = container.streams.audio[0] if container.streams.audio else None
    duration = container.duration / av.time_base if container.duration else None
    fmt = _FORMAT_BY_MIME.get(mime) or container.format.name.split(",")[0]
    bitrate = int(container.bit_rate) if container.bit_rate else None

    audio_info: dict[str, Any] | None = None
    if audio is not None:
        ctx = audio.codec_context
        audio_info = {
            "codec": ctx.codec.canonical_name,
            "bitrate": int(ctx.bit_rate) if ctx.bit_rate else None,
            "sample_rate": int(ctx.sample_rate) if ctx.sample_rate else None,
            "channels": int(ctx.channels) if ctx.channels else None,
        }
        if duration is None:
            duration = _seconds(audio.duration, audio.time_base)

    if not want_video:
        if audio is None:
            raise ProbeError("no audio stream")
        container.seek(0)
        if _first_frame(container, audio) is None:
            raise ProbeError("audio stream has no decodable frames")
        assert audio_info is not None
        return {
            "duration": _round(duration),
            **audio_info,
            "bitrate": audio_info["bitrate"] or bitrate,
            "format": fmt,
        }

    if video is None:
        raise ProbeError("no video stream")
    ctx = video.codec_context
    # The stream header gives the frame size: refuse a huge one before decoding.
    limits.check_frame(int(ctx.width or 0), int(ctx.height or 0))
    video.thread_type = "AUTO"
    frame = _first_frame(container, video)
    if frame is None:
        raise ProbeError("video stream has no decodable frames")
    rotation = int(getattr(frame, "rotation", 0) or 0) % 360
    width, height = int(ctx.width or frame.width), int(ctx.height or frame.height)
    if rotation in (90, 270):
        width, height = height, width
    rate = video.average_rate or video.guessed_rate or video.base_rate
    if duration is None:
        duration = _seconds(video.duration, video.time_base)
    return {
        "duration": _round(duration),
        "width": width,
        "height": height,
        "fps": _round(float(rate)) if rate else None,
        "codec": ctx.codec.canonical_name,
        "bitrate": bitrate,
        "video_bitrate": int(ctx.bit_rate) if ctx.bit_rate else None,
        "frames": int(video.frames) or None,
        "rotation": rotation,
        "format": fmt,
        "audio": audio_info,
    }


# -- documents ----------------------------------------------------------------
def _pdf_text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip().replace("\x00", "")
    return text or None


def _probe_pdf(path: Path) -> dict[str, Any]:
    from pypdf import PdfReader

    try:
        reader = PdfReader(path)
        encrypted = bool(reader.is_encrypted)
        if encrypted and not reader.decrypt(""):
            # Password protected: the structure is valid, the contents are not ours to read.
            return {"pages": None, "encrypted": True}
        pages = len(reader.pages)
        meta = reader.metadata
        created = meta.creation_date if meta is not None else None
    except Exception as exc:  # pypdf raises many types on malformed input
        raise ProbeError(f"unreadable PDF: {exc}") from exc
    if pages < 1:
        raise ProbeError("PDF has no pages")
    return {
        "pages": pages,
        "title": _pdf_text(meta.title) if meta is not None else None,
        "author": _pdf_text(meta.author) if meta is not None else None,
        "subject": _pdf_text(meta.subject) if meta is not None else None,
        "creator": _pdf_text(meta.creator) if meta is not None else None,
        "producer": _pdf_text(meta.producer) if meta is not None else None,
        "creation_date": created.date().isoformat() if created is not None else None,
        "encrypted": encrypted,
    }


def _probe_text(path: Path) -> dict[str, Any]:
    with open(path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
        encoding = text_encoding(head)
        if encoding is None:
            raise ProbeError("not a text file (no UTF-8/UTF-16/UTF-32 text found)")
        # utf-8-sig drops its BOM while decoding; the UTF-16/32 codecs need it skipped.
        handle.seek(_BOM_LENGTH.get(encoding, 0))
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        characters = newlines = 0
        last = ""
        try:
            while True:
                data = handle.read(_TEXT_READ)
                text = decoder.decode(data, final=not data)
                if text:
                    characters += len(text)
                    newlines += text.count("\n")
                    last = text[-1]
                if not data:
                    break
        except UnicodeDecodeError as exc:
            raise ProbeError(
                f"invalid {encoding} text at byte {handle.tell() - len(data) + exc.start}"
            ) from exc
    bom = encoding == "utf-8-sig" or encoding in _BOM_LENGTH
    lines = newlines + (1 if characters and last != "\n" else 0)
    return {
        "characters": characters,
        "lines": lines,
        "encoding": "utf-8" if encoding == "utf-8-sig" else encoding,
        "bom": bom,
    }
