"""Text layout and drawing for scene cards (Pillow).

Layout (wrapping, pagination) and drawing live together so the lines the
storyboard stores are exactly the lines the card draws: both measure with the
same fonts, the same fallback runs and the same shaping.

How a line is measured and drawn:

1. it is cut into grapheme clusters (a base character with its combining
   marks, ZWJ emoji sequences, flags, keycaps), so nothing is split inside a
   visible character;
2. each cluster gets a font from the fallback chain (fonts.py): emoji go to
   the colour emoji font, neutral characters (spaces, punctuation) stay with
   the previous run's font so an Arabic or Japanese sentence keeps one run;
3. clusters get a bidi level (a run-level subset of the Unicode bidi
   algorithm: strong L/R, numbers as L, neutrals take the direction of their
   neighbours or the line's), runs are reordered right-to-left where needed;
4. every run is shaped by raqm/HarfBuzz in its own direction, so Arabic is
   joined and mirrored correctly inside the run.

Wrapping breaks after spaces, and anywhere between CJK characters except
before closing punctuation / small kana and after opening brackets (a small
kinsoku rule).  A word wider than the frame is broken between clusters.
Text that does not fit on one card is paginated, never shrunk.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from pipeline.stages.fonts import Face, FontChain, guess_cjk_locale, resolve_chain

POSITIONS = ("top", "center", "bottom")

# Emoji_Presentation=Yes code points below U+1F000 (Unicode emoji-data).
_BMP_EMOJI_RANGES = (
    (0x231A, 0x231B), (0x23E9, 0x23EC), (0x23F0, 0x23F0), (0x23F3, 0x23F3),
    (0x25FD, 0x25FE), (0x2614, 0x2615), (0x2648, 0x2653), (0x267F, 0x267F),
    (0x2693, 0x2693), (0x26A1, 0x26A1), (0x26AA, 0x26AB), (0x26BD, 0x26BE),
    (0x26C4, 0x26C5), (0x26CE, 0x26CE), (0x26D4, 0x26D4), (0x26EA, 0x26EA),
    (0x26F2, 0x26F3), (0x26F5, 0x26F5), (0x26FA, 0x26FA), (0x26FD, 0x26FD),
    (0x2705, 0x2705), (0x270A, 0x270B), (0x2728, 0x2728), (0x274C, 0x274C),
    (0x274E, 0x274E), (0x2753, 0x2755), (0x2757, 0x2757), (0x2795, 0x2797),
    (0x27B0, 0x27B0), (0x27BF, 0x27BF), (0x2B1B, 0x2B1C), (0x2B50, 0x2B50),
    (0x2B55, 0x2B55),
)  # fmt: skip
# Kinsoku: never start a line with these, never end one with the openers.
_NO_LINE_START = set(
    "、。，．・：；？！゛゜ー―‐〜～…‥々ゝゞヽヾぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶ"
    "」』）］｝〕〉》】〙〗〟’”｠»)]},.!?%:;"
)
_NO_LINE_END = set("「『（［｛〔〈《【〘〖〝‘“｟«([{")
_SENTENCE_END = tuple(".!?。！？…")
_IGNORABLE = {0x200C, 0x200D, 0xFE0E, 0xFE0F, 0x20E3}


# --------------------------------------------------------------------------
# Character classes


def _is_emoji_presentation(cp: int) -> bool:
    if cp >= 0x1F000:
        return True
    return any(lo <= cp <= hi for lo, hi in _BMP_EMOJI_RANGES)


def _is_regional_indicator(cp: int) -> bool:
    return 0x1F1E6 <= cp <= 0x1F1FF


def is_ideographic(cp: int) -> bool:
    """Scripts written without spaces, where a line may break between characters."""
    return (
        0x2E80 <= cp <= 0x2FDF  # CJK radicals
        or 0x3000 <= cp <= 0x30FF  # CJK punctuation, kana
        or 0x3100 <= cp <= 0x31FF
        or 0x3400 <= cp <= 0x4DBF
        or 0x4E00 <= cp <= 0x9FFF
        or 0xF900 <= cp <= 0xFAFF
        or 0xFF00 <= cp <= 0xFFEF  # full/half-width forms
        or 0x20000 <= cp <= 0x3FFFF
    )


def clusters(text: str) -> list[str]:
    """Grapheme clusters, close enough to UAX #29 for drawing and breaking."""
    out: list[str] = []
    for ch in text:
        cp = ord(ch)
        if out:
            prev = out[-1]
            joins = (
                unicodedata.category(ch) in ("Mn", "Me", "Mc")
                or cp in (0x200D, 0xFE0E, 0xFE0F, 0x20E3)
                or 0x1F3FB <= cp <= 0x1F3FF  # skin tones
                or 0xE0020 <= cp <= 0xE007F  # tag sequences (subdivision flags)
                or prev.endswith("\u200d")
                or (
                    _is_regional_indicator(cp)
                    and len(prev) == 1
                    and _is_regional_indicator(ord(prev))
                )
            )
            if joins:
                out[-1] = prev + ch
                continue
        out.append(ch)
    return out


