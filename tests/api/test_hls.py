"""HLS endpoints: by token and by signed link; content types, caching, CORS,
ranges, the rewritten playlists, ffmpeg reading every variant of a signed
master URL, and what a delete stops."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import imageio_ffmpeg
import m3u8
import pytest

from api.app import create_app
from api.keys import STORAGE
from pipeline.workers.package_record import record_package
from t2m import signing
from t2m.cache_generation import bump_generations
from t2m.hls_links import hls_facts
from t2m.redis_client import create_redis
from tests.api.files_helpers import upload
from tests.api.hls_helpers import VTT, package_tree, stored_video, tree_files
from tests.support.media import png_bytes

URL_KEYS = ("hls_url", "storyboard_vtt_url", "storyboard_jpg_url")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A packaged tree (two renditions, captions, seek previews) to store per test."""
    return package_tree(tmp_path_factory.mktemp("hls"))


async def _signed_master(client, user, file_id: str) -> tuple[str, dict[str, str]]:
    response = await client.post(
        f"/api/v1/files/{file_id}/signed-url", headers=user.headers, json={"format": "hls"}
    )
    assert response.status == 200, await response.text()
    data = (await response.json())["data"]
    assert data["kind"] == "hls"
    parts = urlsplit(data["url"])
    assert parts.path == f"/api/v1/files/secure/{file_id}/hls/master.m3u8"
    return parts.path, dict(parse_qsl(parts.query))


async def test_by_token_types_caching_cors_and_ranges(client, db, make_user, tree):
    alice, bob = await make_user(), await make_user()
    job_id, file_id = await stored_video(client, db, alice, tree)
    for base in (f"/api/v1/files/{file_id}/hls", f"/api/v1/videos/{job_id}/hls"):
        master = await client.get(f"{base}/master.m3u8", headers=alice.headers)
        assert master.status == 200, await master.text()
        assert master.headers["Content-Type"] == "application/vnd.apple.mpegurl"
        assert master.headers["Cache-Control"] == "private, max-age=5"
        assert master.headers["Access-Control-Allow-Origin"] == "*"
        parsed = m3u8.loads(await master.text())
        assert [p.uri for p in parsed.playlists] == ["360p/index.m3u8", "720p/index.m3u8"]
        variant = m3u8.loads(
            await (await client.get(f"{base}/720p/index.m3u8", headers=alice.headers)).text()
        )
        segment = await client.get(
            f"{base}/720p/{variant.segments[0].uri}",
            headers={**alice.headers, "Range": "bytes=0-99"},
        )
        assert segment.status == 206
        assert segment.headers["Content-Type"] == "video/iso.segment"
        assert segment.headers["Content-Range"].startswith("bytes 0-99/")
        assert "immutable" in segment.headers["Cache-Control"]
        assert len(await segment.read()) == 100
        assert (await client.get(f"{base}/master.m3u8", headers=bob.headers)).status == 404
        assert (await client.get(f"{base}/master.m3u8")).status == 401
        # Only the packager's names exist in a tree.
        assert (await client.get(f"{base}/../x", headers=alice.headers)).status == 404
        assert (await client.get(f"{base}/720p/seg_99999.m4s", headers=alice.headers)).status == 404
    vtt = await client.get(f"/api/v1/files/{file_id}/storyboard.vtt", headers=alice.headers)
    assert vtt.status == 200 and vtt.headers["Content-Type"] == "text/vtt; charset=utf-8"
    assert "storyboard.jpg#xywh=0,0,160,90" in await vtt.text()
    jpg = await client.get(f"/api/v1/files/{file_id}/storyboard.jpg", headers=alice.headers)
    assert jpg.status == 200 and jpg.headers["Content-Type"] == "image/jpeg"
    # A picture has no tree.
    picture = (await upload(client, alice, png_bytes(color=(7, 7, 7)), "p.png"))["id"]
    response = await client.get(f"/api/v1/files/{picture}/hls/master.m3u8", headers=alice.headers)
    assert response.status == 404


