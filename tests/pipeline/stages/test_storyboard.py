from __future__ import annotations

import json

import pytest

from pipeline.stages.reading_time import reading_seconds
from pipeline.stages.script import parse_script
from pipeline.stages.storyboard import (
    RESOLUTIONS,
    AssetInfo,
    Storyboard,
    StoryboardError,
    Style,
)
from pipeline.stages.storyboard_planner import (
    CROSSFADE_S,
    MAX_AUTO_S,
    MIN_AUTO_S,
    build_storyboard,
)
from pipeline.stages.text_cards import CardFonts, _lines_per_card
from tests.samples import SCRIPTS

SAMPLE = b"""Welcome to our product tour.
In the next minute you will see how a plain text script becomes a finished video.

First, write your script. Every paragraph becomes a scene.

Thanks for watching!
"""


def board(raw: bytes = SAMPLE, **kwargs):
    return build_storyboard(parse_script(raw), **kwargs)


def test_timeline_is_contiguous_and_frame_exact():
    sb = board()
    assert sb.method == "text_cards"
    assert (sb.width, sb.height, sb.fps) == (1280, 720, 30)
    fade = round(CROSSFADE_S * sb.fps)
    frame = 0
    for i, scene in enumerate(sb.scenes):
        assert scene.start_frame == frame
        assert MIN_AUTO_S * sb.fps - 1 <= scene.slot_frames <= MAX_AUTO_S * sb.fps + 1
        nxt = sb.scenes[i + 1] if i + 1 < len(sb.scenes) else None
        assert scene.frames == scene.slot_frames + (nxt.transition_in_frames if nxt else 0)
        assert scene.transition_in_frames == (0 if i == 0 else fade)
        frame += scene.slot_frames
    assert sb.total_frames == frame
    assert sb.duration_s == pytest.approx(frame / 30)
    assert sb.scenes[0].transition_in == "none"
    assert sb.scenes[1].transition_in == "crossfade"


def test_reading_speed_orders_scenes_and_counts_cjk_characters():
    sb = board()
    short, long_ = sb.scenes[2], sb.scenes[0]
    assert long_.slot_frames > short.slot_frames
    assert reading_seconds("one two three four five") == pytest.approx(1.0 + 5 / 2.5)
    # Japanese has no spaces: 12 characters are read at 6 per second.
    assert reading_seconds("日本語のテキストも正しく表") == pytest.approx(1.0 + 12 / 6.0, abs=0.2)
    assert reading_seconds("한국어 문장도") > 1.0


def test_json_round_trip_and_summary():
    sb = board(subtitles="sidecar", style={"text_position": "top", "font_scale": 1.2})
    again = Storyboard.from_dict(json.loads(json.dumps(sb.to_dict())))
    assert again == sb
    summary = sb.summary()
    assert summary["method"] == "text_cards"
    assert summary["scenes"] == 3
    assert summary["duration_s"] == pytest.approx(sb.duration_s, abs=0.001)
    assert summary["renditions"] == ["720p", "480p"]


def test_target_duration_scales_automatic_scenes_and_keeps_explicit_ones():
    raw = b"Short one.\n\n[duration: 3s]\nPinned scene.\n\nAnother short scene here."
    sb = board(raw, target_duration=20)
    assert sb.total_frames == 20 * 30
    assert sb.scenes[1].slot_frames == 90
    assert sb.scenes[1].explicit_duration


def test_impossible_target_duration_is_rejected():
    with pytest.raises(StoryboardError, match="cannot fit"):
        board(target_duration=2)
    with pytest.raises(StoryboardError, match="explicit duration"):
        board(b"[duration: 2s]\nA", target_duration=30)


@pytest.mark.parametrize(("quality", "aspect"), list(RESOLUTIONS))
def test_resolution_table_has_even_sizes(quality, aspect):
    sb = board(b"Hi", quality=quality, aspect=aspect)
    assert (sb.width, sb.height) == RESOLUTIONS[(quality, aspect)]
    assert sb.width % 2 == 0 and sb.height % 2 == 0
    for rendition in sb.renditions:
        assert rendition.width % 2 == 0 and rendition.height % 2 == 0


def test_rendition_ladder():
    assert [r.quality for r in board(b"Hi", quality="1080p").renditions] == [
        "1080p",
        "720p",
        "480p",
    ]
    assert [r.quality for r in board(b"Hi", quality="480p").renditions] == ["480p"]
    portrait = board(b"Hi", quality="720p", aspect="9:16", renditions=["720p"])
    assert [(r.width, r.height) for r in portrait.renditions] == [(720, 1280)]


