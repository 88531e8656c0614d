from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from pipeline.stages.fonts import FontNotFound, check_text_engine, resolve_chain
from pipeline.stages.text_cards import (
    CardMetrics,
    CardText,
    TextMeasurer,
    clusters,
    draw_card,
    gradient,
    itemize,
    paginate,
    wrap,
)
from tests.samples import SCRIPTS

PX = 48


@pytest.fixture(scope="module")
def chain():
    return resolve_chain("sans", cjk_locale="JP")


@pytest.fixture(scope="module")
def measurer(chain):
    return TextMeasurer(chain, PX)


def render(text: str, size=(900, 200)) -> np.ndarray:
    """Draw one line, white on black, through the real card drawing code."""
    metrics = CardMetrics(width=size[0], height=size[1], body_px=PX, margin_x=10, margin_y=10)
    black = Image.new("RGBA", size, (0, 0, 0, 255))
    card = draw_card(CardText(lines=(text,)), metrics, background=black)
    return np.asarray(card.convert("RGB")).astype(int)


def ink(pixels: np.ndarray) -> np.ndarray:
    return pixels.max(axis=2) > 80


def test_clusters_keep_visible_characters_whole():
    assert clusters("e\u0301a") == ["e\u0301", "a"]
    family = "👨\u200d👩\u200d👧"
    assert clusters(f"x{family}y") == ["x", family, "y"]
    assert clusters("🇯🇵🇫🇷") == ["🇯🇵", "🇫🇷"]
    assert clusters("1\ufe0f\u20e3!") == ["1\ufe0f\u20e3", "!"]
    assert clusters("👍🏽") == ["👍🏽"]


def test_fonts_are_chosen_per_run(chain):
    runs = itemize("Hello 日本 🎬 ok", chain)
    roles = [(r.text, r.face.role) for r in runs]
    assert roles[0] == ("Hello ", "latin")
    assert ("日本", "cjk") in [(t.strip(), role) for t, role in roles]
    assert any(role == "emoji" and "🎬" in t for t, role in roles)
    # Japanese punctuation stays in the CJK run instead of switching fonts.
    assert [r.face.role for r in itemize("日本語。テスト、です", chain)] == ["cjk"]


def test_bidi_runs_are_in_visual_order(chain):
    runs = [r for r in itemize("abc مرحبا def", chain) if r.text.strip()]
    assert [(r.text.strip(), r.rtl) for r in runs] == [
        ("abc", False),
        ("مرحبا", True),
        ("def", False),
    ]
    rtl_para = itemize("مرحبا abc بالعالم", chain)
    # Right-to-left paragraph: the first logical word is drawn rightmost.
    assert rtl_para[-1].text.strip() == "مرحبا"
    assert rtl_para[0].text.strip() == "بالعالم"
    assert any(r.text.strip() == "abc" and not r.rtl for r in rtl_para)


def test_latin_wraps_at_spaces_within_width(measurer):
    text = "The quick brown fox jumps over the lazy dog " * 4
    lines = wrap(text, measurer, 400)
    assert len(lines) > 2
    assert all(measurer.width(line) <= 400 for line in lines)
    assert " ".join(lines).split() == text.split()
    assert wrap("one\ntwo", measurer, 1000) == ["one", "two"]  # hard breaks kept


def test_cjk_breaks_between_characters_with_kinsoku(measurer):
    text = "日本語のテキストも正しく表示されるべきです。長い行は自然に折り返されます。" * 2
    lines = wrap(text, measurer, 300)
    assert "".join(lines) == text
    assert all(measurer.width(line) <= 300 for line in lines)
    assert not any(line[0] in "。、" for line in lines)  # no line starts with punctuation


def test_overlong_word_is_broken(measurer):
    lines = wrap("x" * 200, measurer, 300)
    assert "".join(lines) == "x" * 200 and all(measurer.width(ln) <= 300 for ln in lines)


