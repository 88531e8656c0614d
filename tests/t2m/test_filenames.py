from __future__ import annotations

from urllib.parse import unquote

import pytest

from t2m.errors import ValidationFailed
from t2m.filenames import (
    MAX_FILENAME_BYTES,
    content_disposition,
    sanitize_filename,
    validate_subdirectory,
)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("/abs/path/photo.JPG", "photo.JPG"),
        ("C:\\Users\\me\\My Video.mp4", "My Video.mp4"),
        ("a\x00b\x01c.txt", "abc.txt"),
        ("line\r\nbreak.txt", "linebreak.txt"),
        ("evil\u202egnp.exe", "evilgnp.exe"),  # bidi override removed
        ("zero\u200bwidth.txt", "zerowidth.txt"),
        ('what?"<>|*:.txt', "what_______.txt"),
        ("  spaced   out  .txt  ", "spaced out .txt"),
        ("...hidden", "hidden"),
        ("trailing dots...", "trailing dots"),
        ("CON", "_CON"),
        ("con.txt", "_con.txt"),
        ("lpt1.tar.gz", "_lpt1.tar.gz"),
        ("console.txt", "console.txt"),
        ("Café.txt", "Café.txt"),
        ("", "file"),
        (None, "file"),
        ("...", "file"),
        ("/", "file"),
        ("\x00\x01", "file"),
    ],
)
def test_sanitize_filename(raw: str | None, clean: str) -> None:
    assert sanitize_filename(raw) == clean


def test_sanitize_filename_limits_length_keeping_extension() -> None:
    name = "é" * 300 + ".mp4"
    clean = sanitize_filename(name)
    assert clean.endswith(".mp4")
    assert len(clean.encode()) <= MAX_FILENAME_BYTES
    assert clean.startswith("é")
    long_extension = "a." + "x" * 400
    assert len(sanitize_filename(long_extension).encode()) <= MAX_FILENAME_BYTES


def test_sanitize_filename_nfc() -> None:
    assert sanitize_filename("Cafe\u0301.txt") == "Caf\u00e9.txt"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (None, ""),
        ("", ""),
        ("  ", ""),
        ("uploads/2024", "uploads/2024"),
        ("uploads/2024/", "uploads/2024"),
        ("projects/Été 2024", "projects/Été 2024"),
        ("a/b/c", "a/b/c"),
    ],
)
def test_validate_subdirectory_accepts(raw: str | None, clean: str) -> None:
    assert validate_subdirectory(raw) == clean


@pytest.mark.parametrize(
    "raw",
    [
        "../secrets",
        "a/../../b",
        "a/./b",
        "..",
        "/etc",
        "C:/Windows",
        "c:relative",
        "a\\b",
        "a\x00b",
        "a\nb",
        "a\x1bb",
        "a//b",
        "a/" * 11 + "b",
        "x" * 300,
        "a/" + "y" * 101,
    ],
)
def test_validate_subdirectory_rejects(raw: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_subdirectory(raw)
    details = caught.value.details
    assert list(details) == ["subdirectory"]
    assert details["subdirectory"] and all(isinstance(m, str) for m in details["subdirectory"])


def test_content_disposition_ascii() -> None:
    assert content_disposition("report.pdf") == 'attachment; filename="report.pdf"'
    assert content_disposition("clip.mp4", inline=True) == 'inline; filename="clip.mp4"'


def test_content_disposition_unicode() -> None:
    value = content_disposition("Résumé 世界.pdf")
    assert value.startswith('attachment; filename="Resume')
    fallback = value.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback.isascii() and fallback.endswith(".pdf")
    encoded = value.split("filename*=UTF-8''", 1)[1]
    assert " " not in encoded and unquote(encoded) == "Résumé 世界.pdf"


@pytest.mark.parametrize(
    "raw", ['a"b.txt', "a\\b.txt", "x\r\nSet-Cookie: y.txt", "100%;.txt", "世界.mp4", ""]
)
def test_content_disposition_is_header_safe(raw: str) -> None:
    value = content_disposition(raw)
    assert value.isascii()
    assert "\r" not in value and "\n" not in value
    fallback = value.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback and "\\" not in fallback and '"' not in fallback and ";" not in fallback