async def test_signed_master_rewrites_every_reference(client, db, make_user, tree):
    alice = await make_user()
    _job_id, file_id = await stored_video(client, db, alice, tree)
    path, query = await _signed_master(client, alice, file_id)
    assert set(query) == {"kind", "user_id", "expires", "signature"}
    master = await client.get(path, params=query)  # no token
    assert master.status == 200, await master.text()
    text = await master.text()
    signed = "?" + "&".join(f"{k}={v}" for k, v in query.items())
    parsed = m3u8.loads(text)
    assert [p.uri for p in parsed.playlists] == [
        f"360p/index.m3u8{signed}",
        f"720p/index.m3u8{signed}",
    ]
    assert [m.uri for m in parsed.media] == [f"subs/index.m3u8{signed}"]
    base = path.rsplit("/", 1)[0]
    variant = m3u8.loads(await (await client.get(f"{base}/720p/index.m3u8", params=query)).text())
    assert variant.segment_map[0].uri == f"init.mp4{signed}"
    assert all(s.uri.endswith(signed) for s in variant.segments)
    segment = await client.get(f"{base}/720p/{variant.segments[0].uri}")
    assert segment.status == 200
    assert segment.headers["Cache-Control"] == "private, max-age=300, immutable"
    board = await client.get(f"{base}/storyboard.vtt", params=query)
    assert f"storyboard.jpg{signed}#xywh=0,0,160,90" in await board.text()
    subs = m3u8.loads(await (await client.get(f"{base}/subs/index.m3u8", params=query)).text())
    captions = await client.get(f"{base}/subs/{subs.segments[0].uri}")
    assert await captions.text() == VTT