def test_cjk_draws_real_glyphs_not_tofu():
    # Through our fallback chain two different ideographs look different...
    a, b = render("日"), render("本")
    assert ink(a).sum() > 50 and ink(b).sum() > 50
    assert (ink(a) != ink(b)).sum() > 50
    # ...while a Latin-only font draws both as the same .notdef box.
    latin = ImageFont.truetype(str(resolve_chain("sans").primary.path), PX)
    tofu = []
    for ch in "日本":
        img = Image.new("L", (100, 100))
        ImageDraw.Draw(img).text((10, 10), ch, font=latin, fill=255)
        tofu.append(np.asarray(img))
    assert np.array_equal(tofu[0], tofu[1])
    ours = render("日")
    img = Image.new("L", ours.shape[1::-1])
    assert not np.array_equal(ink(ours), np.asarray(img) > 0)


def test_emoji_are_drawn_in_colour():
    pixels = render("🎬🚀✅")
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    saturated = (np.abs(r - g) + np.abs(g - b) + np.abs(r - b)) > 120
    assert saturated.sum() > 200  # a colour bitmap, not a white outline or a box
    text_only = render("abc")
    assert ((np.abs(text_only[..., 0] - text_only[..., 2])) > 120).sum() == 0


def test_arabic_is_shaped_and_right_to_left(chain):
    check_text_engine()
    word = "مرحبا"
    face = chain.face_for([ord(c) for c in word])
    assert face is not None and face.role == "arabic"
    font = face.font(PX)
    shaped = font.getlength(word, direction="rtl")
    isolated = sum(font.getlength(ch, direction="rtl") for ch in word)
    assert shaped < isolated * 0.9  # joined letters are narrower than isolated forms
    # The drawn word differs from the same letters drawn one by one (unjoined).
    joined = ink(render(word))
    separate = ink(render("\u200c".join(word)))  # ZWNJ forbids joining
    assert (joined != separate).sum() > 100
    # Right to left: in "و مرحبا" the short first word (waw) must be drawn to
    # the right of the long second word.
    line = ink(render("و مرحبا")).any(axis=0)
    cols = np.where(line)[0]
    gaps = np.where(np.diff(cols) > 4)[0]
    assert len(gaps) >= 1
    split = gaps[np.argmax(np.diff(cols)[gaps])]
    left_width = cols[split] - cols[0]
    right_width = cols[-1] - cols[split + 1]
    assert right_width < left_width / 2


def test_multilingual_sample_has_a_font_for_every_character(chain):
    text = (SCRIPTS / "multilingual.txt").read_text()
    for line in text.splitlines():
        for run in itemize(line, chain):
            assert "\ufffd" not in run.text, line
            for cluster in clusters(run.text):
                assert run.face.covers(ord(cluster[0])), (cluster, run.face.role)


def test_missing_fonts_name_the_package(tmp_path):
    with pytest.raises(FontNotFound, match="fonts-noto"):
        resolve_chain("sans", font_dirs=[tmp_path])


def test_paginate_titles_and_capacity():
    metrics = CardMetrics.for_frame(854, 480)
    pages = paginate("word " * 300, "A title", metrics)
    assert len(pages) > 1
    assert all(p.title_lines == ("A title",) for p in pages)


def test_cards_are_frame_sized_opaque_or_transparent():
    metrics = CardMetrics.for_frame(854, 480)
    card = CardText(lines=("Hello",), title_lines=("Title",))
    opaque = draw_card(card, metrics, background=gradient(854, 480, ["#112233", "#445566"], 45))
    assert opaque.size == (854, 480) and opaque.getchannel("A").getextrema() == (255, 255)
    overlay = draw_card(card, metrics)
    alpha = np.asarray(overlay.getchannel("A"))
    assert alpha[0, 0] == 0 and alpha.max() == 255  # transparent except the text


def test_caption_layout_puts_text_at_the_bottom():
    metrics = CardMetrics.for_frame(854, 480, caption=True)
    overlay = draw_card(CardText(lines=("Subtitle line",)), metrics)
    rows = np.where(np.asarray(overlay.getchannel("A")).any(axis=1))[0]
    assert rows.min() > 480 * 0.6
