"""What an upload is, judged by its bytes rather than its name or headers.

The API buffers the first :data:`HEAD_BYTES` of an upload and calls
:func:`detect_media_type`; the client's declared ``file_type`` is then checked
against the result with :func:`check_declared_type`.  Only formats the pipeline
can probe and thumbnail are supported; executables, archives, office files and
anything unrecognised are not.
"""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import NamedTuple

import filetype

from t2m.errors import UnsupportedMediaType, ValidationFailed

FILE_TYPES: tuple[str, ...] = ("document", "image", "video", "audio")
HEAD_BYTES = 8192  # what filetype inspects; enough for every signature below

_IMAGE = {
    "image/jpeg", "image/png", "image/apng", "image/gif", "image/webp",
    "image/bmp", "image/tiff", "image/x-icon", "image/avif",
}  # fmt: skip
_VIDEO = {
    "video/mp4", "video/x-m4v", "video/quicktime", "video/webm", "video/x-matroska",
    "video/x-msvideo", "video/mpeg", "video/x-flv", "video/3gpp", "video/x-ms-wmv",
}  # fmt: skip
_AUDIO = {
    "audio/mpeg", "audio/x-wav", "audio/ogg", "audio/x-flac", "audio/mp4",
    "audio/aac", "audio/x-aiff", "audio/amr",
}  # fmt: skip
_DOCUMENT = {"application/pdf"}

# Containers that hold either video or sound only: a client may declare them audio.
_AUDIO_CAPABLE_VIDEO = {
    "video/mp4": "audio/mp4",
    "video/webm": "audio/webm",
    "video/x-matroska": "audio/x-matroska",
    "video/3gpp": "audio/3gpp",
    "video/quicktime": "audio/mp4",
}

# Text is served with one of these types only (never text/html or SVG, which a
# browser would render); the extension picks among them.
_TEXT_BY_EXTENSION = {
    "txt": "text/plain",
    "text": "text/plain",
    "md": "text/markdown",
    "markdown": "text/markdown",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "json": "application/json",
    "srt": "application/x-subrip",
    "vtt": "text/vtt",
}

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_MIN_PRINTABLE_RATIO = 0.95


class MediaType(NamedTuple):
    file_type: str  # one of FILE_TYPES
    mime: str


def _decode_head(head: bytes) -> tuple[str, str] | None:
    """``(text, encoding)`` if ``head`` looks like the start of a text file."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            codec = "utf-8" if encoding == "utf-8-sig" else encoding
            body = head[len(bom) :]
            break
    else:
        encoding = codec = "utf-8"
        body = head
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    try:
        # final=False: the head may end in the middle of a multibyte character.
        text = decoder.decode(body, final=False)
    except UnicodeDecodeError:
        return None
    if not text or "\x00" in text:
        return None
    printable = sum(1 for ch in text if ch.isprintable() or ch.isspace())
    if printable / len(text) < _MIN_PRINTABLE_RATIO:
        return None
    return text, encoding


def text_encoding(head: bytes) -> str | None:
    """Python codec name of a text file's encoding (``utf-8``, ``utf-16-le`` …)."""
    decoded = _decode_head(head)
    return decoded[1] if decoded else None


def _extension(filename: str | None) -> str:
    if not filename or "." not in filename:
        return ""
    return filename.rsplit(".", 1)[1].strip().lower()


def _text_mime(text: str, filename: str | None, complete: bool) -> str:
    by_extension = _TEXT_BY_EXTENSION.get(_extension(filename))
    if by_extension:
        return by_extension
    stripped = text.lstrip()
    if complete and stripped[:1] in ("{", "["):
        try:
            json.loads(text)
        except ValueError:
            pass
        else:
            return "application/json"
    return "text/plain"


def _is_mpeg_ts(head: bytes) -> bool:
    return len(head) >= 189 * 3 and all(head[i] == 0x47 for i in (0, 188, 376))


def detect_media_type(head: bytes, filename: str | None = None) -> MediaType | None:
    """Classify an upload from its first bytes (at least :data:`HEAD_BYTES` if it has them).

    ``filename`` is only a hint to choose between text subtypes (``.md`` →
    ``text/markdown``); binary formats are judged on content alone.  Returns
    ``None`` for unsupported or unrecognised content (including empty files).
    """
    head = bytes(head[:HEAD_BYTES])
    if not head:
        return None
    complete = len(head) < HEAD_BYTES
    if b"%PDF-" in head[:1024]:  # readers accept leading junk before the header
        return MediaType("document", "application/pdf")
    # Text first: several binary signatures are short printable strings ("BM",
    # "ID3", "OggS", "GIF89a", "MZ") that would claim text files starting with
    # them.  Real binary headers hold NUL bytes or invalid UTF-8 within 8 KiB.
    decoded = _decode_head(head)
    if decoded:
        return MediaType("document", _text_mime(decoded[0], filename, complete))
    kind = filetype.guess(head)
    if kind is not None:
        mime = kind.mime
        if mime in _IMAGE:
            return MediaType("image", mime)
        if mime in _VIDEO:
            return MediaType("video", mime)
        if mime in _AUDIO:
            return MediaType("audio", mime)
        if mime in _DOCUMENT:
            return MediaType("document", mime)
        return None  # recognised but unsupported: executables, archives, office, fonts …
    if _is_mpeg_ts(head):
        return MediaType("video", "video/mp2t")
    return None


def detect_file(path: Path, filename: str | None = None) -> MediaType | None:
    """:func:`detect_media_type` on the head of a local file."""
    with open(path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
    return detect_media_type(head, filename or Path(path).name)


def require_supported(head: bytes, filename: str | None = None) -> MediaType:
    """:func:`detect_media_type`, raising :class:`UnsupportedMediaType` for ``None``."""
    detected = detect_media_type(head, filename)
    if detected is None:
        raise UnsupportedMediaType(
            "Unsupported file content",
            details={
                "file": [
                    "The file is not a supported document (PDF, text), image, video or audio file"
                ]
            },
        )
    return detected


def check_declared_type(declared: str | None, detected: MediaType) -> MediaType:
    """Reconcile the client's ``file_type`` with the detected one.

    No declaration accepts the detection.  A declaration must be one of
    :data:`FILE_TYPES` and agree with the content, except that a container that
    may hold sound only (MP4, WebM, Matroska, 3GP, MOV) may be declared
    ``audio``.  Failures raise :class:`ValidationFailed` with
    ``details={"file_type": [...]}``.
    """
    if declared is None or not str(declared).strip():
        return detected
    wanted = str(declared).strip().lower()
    if wanted not in FILE_TYPES:
        raise ValidationFailed(
            details={"file_type": [f"Invalid file type. Must be one of: {', '.join(FILE_TYPES)}"]}
        )
    if wanted == detected.file_type:
        return detected
    if wanted == "audio" and detected.mime in _AUDIO_CAPABLE_VIDEO:
        return MediaType("audio", _AUDIO_CAPABLE_VIDEO[detected.mime])
    raise ValidationFailed(
        details={
            "file_type": [
                f"Declared file type '{wanted}' does not match the file content, "
                f"which is {detected.file_type} ({detected.mime})"
            ]
        }
    )