def _is_emoji_cluster(cluster: str) -> bool:
    cps = [ord(c) for c in cluster]
    if 0xFE0E in cps:  # explicit text presentation
        return False
    if 0xFE0F in cps or 0x20E3 in cps or 0x200D in cps:
        return True
    return _is_emoji_presentation(cps[0])


def _bidi_class(cluster: str) -> str:
    """'L', 'R', or 'N' (neutral) for the cluster's base character."""
    cls = unicodedata.bidirectional(cluster[0])
    if cls in ("R", "AL"):
        return "R"
    if cls in ("L", "EN", "AN"):
        return "L"
    return "N"


def _is_neutral(cluster: str) -> bool:
    return unicodedata.category(cluster[0])[0] in ("Z", "P", "S", "N") and not _is_emoji_cluster(
        cluster
    )


# --------------------------------------------------------------------------
# Runs: font fallback + bidi


@dataclass(frozen=True)
class Run:
    text: str
    face: Face
    rtl: bool


def line_direction_rtl(text: str) -> bool:
    """Paragraph direction from the first strong character (UAX #9 P2)."""
    for ch in text:
        cls = unicodedata.bidirectional(ch)
        if cls == "L":
            return False
        if cls in ("R", "AL"):
            return True
    return False


def itemize(line: str, chain: FontChain) -> list[Run]:
    """Runs of ``line`` in *visual* order (left to right), each with one font."""
    parts = clusters(line)
    if not parts:
        return []
    faces: list[Face] = []
    texts: list[str] = []
    prev: Face | None = None
    emoji = chain.emoji
    for cl in parts:
        face: Face | None = None
        text = cl
        if emoji is not None and _is_emoji_cluster(cl) and emoji.covers(ord(cl[0])):
            face = emoji
        else:
            cps = [ord(c) for c in cl if ord(c) not in _IGNORABLE]
            base_only = [ord(cl[0])]
            neutral_prev = prev if _is_neutral(cl) and prev is not None else None
            face = chain.face_for(cps or base_only, prefer=neutral_prev) or chain.face_for(
                base_only, prefer=neutral_prev
            )
            if face is None:
                # No installed font has it: draw the replacement glyph rather
                # than an empty box.
                text = "\ufffd"
                face = chain.face_for([0xFFFD]) or chain.primary
        faces.append(face)
        texts.append(text)
        prev = face
    levels = _levels([_bidi_class(cl) for cl in parts], line_direction_rtl(line))
    # Group consecutive clusters sharing face and level.
    runs: list[tuple[int, Face, str]] = []
    for lvl, face, text in zip(levels, faces, texts, strict=True):
        if runs and runs[-1][0] == lvl and runs[-1][1] == face:
            runs[-1] = (lvl, face, runs[-1][2] + text)
        else:
            runs.append((lvl, face, text))
    # UAX #9 L2: from the highest level down to the lowest odd one, reverse
    # every maximal sequence of runs at that level or above.
    max_level = max(r[0] for r in runs)
    lowest_odd = min((r[0] for r in runs if r[0] % 2), default=max_level + 1)
    for level in range(max_level, lowest_odd - 1, -1):
        i = 0
        while i < len(runs):
            if runs[i][0] >= level:
                j = i
                while j < len(runs) and runs[j][0] >= level:
                    j += 1
                runs[i:j] = runs[i:j][::-1]
                i = j
            else:
                i += 1
    return [Run(text=t, face=f, rtl=bool(lvl % 2)) for lvl, f, t in runs]