def test_long_scene_is_split_into_cards_that_fit():
    text = " ".join(f"Sentence number {i} has a few words." for i in range(60))
    sb = board(f"# Long\n{text}".encode(), quality="480p")
    parts = [s for s in sb.scenes if s.source_index == 0]
    assert len(parts) > 1
    assert all(p.parts == len(parts) for p in parts)
    fonts = CardFonts(sb.card)
    capacity = _lines_per_card(sb.card, len(parts[0].title_lines))
    words = []
    for p in parts:
        assert 1 <= len(p.lines) <= capacity
        for line in p.lines:
            assert fonts.body.width(line) <= sb.card.box_width
        words += " ".join(p.lines).split()
    assert words == text.split()  # nothing lost, nothing repeated
    # Cards prefer to end at a sentence end.
    assert all(p.lines[-1].endswith(".") for p in parts)


def test_long_cjk_scene_wraps_between_characters():
    text = "日本語のテキストも正しく表示されるべきです。" * 30
    sb = board(text.encode(), quality="480p", aspect="9:16")
    lines = [line for s in sb.scenes for line in s.lines]
    assert len(sb.scenes) > 1
    assert "".join(lines) == text
    assert not any(line.startswith(("。", "す")) and line[0] == "。" for line in lines)


def test_burned_subtitles_use_caption_layout():
    text = " ".join(["word"] * 80)
    sb = board(text.encode(), subtitles="burned", quality="480p")
    assert sb.card.caption and sb.card.position == "bottom"
    assert all(len(s.lines) <= 2 for s in sb.scenes)


def test_backgrounds_from_palette_colours_and_assets():
    raw = (
        b"A\n\n[background: #102030]\nB\n\n[background: asset:img]\nC\n\n[background: asset:vid]\nD"
    )
    sb = board(raw, assets={"img": "image/png", "vid": {"kind": "video", "duration_s": 3.0}})
    a, b, c, d = (s.background for s in sb.scenes)
    assert a.kind == "gradient" and len(a.colors) == 2
    assert b.kind == "gradient" and b.colors[0] == "#102030"
    assert c.kind == "image" and c.asset_id == "img" and c.motion
    assert d.kind == "video" and d.asset_duration_s == 3.0
    # Deterministic: the same script looks the same every time.
    assert board(raw, assets={"img": "image", "vid": "video"}).scenes[0].background == a


def test_asset_errors_are_permanent():
    with pytest.raises(StoryboardError, match="not among the job's assets") as info:
        board(b"[background: asset:nope]\nA")
    assert info.value.permanent
    with pytest.raises(StoryboardError, match="not image or video"):
        board(b"[background: asset:a]\nA", assets={"a": AssetInfo("audio")})
    with pytest.raises(StoryboardError, match="not audio"):
        board(b"A", assets={"a": "image/png"}, music="a")


def test_music_plan():
    sb = board(b"A\n\n[music: asset:m]", assets={"m": "audio/mpeg"})
    assert sb.music is not None and sb.music.asset_id == "m"
    assert sb.music.fade_out_s <= sb.duration_s / 4


@pytest.mark.parametrize(
    "style",
    [
        {"font_family": "comic"},
        {"text_color": "white"},
        {"text_position": "left"},
        {"font_scale": 5},
        {"background_colors": []},
        {"shadow": True},
    ],
)
def test_bad_style_is_rejected(style):
    with pytest.raises(StoryboardError):
        board(style=style)


def test_style_is_applied():
    sb = board(style={"text_color": "#222", "background_colors": ["#ffffff"], "font_scale": 0.8})
    assert sb.style.text_color == "#222222"
    assert sb.style.shadow_color == "#FFFFFF"  # dark text gets a light halo
    assert all(s.background.colors[0] == "#FFFFFF" for s in sb.scenes)
    assert sb.card.body_px < board().card.body_px
    assert isinstance(Style.from_dict(None), Style)


def test_poster_time_is_inside_the_fullest_card_and_never_in_a_fade():
    sb = board()
    t = sb.poster_time_s
    frame = round(t * sb.fps)
    scene = max(sb.scenes, key=lambda s: sum(map(len, s.lines)))
    assert scene.start_frame + scene.transition_in_frames <= frame
    assert frame < scene.start_frame + scene.slot_frames
    assert sb.edge_fade_frames <= frame < sb.total_frames - sb.edge_fade_frames


def test_multilingual_sample_storyboard():
    path = SCRIPTS / "multilingual.txt"
    sb = build_storyboard(parse_script(path.read_bytes()), quality="480p")
    locales = [s.cjk_locale for s in sb.scenes]
    assert locales[1] == "JP" and locales[2] == "SC" and locales[3] == "KR"


def test_bad_options():
    with pytest.raises(StoryboardError):
        board(quality="4k")
    with pytest.raises(StoryboardError):
        board(aspect="4:3")
    with pytest.raises(StoryboardError):
        board(subtitles="yes")
