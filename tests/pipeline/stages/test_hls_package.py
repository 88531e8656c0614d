"""HLS packaging and seek previews with real ffmpeg, checked by a real playlist parser."""

from __future__ import annotations

import re
from pathlib import Path

import m3u8
import pytest
from PIL import Image

from pipeline.stages.hls_package import SEGMENT_SECONDS, can_stream_copy, package_hls
from pipeline.stages.seek_previews import interval_for, make_storyboard, thumbnails_track
from tests.support.media import h264_mp4

VTT = "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nHello there.\n"


@pytest.fixture(scope="module")
def renditions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("renditions")
    return {
        "360p": h264_mp4(work / "360p.mp4", height=360),
        "720p": h264_mp4(work / "720p.mp4", height=720),
    }


def test_every_playlist_parses_and_names_existing_files(
    renditions: dict[str, Path], tmp_path: Path
) -> None:
    captions = tmp_path / "subtitles.vtt"
    captions.write_text(VTT)
    result = package_hls(renditions, tmp_path / "hls", subtitles_vtt=captions)
    out = tmp_path / "hls"
    master = m3u8.load(str(out / "master.m3u8"))
    assert master.is_variant
    assert [p.uri for p in master.playlists] == ["360p/index.m3u8", "720p/index.m3u8"]
    for playlist in master.playlists:
        info = playlist.stream_info
        assert info.bandwidth >= info.average_bandwidth > 0
        assert info.resolution in ((640, 360), (1280, 720))
        # ultrafast encodes Constrained Baseline: profile 0x42, constraints 0xc0
        assert re.fullmatch(r"avc1\.42c0[0-9a-f]{2},mp4a\.40\.2", info.codecs)
        assert info.frame_rate == 25.0
        assert info.subtitles == "subs"
        variant = m3u8.load(str(out / playlist.uri))
        assert variant.playlist_type == "vod" and variant.is_endlist
        assert variant.segment_map[0].uri == "init.mp4"
        assert variant.target_duration <= SEGMENT_SECONDS
        # 2 s GOP, 4 s segments: the same cuts in every rendition.
        assert [s.duration for s in variant.segments] == [4.0, 4.0, 1.0]
        base = (out / playlist.uri).parent
        for name in ["init.mp4", *(s.uri for s in variant.segments)]:
            assert (base / name).stat().st_size > 0
    (subs,) = [m for m in master.media if m.type == "SUBTITLES"]
    assert (subs.group_id, subs.uri) == ("subs", "subs/index.m3u8")
    subtitle_playlist = m3u8.load(str(out / subs.uri))
    assert [s.uri for s in subtitle_playlist.segments] == ["subtitles.vtt"]
    assert (out / "subs" / "subtitles.vtt").read_text() == VTT
    assert result.has_subtitles and result.duration_s == pytest.approx(9.0, abs=0.1)
    # Playlists come last, the master at the very end.
    files = [p.name for p in result.files()]
    assert files[-1] == "master.m3u8" and not any(n.endswith(".m3u8") for n in files[:-4])


def test_without_captions_no_subtitle_group(renditions: dict[str, Path], tmp_path: Path) -> None:
    package_hls({"360p": renditions["360p"]}, tmp_path / "hls")
    master = m3u8.load(str(tmp_path / "hls" / "master.m3u8"))
    assert master.media == [] or not [m for m in master.media if m.type == "SUBTITLES"]
    assert "SUBTITLES" not in (tmp_path / "hls" / "master.m3u8").read_text()


def test_only_h264_is_copied(tmp_path: Path) -> None:
    not_video = tmp_path / "x.mp4"
    not_video.write_bytes(b"not a video")
    assert not can_stream_copy(not_video)


def test_storyboard_tiles_cover_the_video(renditions: dict[str, Path], tmp_path: Path) -> None:
    board = make_storyboard(renditions["720p"], tmp_path, duration_s=9.0, width=1280, height=720)
    assert (board.interval_s, board.tiles) == (2.0, 5)
    with Image.open(board.sprite) as sprite:
        assert sprite.size == (5 * 160, 90)
    lines = board.track.read_text().splitlines()
    assert lines[0] == "WEBVTT"
    cues = [line for line in lines if "#xywh=" in line]
    assert cues[0] == "storyboard.jpg#xywh=0,0,160,90"
    assert cues[-1] == "storyboard.jpg#xywh=640,0,160,90"
    assert "00:00:08.000 --> 00:00:09.000" in lines


def test_long_videos_get_a_bounded_sheet() -> None:
    assert interval_for(600) == 6
    track = thumbnails_track(600, 6, 100, 160, 90)
    assert track.count("#xywh=") == 100
    assert "storyboard.jpg#xywh=1440,810,160,90" in track