async def test_ffmpeg_reads_every_variant_of_the_signed_master(client, db, make_user, tree):
    alice = await make_user()
    _job_id, file_id = await stored_video(client, db, alice, tree)
    path, query = await _signed_master(client, alice, file_id)
    url = str(client.make_url(path)) + "?" + "&".join(f"{k}={v}" for k, v in query.items())
    for variant in (0, 1):
        process = await asyncio.create_subprocess_exec(
            imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", url,
            "-map", f"0:p:{variant}:v", "-f", "null", "-",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _out, err = await process.communicate()
        assert process.returncode == 0, err.decode()[-2000:]


async def test_bad_signatures_are_403(client, db, make_user, tree, settings):
    alice = await make_user()
    _job_id, file_id = await stored_video(client, db, alice, tree)
    _other_job, other_file = await stored_video(client, db, alice, tree)
    path, query = await _signed_master(client, alice, file_id)
    base = path.rsplit("/", 1)[0]
    flipped = query["signature"][:-1] + ("0" if query["signature"][-1] != "0" else "1")
    expired, _ = signing.signed_query(
        settings.signing_secret, file_id, alice.id, signing.LinkKind.HLS, {}, -60
    )
    thumbnail, _ = signing.signed_query(
        settings.signing_secret, file_id, alice.id, signing.LinkKind.THUMBNAIL,
        {"size": "small"}, 60,
    )  # fmt: skip
    for target in ("master.m3u8", "720p/index.m3u8", "720p/seg_00000.m4s", "storyboard.jpg"):
        for bad in (
            {**query, "signature": flipped},
            {**query, "expires": str(int(query["expires"]) + 1)},
            {k: v for k, v in query.items() if k != "signature"},
            dict(parse_qsl(expired)),
            dict(parse_qsl(thumbnail)),
        ):
            response = await client.get(f"{base}/{target}", params=bad)
            assert response.status == 403, (target, bad)
        # The same signature on another file's tree.
        response = await client.get(f"/api/v1/files/secure/{other_file}/hls/{target}", params=query)
        assert response.status == 403
    # An hls signature does not open the original through the other signed path.
    response = await client.get(f"/api/v1/files/secure/{file_id}", params=query)
    assert response.status == 403


async def test_delete_stops_playlists_at_once_and_segments(client, db, make_user, tree):
    alice = await make_user()
    _job_id, file_id = await stored_video(client, db, alice, tree)
    path, query = await _signed_master(client, alice, file_id)
    base = path.rsplit("/", 1)[0]
    assert (await client.get(f"{base}/720p/seg_00000.m4s", params=query)).status == 200
    response = await client.delete(f"/api/v1/files/{file_id}", headers=alice.headers)
    assert response.status == 200
    assert (await client.get(path, params=query)).status == 403
    assert (await client.get(f"{base}/720p/seg_00000.m4s", params=query)).status == 404
    storage = client.server.app[STORAGE]
    assert [o async for o in storage.list(f"hls/{file_id}/")] == []


async def test_signed_media_skip_the_rate_limiter_playlists_do_not(
    db, settings, aiohttp_client, tree
):
    strict = settings.with_overrides(rate_limit_general=3, rate_limit_guest_divisor=1)
    client = await aiohttp_client(create_app(strict))
    file_id, user_id = "file_" + "ab" * 12, "usr_" + "cd" * 12
    storage = client.server.app[STORAGE]
    for path in tree_files(tree):
        name = path.relative_to(tree).as_posix()
        await storage.put_file(f"hls/{file_id}/{name}", path)
    query, _ = signing.signed_query(
        strict.signing_secret, file_id, user_id, signing.LinkKind.HLS, {}, 600
    )
    base = f"/api/v1/files/secure/{file_id}/hls"
    for name in ("720p/init.mp4", "720p/seg_00000.m4s", "storyboard.jpg", "subs/subtitles.vtt"):
        for _ in range(4):  # past the budget of 3
            response = await client.get(f"{base}/{name}?{query}")
            assert response.status == 200, (name, response.status)
            assert "X-RateLimit-Limit" not in response.headers
    # A playlist is counted (the signer is unknown here: 403, with the budget).
    response = await client.get(f"{base}/master.m3u8?{query}")
    assert response.status == 403
    assert response.headers["X-RateLimit-Limit"] == "3"


async def test_deleting_the_job_removes_its_videos_tree(client, db, make_user, tree):
    alice = await make_user()
    job_id, file_id = await stored_video(client, db, alice, tree)
    path, query = await _signed_master(client, alice, file_id)
    segment = path.replace("master.m3u8", "720p/seg_00000.m4s")
    assert (await client.get(segment, params=query)).status == 200
    response = await client.delete(f"/api/v1/jobs/{job_id}", headers=alice.headers)
    assert response.status == 200, await response.text()
    assert (await client.get(path, params=query)).status == 403
    assert (await client.get(segment, params=query)).status == 404


async def test_file_detail_and_job_result_list_the_tree_once_packaged(
    client, db, make_user, tree, settings
):
    alice = await make_user()
    job_id, file_id = await stored_video(client, db, alice, tree)
    detail_url, job_url = f"/api/v1/files/{file_id}", f"/api/v1/jobs/{job_id}"
    # Before the package worker records its tree, nothing is listed (and
    # this read is cached: recording must retire it).
    detail = (await (await client.get(detail_url, headers=alice.headers)).json())["data"]
    assert (detail["hls_url"], detail["storyboard_vtt_url"], detail["storyboard_jpg_url"]) == (
        None,
        None,
        None,
    )
    job = (await (await client.get(job_url, headers=alice.headers)).json())["data"]
    assert "hls_url" not in job["result"]
    content = await (await client.get(f"/content/{file_id}", headers=alice.headers)).json()
    assert [content[k] for k in URL_KEYS] == [None, None, None]

    # What the worker does once the tree is stored.
    async with db.acquire() as conn:
        row = await conn.fetchrow("SELECT id, job_id FROM files WHERE id = $1", file_id)
        facts = hls_facts(["360p", "720p"], subtitles=True, storyboard=True)
        assert await record_package(conn, row, facts) == alice.id
    redis = create_redis(settings)
    try:
        await bump_generations(redis, settings, [alice.id])
    finally:
        await redis.aclose()

    detail = (await (await client.get(detail_url, headers=alice.headers)).json())["data"]
    assert detail["hls_url"] == f"/api/v1/files/{file_id}/hls/master.m3u8"
    assert detail["storyboard_vtt_url"] == f"/api/v1/files/{file_id}/storyboard.vtt"
    assert detail["storyboard_jpg_url"] == f"/api/v1/files/{file_id}/storyboard.jpg"
    # The root path's content view lists the same tree.
    content = await (await client.get(f"/content/{file_id}", headers=alice.headers)).json()
    assert [content[k] for k in URL_KEYS] == [detail[k] for k in URL_KEYS]
    result = (await (await client.get(job_url, headers=alice.headers)).json())["data"]["result"]
    assert result["hls_url"] == f"/api/v1/videos/{job_id}/hls/master.m3u8"
    assert result["storyboard_vtt_url"] == f"/api/v1/videos/{job_id}/hls/storyboard.vtt"
    assert result["storyboard_jpg_url"] == f"/api/v1/videos/{job_id}/hls/storyboard.jpg"
    # Every URL listed opens what it names, with the owner's token.
    for url in (*(detail[k] for k in URL_KEYS), *(result[k] for k in URL_KEYS)):
        response = await client.get(url, headers=alice.headers)
        assert response.status == 200, (url, response.status)
    playlist = await (await client.get(result["hls_url"], headers=alice.headers)).text()
    assert [p.uri for p in m3u8.loads(playlist).playlists] == ["360p/index.m3u8", "720p/index.m3u8"]
