"""User-supplied names: upload filenames, subdirectory labels, Content-Disposition.

Filenames and subdirectories are *labels* kept in the database; bytes are
stored under content-addressed keys, so nothing here ever becomes a path on
disk.  They are still cleaned so they are safe to show, to put in headers and
to use when a client saves the download.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from t2m.errors import ValidationFailed

MAX_FILENAME_BYTES = 255  # common filesystem limit, in UTF-8 bytes
MAX_EXTENSION_CHARS = 16
MAX_SUBDIRECTORY_CHARS = 255
MAX_SUBDIRECTORY_PART_CHARS = 100
MAX_SUBDIRECTORY_DEPTH = 10
FALLBACK_FILENAME = "file"

# Windows refuses these base names whatever the extension ("con.txt").
_RESERVED = {
    "con", "prn", "aux", "nul",
    *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10)),
}  # fmt: skip
# Characters Windows forbids in names (the separators are handled before).
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*]')
_SPACES = re.compile(r"\s+")
# RFC 5987 attr-char: what may stay unescaped in filename*=.
_ATTR_SAFE = "!#$&+-.^_`|~"


def _printable(text: str) -> str:
    """Drop control, format (bidi overrides, zero-width), surrogate and private chars."""
    return "".join(
        ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn")
    )


def _truncate_utf8(text: str, max_bytes: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", errors="ignore")


def sanitize_filename(name: str | None) -> str:
    """A safe display/download name from a client-supplied filename.

    Keeps only the last path component (``/`` or ``\\``), removes control and
    invisible characters, replaces characters Windows forbids, trims dots and
    spaces at the ends, defuses reserved device names and limits the length to
    255 UTF-8 bytes while keeping the extension.  Never returns ``''``.
    """
    if not name:
        return FALLBACK_FILENAME
    text = unicodedata.normalize("NFC", str(name))
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = _printable(text)
    text = _WINDOWS_FORBIDDEN.sub("_", text)
    text = _SPACES.sub(" ", text).strip(" .")
    if not text:
        return FALLBACK_FILENAME
    stem, dot, extension = text.rpartition(".")
    if not dot:
        stem, extension = text, ""
    if stem.split(".")[0].strip().lower() in _RESERVED:
        text = "_" + text
        stem = "_" + stem
    if len(text.encode("utf-8")) > MAX_FILENAME_BYTES:
        if extension and len(extension) <= MAX_EXTENSION_CHARS and stem:
            suffix = "." + extension
            stem = _truncate_utf8(stem, MAX_FILENAME_BYTES - len(suffix.encode("utf-8")))
            text = stem.rstrip(" .") + suffix
        else:
            text = _truncate_utf8(text, MAX_FILENAME_BYTES).rstrip(" .")
    return text or FALLBACK_FILENAME


def validate_subdirectory(label: str | None) -> str:
    """Normalise a logical subdirectory label (``"uploads/2024"``) or raise.

    Returns ``''`` for no subdirectory.  Surrounding whitespace and a trailing
    ``/`` are dropped; ``..``/``.`` parts, absolute paths, drive letters,
    backslashes, NUL and control characters are refused with
    :class:`ValidationFailed` (``details={"subdirectory": [...]}``).
    """
    if label is None:
        return ""
    text = unicodedata.normalize("NFC", str(label)).strip()
    problems: list[str] = []
    if "\x00" in text:
        problems.append("Subdirectory must not contain NUL bytes")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text.replace("\x00", "")):
        problems.append("Subdirectory must not contain control characters")
    if "\\" in text:
        problems.append("Subdirectory must use '/' as separator, not '\\'")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        problems.append("Subdirectory must be relative, not an absolute path")
    text = text.rstrip("/")
    if len(text) > MAX_SUBDIRECTORY_CHARS:
        problems.append(f"Subdirectory must be at most {MAX_SUBDIRECTORY_CHARS} characters")
    parts = text.split("/") if text else []
    if any(part.strip() in (".", "..") for part in parts):
        problems.append("Subdirectory must not contain '.' or '..' parts")
    elif any(not part.strip() for part in parts) and not text.startswith("/"):
        problems.append("Subdirectory must not contain empty parts ('//')")
    if len(parts) > MAX_SUBDIRECTORY_DEPTH:
        problems.append(f"Subdirectory must be at most {MAX_SUBDIRECTORY_DEPTH} levels deep")
    if any(len(part) > MAX_SUBDIRECTORY_PART_CHARS for part in parts):
        problems.append(
            f"Each subdirectory part must be at most {MAX_SUBDIRECTORY_PART_CHARS} characters"
        )
    if problems:
        raise ValidationFailed(details={"subdirectory": problems})
    return "/".join(part.strip() for part in parts)


def _ascii_fallback(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name)
    ascii_only = decomposed.encode("ascii", "ignore").decode("ascii")
    ascii_only = re.sub(r'["\\%;]', "_", ascii_only)
    ascii_only = _SPACES.sub(" ", ascii_only).strip(" .")
    _, dot, extension = name.rpartition(".")
    if not ascii_only or ascii_only.startswith("."):
        ascii_only = FALLBACK_FILENAME
        if dot and extension.isascii() and extension.isalnum():
            ascii_only += "." + extension
    return ascii_only


def content_disposition(filename: str, inline: bool = False) -> str:
    """RFC 6266 ``Content-Disposition`` value for a download of ``filename``.

    Always carries an ASCII ``filename=""`` for old clients; adds
    ``filename*=UTF-8''…`` when the real name is not plain ASCII.
    """
    name = sanitize_filename(filename)
    disposition = "inline" if inline else "attachment"
    fallback = _ascii_fallback(name)
    value = f'{disposition}; filename="{fallback}"'
    if fallback != name:
        value += f"; filename*=UTF-8''{quote(name, safe=_ATTR_SAFE)}"
    return value