def _levels(classes: list[str], rtl: bool) -> list[int]:
    base = 1 if rtl else 0
    strong = {"L": 2 if rtl else 0, "R": 1}
    resolved: list[str] = list(classes)
    # Neutrals between two strong characters of one direction take it;
    # otherwise they take the paragraph direction (UAX #9 N1/N2).
    n = len(classes)
    i = 0
    while i < n:
        if resolved[i] != "N":
            i += 1
            continue
        j = i
        while j < n and resolved[j] == "N":
            j += 1
        before = resolved[i - 1] if i > 0 else ("R" if rtl else "L")
        after = resolved[j] if j < n else ("R" if rtl else "L")
        fill = before if before == after else ("R" if rtl else "L")
        for k in range(i, j):
            resolved[k] = fill
        i = j
    return [strong.get(c, base) for c in resolved]


# --------------------------------------------------------------------------
# Measuring and wrapping


class TextMeasurer:
    """Widths of lines at one pixel size with one font chain (cached)."""

    def __init__(self, chain: FontChain, px: int) -> None:
        self.chain = chain
        self.px = px
        self._cache: dict[str, float] = {}
        ascent, descent = chain.primary.font(px).getmetrics()
        self.ascent = ascent
        self.descent = descent

    def run_width(self, run: Run) -> float:
        font = run.face.font(self.px)
        direction = "rtl" if run.rtl else "ltr"
        return float(font.getlength(run.text, direction=direction)) * run.face.scale(self.px)

    def width(self, line: str) -> float:
        cached = self._cache.get(line)
        if cached is None:
            cached = sum(self.run_width(r) for r in itemize(line, self.chain))
            if len(self._cache) < 4096:
                self._cache[line] = cached
        return cached


def _break_units(paragraph: str) -> list[str]:
    """Pieces of a paragraph between which a line may break."""
    parts = clusters(paragraph)
    units: list[str] = []
    current = ""
    for i, cl in enumerate(parts):
        if current and _may_break_before(parts, i):
            units.append(current)
            current = ""
        current += cl
    if current:
        units.append(current)
    return units


def _may_break_before(parts: list[str], i: int) -> bool:
    prev, cur = parts[i - 1], parts[i]
    if cur.isspace():
        return False  # spaces stay at the end of the previous line
    if prev.isspace():
        return True
    if cur[0] in _NO_LINE_START or prev[-1] in _NO_LINE_END:
        return False
    if is_ideographic(ord(prev[0])) or is_ideographic(ord(cur[0])):
        return True
    if _is_emoji_cluster(prev) or _is_emoji_cluster(cur):
        return True
    # After a hyphen or slash inside a long compound.
    return prev in ("-", "/", "\u2010", "\u2013") and cur[0].isalnum()


