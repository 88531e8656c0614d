from __future__ import annotations

import json

import pytest

from pipeline.stages.script import Background, Script, ScriptError, parse_script
from t2m.errors import ValidationFailed
from tests.samples import SCRIPTS


def sample(name: str) -> bytes:
    return (SCRIPTS / name).read_bytes()


def test_sample_script_paragraphs_become_scenes():
    script = parse_script(sample("sample_video_script.txt"))
    assert len(script.scenes) == 5
    first = script.scenes[0]
    assert first.text.startswith("Welcome to our product tour.\nIn the next minute")
    assert first.line_no == 1
    assert script.scenes[1].line_no == 4
    assert script.scenes[-1].text == "Thanks for watching!"
    assert all(s.title is None and s.duration_s is None for s in script.scenes)


def test_multilingual_and_long_samples_parse():
    multi = parse_script(sample("multilingual.txt"))
    assert len(multi.scenes) == 6
    assert multi.scenes[1].text.startswith("日本語")
    assert "🎬" in multi.scenes[5].text
    assert len(parse_script(sample("long_60_scenes.txt")).scenes) == 60


def test_unicode_is_nfc_normalised_and_newlines_unified():
    raw = "Cafe\u0301\r\nsecond line\rthird\u2028fourth\r\n\r\nnext".encode()
    script = parse_script(b"\xef\xbb\xbf" + raw)  # a BOM is not text
    assert script.scenes[0].text == "Café\nsecond line\nthird\nfourth"
    assert script.scenes[0].text[3] == "\u00e9"
    assert [s.text for s in script.scenes][1:] == ["next"]


def test_blank_lines_with_whitespace_separate_scenes_and_spaces_collapse():
    script = parse_script(b"one  \t two\n   \n\n three")
    assert [s.text for s in script.scenes] == ["one two", "three"]
    assert script.scenes[1].line_no == 4


def test_markup_title_and_directives():
    raw = b"""# The Title
[Duration: 4s]
[background: #abc]
[transition: cut]
Body text here.

[background: asset:file_123]
[duration: 1500ms]
Photo scene.

[background: #112233, #445566]
Gradient.

[music: asset:song-1]
"""
    script = parse_script(raw)
    a, b, c = script.scenes
    assert a.title == "The Title"
    assert a.text == "Body text here."
    assert a.duration_s == 4.0
    assert a.background == Background(kind="color", colors=("#AABBCC",))
    assert a.transition == "cut"
    assert b.background == Background(kind="asset", asset_id="file_123")
    assert b.duration_s == 1.5
    assert c.background is not None and c.background.colors == ("#112233", "#445566")
    assert script.music_asset_id == "song-1"
    assert script.asset_ids == ("file_123", "song-1")


def test_plain_text_that_looks_like_markup():
    script = parse_script(b"#hashtag stays text\n\\[Note: shown]\n\\# not a title\n[applause]")
    scene = script.scenes[0]
    assert scene.title is None
    assert scene.text == "#hashtag stays text\n[Note: shown]\n# not a title\n[applause]"


def test_title_only_scene_is_allowed():
    assert parse_script(b"# Chapter one").scenes[0].title == "Chapter one"


def test_round_trip_through_json():
    script = parse_script(b"# T\n[duration: 2s]\n[background: asset:x1]\nHello\n\nWorld")
    again = Script.from_dict(json.loads(json.dumps(script.to_dict())))
    assert again == script


@pytest.mark.parametrize(
    ("raw", "message", "line"),
    [
        (b"hello\x00world", "NUL", None),
        (b"fine\n\xff\xfe broken", "UTF-8", 2),
        (b"ok\nbell \x07 here", "control character", 2),
        (b"text\n[colour: red]", "unknown directive 'colour'", 2),
        (b"a\n\nb\n[duration: soon]", "bad duration", 4),
        (b"a\n[duration: 0.1s]", "outside", 2),
        (b"a\n[duration: 2s]\n[duration: 3s]", "twice", 3),
        (b"a\n[background: red]", "bad background", 2),
        (b"a\n[transition: wipe]", "bad transition", 2),
        (b"a\n[background: asset:]", "bad asset id", 2),
        (b"[music: asset:a]\n\n[music: asset:b]\n\ntext", "music is already set", 3),
        (b"   \n\n  ", "no scenes", None),
        (b"[duration: 3s]", "no text", 1),
    ],
)
def test_bad_scripts_are_rejected_with_line_numbers(raw, message, line):
    with pytest.raises(ScriptError) as info:
        parse_script(raw)
    assert message in str(info.value)
    assert info.value.line_no == line
    assert info.value.permanent is True
    assert isinstance(info.value, ValidationFailed)


def test_binary_file_is_rejected():
    png_header = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
    with pytest.raises(ScriptError, match=r"binary|UTF-8"):
        parse_script(png_header)


def test_size_limit():
    with pytest.raises(ScriptError, match="limit is 100"):
        parse_script(b"x" * 101, max_bytes=100)
    assert parse_script(b"x" * 100, max_bytes=100).scenes[0].text == "x" * 100
    with pytest.raises(ScriptError, match="102400"):
        parse_script(b"word " * 30000)


def test_scene_limit():
    raw = "\n\n".join(f"scene {i}" for i in range(4)).encode()
    assert len(parse_script(raw, max_scenes=4).scenes) == 4
    with pytest.raises(ScriptError, match="more than 3 scenes") as info:
        parse_script(raw, max_scenes=3)
    assert info.value.line_no == 7
    many = "\n\n".join(f"s{i}" for i in range(201)).encode()
    with pytest.raises(ScriptError, match="200"):
        parse_script(many)
