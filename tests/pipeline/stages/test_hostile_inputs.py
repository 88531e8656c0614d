"""Uploaded media is read with local files and the accepted containers only.

A playlist (HLS, ffconcat) uploaded as media names other files and URLs;
ffmpeg picks its demuxer from the content, so without the whitelists a probe
or a render would open them.  The playlists here name a clip the test made
next to them (readable: today's ffmpeg would play it) and a URL on a server
the test runs (any request is recorded).
"""

from __future__ import annotations

import http.server
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from pipeline.stages.ffmpeg_runner import ffmpeg_executable, run_ffmpeg
from pipeline.stages.probe import ProbeError, probe_media
from pipeline.stages.render import RenderError, render_video
from pipeline.stages.script import parse_script
from pipeline.stages.storyboard_planner import build_storyboard
from pipeline.stages.thumbnails import ThumbnailError, make_thumbnails


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def url_server() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []

    class Handler(_Recorder):
        pass

    Handler.hits = hits
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def secret_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real video with sound (MPEG-TS) the playlists point at."""
    clip = tmp_path_factory.mktemp("hostile") / "secret.ts"
    subprocess.run(
        [
            *(ffmpeg_executable(), "-v", "error", "-y"),
            *("-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=2"),
            *("-f", "lavfi", "-i", "sine=d=2", "-shortest"),
            *("-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "mpegts", str(clip)),
        ],
        check=True,
    )
    return clip


def _hls(secret: Path, url: str) -> str:
    return (
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n"
        f"#EXTINF:2,\n{secret.name}\n#EXTINF:2,\n{url}/leak.ts\n#EXT-X-ENDLIST\n"
    )


def _hls_file(secret: Path, url: str, name: str) -> Path:
    """An HLS playlist beside ``secret`` naming it and a URL of ``url``."""
    playlist = secret.parent / name
    playlist.write_text(_hls(secret, url))
    return playlist


def _playlists(secret: Path, url: str) -> dict[str, str]:
    return {
        "hls.m3u8": _hls(secret, url),
        "list.ffconcat": f"ffconcat version 1.0\nfile {secret.name}\nfile {url}/c.ts\n",
    }


@pytest.mark.parametrize(("file_type", "mime"), [("audio", "audio/mpeg"), ("video", "video/mp4")])
def test_probe_refuses_playlists_and_opens_nothing(
    secret_clip: Path, url_server: tuple[str, list[str]], file_type: str, mime: str
) -> None:
    url, hits = url_server
    assert probe_media(secret_clip, "video", "video/mp2t")["duration"]  # readable itself
    for name, text in _playlists(secret_clip, url).items():
        playlist = secret_clip.parent / name
        playlist.write_text(text)
        with pytest.raises(ProbeError):
            probe_media(playlist, file_type, mime)
    assert hits == []


def test_render_refuses_a_playlist_background_and_music(
    tmp_path: Path, secret_clip: Path, url_server: tuple[str, list[str]]
) -> None:
    url, hits = url_server
    playlist = _hls_file(secret_clip, url, "background.m3u8")
    raw = b"[background: asset:clip]\n[duration: 1s]\nOver a clip."
    sb = build_storyboard(parse_script(raw), quality="480p", assets={"clip": "video/mp4"})
    with pytest.raises(RenderError) as info:
        render_video(sb, tmp_path / "bg", asset_paths={"clip": playlist})
    assert info.value.permanent
    assert list((tmp_path / "bg").iterdir()) == []

    music = build_storyboard(
        parse_script(b"[music: asset:tune]\n[duration: 1s]\nWith music."),
        quality="480p",
        assets={"tune": "audio/mpeg"},
        music="tune",
    )
    with pytest.raises(RenderError) as info:
        render_video(music, tmp_path / "music", asset_paths={"tune": playlist})
    assert info.value.permanent
    assert hits == []

    # The clip itself is a fine background, under the default memory cap.
    done = render_video(
        sb, tmp_path / "ok", asset_paths={"clip": secret_clip}, memory_limit_bytes=8192 * 2**20
    )
    assert done.primary.is_file()


def test_memory_limit_stops_ffmpeg_and_is_permanent(tmp_path: Path) -> None:
    args = ["-f", "lavfi", "-i", "color=s=8000x8000:d=0.04", "-vf", "format=rgba"]
    args += ["-frames:v", "1", "-f", "null", "-"]
    run_ffmpeg(args, cwd=tmp_path, total_duration_s=0.04, log_path=tmp_path / "a.log")
    with pytest.raises(RenderError, match="FFMPEG_MEMORY_LIMIT_MB") as info:
        run_ffmpeg(
            args,
            cwd=tmp_path,
            total_duration_s=0.04,
            log_path=tmp_path / "b.log",
            memory_limit_bytes=300 * 2**20,
        )
    assert info.value.permanent


def test_thumbnails_refuse_a_playlist(
    tmp_path: Path, secret_clip: Path, url_server: tuple[str, list[str]]
) -> None:
    url, hits = url_server
    playlist = _hls_file(secret_clip, url, "thumbs.m3u8")
    with pytest.raises(ThumbnailError, match="unreadable video"):
        make_thumbnails(playlist, "video", tmp_path / "thumbs")
    assert hits == []
