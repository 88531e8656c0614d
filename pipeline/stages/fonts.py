"""Find the fonts text cards are drawn with, and pick one per character.

No single font covers Latin, Arabic, CJK and emoji, so a card draws each run
of text with the first font of a fallback *chain* that has every character of
the run.  Coverage is read from the fonts' cmap tables (fontTools), never
guessed, so a character is only drawn with a font that has a real glyph for
it: that is what keeps tofu boxes off the screen.

Fonts come from Debian packages (see ``system-packages.txt``) and are found
by file name under the usual font directories.  A missing required font is a
deployment problem, reported with the package that provides it.

Noto Color Emoji is a bitmap (CBDT) font with a single 109 px strike: it can
only be opened at that size and is scaled when drawn (see text_cards).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fontTools.ttLib import TTCollection, TTFont
from PIL import ImageFont, features

DEFAULT_FONT_DIRS: tuple[Path, ...] = (
    Path("/usr/share/fonts"),
    Path("/usr/local/share/fonts"),
    Path.home() / ".local/share/fonts",
    Path.home() / ".fonts",
)
EMOJI_STRIKE_PX = 109
FAMILIES = ("sans", "serif")
CJK_LOCALES = ("JP", "KR", "SC", "TC", "HK")


class FontNotFound(RuntimeError):
    """A required font file is not installed on this machine."""


@dataclass(frozen=True)
class FaceSpec:
    role: str
    files: tuple[str, ...]  # candidate file names, best first
    package: str
    required: bool = True
    color_bitmap: bool = False
    cjk: bool = False  # a .ttc holding one face per CJK locale


def _chain_spec(family: str, bold: bool) -> tuple[FaceSpec, ...]:
    w = "Bold" if bold else "Regular"
    latin: tuple[str, ...]
    arabic: tuple[str, ...]
    hebrew: tuple[str, ...]
    cjk: tuple[str, ...]
    if family == "serif":
        latin = (f"NotoSerif-{w}.ttf", f"DejaVuSerif{'-Bold' if bold else ''}.ttf")
        arabic = (f"NotoNaskhArabic-{w}.ttf", f"NotoSansArabic-{w}.ttf")
        hebrew = (f"NotoSerifHebrew-{w}.ttf", f"NotoSansHebrew-{w}.ttf")
        cjk = (f"NotoSerifCJK-{w}.ttc", f"NotoSansCJK-{w}.ttc")
    else:
        latin = (f"NotoSans-{w}.ttf", f"DejaVuSans{'-Bold' if bold else ''}.ttf")
        arabic = (f"NotoSansArabic-{w}.ttf", f"NotoNaskhArabic-{w}.ttf")
        hebrew = (f"NotoSansHebrew-{w}.ttf",)
        cjk = (f"NotoSansCJK-{w}.ttc",)
    return (
        FaceSpec("latin", latin, "fonts-noto-core"),
        FaceSpec("arabic", arabic, "fonts-noto-core"),
        FaceSpec("hebrew", hebrew, "fonts-noto-core", required=False),
        FaceSpec("devanagari", (f"NotoSansDevanagari-{w}.ttf",), "fonts-noto-core", False),
        FaceSpec("thai", (f"NotoSansThai-{w}.ttf",), "fonts-noto-core", required=False),
        FaceSpec("symbols", ("NotoSansSymbols-Regular.ttf",), "fonts-noto-core", False),
        FaceSpec("symbols2", ("NotoSansSymbols2-Regular.ttf",), "fonts-noto-core", False),
        FaceSpec("math", ("NotoSansMath-Regular.ttf",), "fonts-noto-core", required=False),
        # After the symbol fonts so arrows and stars in Latin text keep Latin
        # proportions; CJK punctuation still stays in CJK runs (text_cards
        # prefers the previous run's face for neutral characters).
        FaceSpec("cjk", (*cjk, "NotoSansCJK-Regular.ttc"), "fonts-noto-cjk", cjk=True),
        # DejaVu has arrows, maths, box drawing and U+FFFD: the last text resort.
        FaceSpec(
            "dejavu",
            (f"DejaVuSans{'-Bold' if bold else ''}.ttf", "DejaVuSans.ttf"),
            "fonts-dejavu-core",
        ),
        FaceSpec("emoji", ("NotoColorEmoji.ttf",), "fonts-noto-color-emoji", color_bitmap=True),
    )


@dataclass(frozen=True)
class Face:
    """One loadable font face: a file (and index inside a .ttc)."""

    role: str
    path: Path
    index: int = 0
    color_bitmap: bool = False

    def covers(self, codepoint: int) -> bool:
        return codepoint in _coverage(self.path, self.index)

    def font(self, px: int) -> ImageFont.FreeTypeFont:
        size = EMOJI_STRIKE_PX if self.color_bitmap else px
        return _load_font(self.path, self.index, size)

    def scale(self, px: int) -> float:
        """Factor from the loaded size to the wanted pixel size (bitmap fonts only)."""
        return px / EMOJI_STRIKE_PX if self.color_bitmap else 1.0


@dataclass(frozen=True)
class FontChain:
    family: str
    bold: bool
    faces: tuple[Face, ...]

    @property
    def primary(self) -> Face:
        return self.faces[0]

    @property
    def emoji(self) -> Face | None:
        return next((f for f in self.faces if f.color_bitmap), None)

    def text_faces(self) -> Iterable[Face]:
        return (f for f in self.faces if not f.color_bitmap)

    def face_for(self, codepoints: Sequence[int], *, prefer: Face | None = None) -> Face | None:
        """First text face having every codepoint; ``prefer`` wins when it has them."""
        if prefer is not None and not prefer.color_bitmap and all(map(prefer.covers, codepoints)):
            return prefer
        for face in self.text_faces():
            if all(map(face.covers, codepoints)):
                return face
        return None


def check_text_engine() -> None:
    """Arabic shaping and bidi need Pillow's raqm layout (libraqm + FriBiDi)."""
    if not features.check("raqm"):
        raise FontNotFound(
            "Pillow's raqm text layout is unavailable, so Arabic/Indic text cannot be shaped; "
            "install the Debian package libfribidi0 (Pillow wheels bundle raqm and HarfBuzz "
            "but load FriBiDi from the system)"
        )