def wrap(text: str, measurer: TextMeasurer, max_width: float) -> list[str]:
    """Wrap text into lines no wider than ``max_width``; hard breaks kept."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        lines.extend(_wrap_paragraph(paragraph, measurer, max_width))
    return lines


def _wrap_paragraph(paragraph: str, measurer: TextMeasurer, max_width: float) -> list[str]:
    lines: list[str] = []
    current = ""
    for unit in _break_units(paragraph):
        candidate = current + unit
        if measurer.width(candidate.rstrip()) <= max_width:
            current = candidate
            continue
        if current.strip():
            lines.append(current.rstrip())
        current = unit
        while measurer.width(current.rstrip()) > max_width:
            head, current = _hard_break(current, measurer, max_width)
            lines.append(head)
    if current.strip():
        lines.append(current.rstrip())
    return lines


def _hard_break(text: str, measurer: TextMeasurer, max_width: float) -> tuple[str, str]:
    """Split a too-wide unit at the last cluster boundary that fits (at least one)."""
    parts = clusters(text)
    lo, hi = 1, len(parts)
    while lo < hi:  # largest prefix length that fits
        mid = (lo + hi + 1) // 2
        if measurer.width("".join(parts[:mid]).rstrip()) <= max_width:
            lo = mid
        else:
            hi = mid - 1
    return "".join(parts[:lo]).rstrip(), "".join(parts[lo:]).lstrip()


# --------------------------------------------------------------------------
# Card geometry and pagination


@dataclass(frozen=True)
class CardMetrics:
    """Sizes of a card's text for one frame size and style."""

    width: int
    height: int
    family: str = "sans"
    position: str = "center"
    caption: bool = False  # burned-in subtitle layout: text in a band at the bottom
    body_px: int = 40
    title_px: int = 56
    margin_x: int = 90
    margin_y: int = 58

    @classmethod
    def for_frame(
        cls,
        width: int,
        height: int,
        *,
        family: str = "sans",
        position: str = "center",
        font_scale: float = 1.0,
        caption: bool = False,
    ) -> CardMetrics:
        if position not in POSITIONS:
            raise ValueError(f"text position must be one of {POSITIONS}")
        short = min(width, height)
        # Sizes follow the short side so portrait and square frames keep
        # readable lines of roughly 20-45 characters.
        body = round(short * (0.045 if caption else 0.058) * font_scale)
        return cls(
            width=width,
            height=height,
            family=family,
            position="bottom" if caption else position,
            caption=caption,
            body_px=max(12, body),
            title_px=max(14, round(short * 0.058 * font_scale * 1.4)),
            margin_x=round(width * 0.07),
            margin_y=round(height * 0.08),
        )

    @property
    def box_width(self) -> int:
        return self.width - 2 * self.margin_x

    @property
    def box_height(self) -> int:
        return self.height - 2 * self.margin_y

    @property
    def body_line_height(self) -> int:
        return math.ceil(self.body_px * 1.38)

    @property
    def title_line_height(self) -> int:
        return math.ceil(self.title_px * 1.3)

    @property
    def title_gap(self) -> int:
        return round(self.body_px * 0.6)

    def to_dict(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "family": self.family,
            "position": self.position,
            "caption": self.caption,
            "body_px": self.body_px,
            "title_px": self.title_px,
            "margin_x": self.margin_x,
            "margin_y": self.margin_y,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CardMetrics:
        return cls(**data)


@dataclass(frozen=True)
class CardText:
    """What one card shows: already-wrapped lines."""

    lines: tuple[str, ...] = ()
    title_lines: tuple[str, ...] = ()
    cjk_locale: str = "JP"

    @property
    def text(self) -> str:
        return " ".join(self.lines)


@dataclass
class CardFonts:
    """The chains and measurers a card needs (cached per family/locale/size)."""

    metrics: CardMetrics
    cjk_locale: str = "JP"
    _body: TextMeasurer | None = field(default=None, init=False)
    _title: TextMeasurer | None = field(default=None, init=False)

    @property
    def body(self) -> TextMeasurer:
        if self._body is None:
            chain = resolve_chain(self.metrics.family, cjk_locale=self.cjk_locale)
            self._body = TextMeasurer(chain, self.metrics.body_px)
        return self._body

    @property
    def title(self) -> TextMeasurer:
        if self._title is None:
            chain = resolve_chain(self.metrics.family, bold=True, cjk_locale=self.cjk_locale)
            self._title = TextMeasurer(chain, self.metrics.title_px)
        return self._title


MAX_TITLE_LINES = 3
CAPTION_MAX_LINES = 2


def paginate(text: str, title: str | None, metrics: CardMetrics) -> list[CardText]:
    """Wrap a scene's text and title; split it into as many cards as it needs."""
    locale = guess_cjk_locale(f"{title or ''}\n{text}")
    fonts = CardFonts(metrics, locale)
    title_lines: list[str] = []
    if title:
        title_lines = wrap(title, fonts.title, metrics.box_width)
        if len(title_lines) > MAX_TITLE_LINES:
            # A title that long is really text: keep every word, show the rest as body.
            overflow = " ".join(title_lines[MAX_TITLE_LINES:])
            title_lines = title_lines[:MAX_TITLE_LINES]
            text = f"{overflow}\n{text}" if text else overflow
    body_lines = wrap(text, fonts.body, metrics.box_width)
    capacity = _lines_per_card(metrics, len(title_lines))
    pages = _split_pages(body_lines, capacity)
    return [
        CardText(lines=tuple(page), title_lines=tuple(title_lines), cjk_locale=locale)
        for page in pages
    ]


def _lines_per_card(metrics: CardMetrics, title_lines: int) -> int:
    if metrics.caption:
        return CAPTION_MAX_LINES
    used = title_lines * metrics.title_line_height + (metrics.title_gap if title_lines else 0)
    return max(1, (metrics.box_height - used) // metrics.body_line_height)


def _split_pages(lines: list[str], capacity: int) -> list[list[str]]:
    if len(lines) <= capacity:
        return [lines]
    pages: list[list[str]] = []
    rest = lines
    while len(rest) > capacity:
        cut = capacity
        # Prefer ending a card where a sentence ends, if that keeps it at least half full.
        for i in range(capacity, max(1, capacity // 2), -1):
            if rest[i - 1].endswith(_SENTENCE_END):
                cut = i
                break
        pages.append(rest[:cut])
        rest = rest[cut:]
    if rest:
        pages.append(rest)
    return pages


# --------------------------------------------------------------------------
# Drawing


def hex_rgb(colour: str) -> tuple[int, int, int]:
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def gradient(width: int, height: int, colors: Sequence[str], angle_deg: float) -> Image.Image:
    """A linear two-colour gradient with a soft vignette, as an RGBA image."""
    c1 = np.array(hex_rgb(colors[0]), dtype=np.float32)
    c2 = np.array(hex_rgb(colors[-1]), dtype=np.float32)
    theta = math.radians(angle_deg)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    xs = xs / max(1, width - 1) - 0.5
    ys = ys / max(1, height - 1) - 0.5
    proj = xs * math.cos(theta) + ys * math.sin(theta)
    span = abs(0.5 * math.cos(theta)) + abs(0.5 * math.sin(theta))
    t = np.clip(proj / (2 * span) + 0.5, 0.0, 1.0)[..., None]
    rgb = c1 * (1 - t) + c2 * t
    vignette = 1.0 - 0.25 * np.clip((xs**2 + ys**2) * 2.0, 0.0, 1.0)[..., None]
    pixels = np.clip(rgb * vignette, 0, 255).astype(np.uint8)
    alpha = np.full((height, width, 1), 255, dtype=np.uint8)
    return Image.fromarray(np.concatenate([pixels, alpha], axis=2))  # 4 channels: RGBA


@dataclass(frozen=True)
class CardColors:
    text: str = "#FFFFFF"
    shadow: str = "#000000"
    panel_alpha: int = 0  # >0 draws a dark panel behind text (busy backgrounds)


def draw_card(
    card: CardText,
    metrics: CardMetrics,
    *,
    colors: CardColors | None = None,
    background: Image.Image | None = None,
) -> Image.Image:
    """Draw a card as an RGBA image of the frame size.

    With ``background`` (e.g. a gradient) the card is opaque; without it the
    card is transparent except for the text, to be laid over an image/video.
    """
    colors = colors or CardColors()
    size = (metrics.width, metrics.height)
    canvas = background.convert("RGBA") if background is not None else Image.new("RGBA", size)
    if canvas.size != size:
        raise ValueError(f"background is {canvas.size}, card is {size}")
    fonts = CardFonts(metrics, card.cjk_locale)
    placed = list(_place_lines(card, metrics, fonts))
    if not placed:
        return canvas
    text_layer = Image.new("RGBA", size)
    if colors.panel_alpha or metrics.caption:
        _draw_panels(text_layer, placed, metrics, colors.panel_alpha or 150)
    shadow = Image.new("RGBA", size)
    for line in placed:
        _draw_line(shadow, line, hex_rgb(colors.shadow), emoji=False)
    blur = max(1.0, metrics.body_px * 0.06)
    shadow = shadow.filter(ImageFilter.GaussianBlur(blur))
    offset = max(1, metrics.body_px // 20)
    text_layer.alpha_composite(shadow, (offset, offset))
    for line in placed:
        _draw_line(text_layer, line, hex_rgb(colors.text), emoji=True)
    canvas.alpha_composite(text_layer)
    return canvas


@dataclass(frozen=True)
class _PlacedLine:
    text: str
    measurer: TextMeasurer
    x: float
    baseline: float
    width: float


def _place_lines(card: CardText, metrics: CardMetrics, fonts: CardFonts) -> Iterable[_PlacedLine]:
    title_h = len(card.title_lines) * metrics.title_line_height
    body_h = len(card.lines) * metrics.body_line_height
    if metrics.caption:
        # Title in the middle of the frame, text as a subtitle band at the bottom.
        title_top = (metrics.height - title_h) / 2
        body_top: float = metrics.height - metrics.margin_y - body_h
    else:
        block = title_h + body_h + (metrics.title_gap if card.title_lines and card.lines else 0)
        if metrics.position == "top":
            title_top = float(metrics.margin_y)
        elif metrics.position == "bottom":
            title_top = float(metrics.height - metrics.margin_y - block)
        else:
            title_top = (metrics.height - block) / 2
        body_top = title_top + title_h + (metrics.title_gap if card.title_lines else 0)
    for lines, measurer, top, lh in (
        (card.title_lines, fonts.title, title_top, metrics.title_line_height),
        (card.lines, fonts.body, body_top, metrics.body_line_height),
    ):
        # Centre the font's ascent+descent inside the line box.
        pad = (lh - (measurer.ascent + measurer.descent)) / 2
        for i, text in enumerate(lines):
            width = measurer.width(text)
            yield _PlacedLine(
                text=text,
                measurer=measurer,
                x=(metrics.width - width) / 2,
                baseline=top + i * lh + pad + measurer.ascent,
                width=width,
            )


def _draw_panels(layer: Image.Image, placed: list[_PlacedLine], m: CardMetrics, alpha: int) -> None:
    draw = ImageDraw.Draw(layer)
    pad = round(m.body_px * 0.35)
    for line in placed:
        top = line.baseline - line.measurer.ascent - pad / 2
        bottom = line.baseline + line.measurer.descent + pad / 2
        draw.rounded_rectangle(
            (line.x - pad, top, line.x + line.width + pad, bottom),
            radius=pad,
            fill=(0, 0, 0, alpha),
        )


def _draw_line(
    layer: Image.Image, line: _PlacedLine, rgb: tuple[int, int, int], *, emoji: bool
) -> None:
    draw = ImageDraw.Draw(layer)
    x: float = line.x
    px = line.measurer.px
    for run in itemize(line.text, line.measurer.chain):
        width = line.measurer.run_width(run)
        if run.face.color_bitmap:
            if emoji:
                _paste_bitmap_run(layer, run, px, x, line.baseline)
        else:
            draw.text(
                (x, line.baseline),
                run.text,
                font=run.face.font(px),
                fill=(*rgb, 255),
                anchor="ls",
                direction="rtl" if run.rtl else "ltr",
            )
        x += width


def _paste_bitmap_run(layer: Image.Image, run: Run, px: int, x: float, baseline: float) -> None:
    """Colour emoji: draw at the font's only strike size, then scale to ``px``."""
    font = run.face.font(px)
    scale = run.face.scale(px)
    x0, y0, x1, y1 = font.getbbox(run.text, anchor="ls")
    w, h = max(1, math.ceil(x1 - x0)), max(1, math.ceil(y1 - y0))
    tile = Image.new("RGBA", (w, h))
    ImageDraw.Draw(tile).text((-x0, -y0), run.text, font=font, anchor="ls", embedded_color=True)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    tile = tile.resize(size, Image.Resampling.LANCZOS)
    layer.alpha_composite(tile, (round(x + x0 * scale), round(baseline + y0 * scale)))


KARAOKE_HIGHLIGHT = "#FFD54A"


def draw_karaoke_band(
    canvas: Image.Image,
    lines: Sequence[Sequence[str]],
    highlight: tuple[int, int] | None,
    metrics: CardMetrics,
    *,
    colors: CardColors | None = None,
    cjk_locale: str = "JP",
    spaced: bool = True,
) -> Image.Image:
    """Burn a caption cue into ``canvas`` (the burned-subtitle band at the
    bottom), the word ``highlight`` = (line, word) drawn in KARAOKE_HIGHLIGHT.

    The whole line is laid out as burned subtitles are, then the spoken word
    is drawn again over itself at its measured offset, so the highlight never
    shifts the line.
    """
    colors = colors or CardColors()
    joiner = " " if spaced else ""
    card = CardText(lines=tuple(joiner.join(words) for words in lines), title_lines=())
    fonts = CardFonts(metrics, cjk_locale)
    placed = list(_place_lines(card, metrics, fonts))
    layer = Image.new("RGBA", canvas.size)
    _draw_panels(layer, placed, metrics, colors.panel_alpha or 150)
    for line in placed:
        _draw_line(layer, line, hex_rgb(colors.text), emoji=True)
    if highlight is not None and highlight[0] < len(placed):
        row, index = highlight
        words = lines[row]
        line = placed[row]
        if index < len(words):
            prefix = joiner.join(words[:index]) + (joiner if index else "")
            x = line.x + line.measurer.width(prefix) if prefix else line.x
            word = _PlacedLine(
                text=words[index],
                measurer=line.measurer,
                x=x,
                baseline=line.baseline,
                width=line.measurer.width(words[index]),
            )
            _draw_line(layer, word, hex_rgb(KARAOKE_HIGHLIGHT), emoji=True)
    out = canvas.convert("RGBA")
    out.alpha_composite(layer)
    return out