def resolve_chain(
    family: str = "sans",
    *,
    bold: bool = False,
    cjk_locale: str = "JP",
    font_dirs: Sequence[Path] | None = None,
) -> FontChain:
    """The fallback chain for a family; raises FontNotFound naming the package."""
    if family not in FAMILIES:
        raise ValueError(f"unknown font family {family!r}; use one of {FAMILIES}")
    if cjk_locale not in CJK_LOCALES:
        raise ValueError(f"unknown CJK locale {cjk_locale!r}")
    dirs = tuple(font_dirs) if font_dirs is not None else DEFAULT_FONT_DIRS
    return _resolve_chain(family, bold, cjk_locale, dirs)


@functools.lru_cache(maxsize=32)
def _resolve_chain(family: str, bold: bool, cjk_locale: str, dirs: tuple[Path, ...]) -> FontChain:
    index = _font_index(dirs)
    faces: list[Face] = []
    missing: list[str] = []
    for spec in _chain_spec(family, bold):
        path = next((index[name] for name in spec.files if name in index), None)
        if path is None:
            if spec.required:
                missing.append(f"{spec.files[0]} (Debian package {spec.package})")
            continue
        face_index = _cjk_face_index(path, cjk_locale) if spec.cjk else 0
        faces.append(Face(spec.role, path, face_index, spec.color_bitmap))
    if missing:
        searched = ", ".join(str(d) for d in dirs)
        raise FontNotFound(f"missing fonts: {'; '.join(missing)} (searched {searched})")
    return FontChain(family=family, bold=bold, faces=tuple(faces))


def _font_index(dirs: tuple[Path, ...]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for root in dirs:
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.suffix.lower() in (".ttf", ".otf", ".ttc") and path.name not in found:
                found[path.name] = path
    return found


_cmap_lock = threading.Lock()


@functools.lru_cache(maxsize=64)
def _coverage(path: Path, index: int) -> frozenset[int]:
    with _cmap_lock:  # fontTools objects are not thread-safe while lazily loading
        if path.suffix.lower() == ".ttc":
            collection = TTCollection(str(path), lazy=True)
            try:
                cmap = collection.fonts[index].getBestCmap() or {}
            finally:
                collection.close()
        else:
            font = TTFont(str(path), lazy=True)
            try:
                cmap = font.getBestCmap() or {}
            finally:
                font.close()
    return frozenset(cmap)


@functools.lru_cache(maxsize=16)
def _cjk_face_index(path: Path, locale: str) -> int:
    """Index of e.g. 'Noto Sans CJK SC' inside the collection (Han glyphs differ by locale)."""
    collection = TTCollection(str(path), lazy=True)
    try:
        for i, font in enumerate(collection.fonts):
            name = str(font["name"].getDebugName(1) or "")
            if name.endswith(f" {locale}") and "Mono" not in name:
                return i
    finally:
        collection.close()
    return 0


_fonts_local = threading.local()


def _load_font(path: Path, index: int, size: int) -> ImageFont.FreeTypeFont:
    # One cache per thread: a FreeType face must not be used by two threads
    # at once, and a worker process may render several jobs in parallel.
    cache: dict[tuple[Path, int, int], ImageFont.FreeTypeFont] | None = getattr(
        _fonts_local, "cache", None
    )
    if cache is None:
        cache = _fonts_local.cache = {}
    key = (path, index, size)
    font = cache.get(key)
    if font is None:
        if len(cache) > 256:
            cache.clear()
        engine = ImageFont.Layout.RAQM if features.check("raqm") else ImageFont.Layout.BASIC
        font = cache[key] = ImageFont.truetype(
            str(path), size=size, index=index, layout_engine=engine
        )
    return font


def guess_cjk_locale(text: str) -> str:
    """Pick the CJK face whose Han glyph shapes suit the text.

    Kana means Japanese and Hangul Korean; Han alone is taken as Simplified
    Chinese, the most common case for han-only text.
    """
    has_han = False
    for ch in text:
        cp = ord(ch)
        if 0x3040 <= cp <= 0x30FF or 0x31F0 <= cp <= 0x31FF:
            return "JP"
        if 0xAC00 <= cp <= 0xD7A3 or 0x1100 <= cp <= 0x11FF or 0x3130 <= cp <= 0x318F:
            return "KR"
        if 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF:
            has_han = True
    return "SC" if has_han else "JP"
