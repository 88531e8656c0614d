"""An uploaded video goes through real media and package workers: renditions
below its own height, then an HLS tree and seek previews served by the API."""

from __future__ import annotations

import asyncio
from pathlib import Path

import m3u8

from t2m.scratch import scratch_root
from t2m.storage import build_storage
from tests.api.files_helpers import upload
from tests.support.media import h264_mp4
from tests.support.polling import until


async def _wait_for(client, user, path: str, timeout_s: float = 120) -> str:
    async def served() -> str | None:
        response = await client.get(path, headers=user.headers)
        return await response.text() if response.status == 200 else None

    return await until(served, f"{path} to appear", timeout_s=timeout_s, interval_s=0.2)


async def _packaged_detail(client, user, file_id: str, timeout_s: float = 60) -> dict:
    """The file detail once the package worker has recorded its tree (just
    after storing the master playlist)."""

    async def packaged() -> dict | None:
        response = await client.get(f"/api/v1/files/{file_id}", headers=user.headers)
        detail: dict = (await response.json())["data"]
        return detail if detail["hls_url"] is not None else None

    return await until(
        packaged, "the file detail to list its HLS tree", timeout_s=timeout_s, interval_s=0.2
    )


async def test_an_uploaded_video_is_packaged(client, make_user, start_worker, tmp_path: Path):
    user = await make_user()
    start_worker(["media", "package"])
    video = h264_mp4(tmp_path / "clip.mp4", height=720, seconds=5)
    file_id = (await upload(client, user, video.read_bytes(), "clip.mp4"))["id"]
    base = f"/api/v1/files/{file_id}/hls"
    master = m3u8.loads(await _wait_for(client, user, f"{base}/master.m3u8"))
    # The upload itself (H.264: copied) and the two rungs below it, lowest first.
    assert [p.uri for p in master.playlists] == [
        "360p/index.m3u8",
        "480p/index.m3u8",
        "original/index.m3u8",
    ]
    assert [p.stream_info.resolution for p in master.playlists] == [
        (640, 360),
        (854, 480),
        (1280, 720),
    ]
    for playlist in master.playlists:
        variant = m3u8.loads(await _wait_for(client, user, f"{base}/{playlist.uri}"))
        assert sum(s.duration for s in variant.segments) == 5.0
    detail = await (await client.get(f"/api/v1/files/{file_id}", headers=user.headers)).json()
    assert set(detail["data"]["renditions"]) >= {"360p", "480p"}
    # quality still selects a rendition of the progressive stream.
    response = await client.get(
        f"/api/v1/files/{file_id}/stream?quality=480p", headers=user.headers
    )
    assert response.status == 200 and response.headers["X-T2M-Quality"] == "480p"
    track = await _wait_for(client, user, f"/api/v1/files/{file_id}/storyboard.vtt")
    assert "storyboard.jpg#xywh=" in track
    # The detail (read and cached above) lists the tree once it is recorded.
    detail = await _packaged_detail(client, user, file_id)
    assert detail["hls_url"] == f"{base}/master.m3u8"
    assert detail["storyboard_vtt_url"] == f"/api/v1/files/{file_id}/storyboard.vtt"
    assert detail["storyboard_jpg_url"] == f"/api/v1/files/{file_id}/storyboard.jpg"
    facts = detail["metadata"]["hls"]
    assert sorted(facts["variants"]) == ["360p", "480p", "original"]
    assert (facts["subtitles"], facts["storyboard"]) == (False, True)


async def test_no_rungs_without_room_in_the_quota(
    client, make_user, start_worker, db, tmp_path: Path
):
    user = await make_user()
    video = h264_mp4(tmp_path / "clip.mp4", height=480, seconds=3)
    async with db.acquire() as conn:
        # Room for the upload itself, not for a second copy's worth of rungs.
        await conn.execute(
            "UPDATE users SET quota_stored_bytes = $2 WHERE id = $1",
            user.id,
            video.stat().st_size + 1000,
        )
    start_worker(["media", "package"])
    file_id = (await upload(client, user, video.read_bytes(), "clip.mp4"))["id"]
    master = m3u8.loads(await _wait_for(client, user, f"/api/v1/files/{file_id}/hls/master.m3u8"))
    assert [p.uri for p in master.playlists] == ["original/index.m3u8"]
    detail = await (await client.get(f"/api/v1/files/{file_id}", headers=user.headers)).json()
    assert detail["data"]["renditions"] == []


async def test_a_file_deleted_while_packaging_leaves_no_tree(
    client, make_user, start_worker, settings, tmp_path: Path
):
    """The delete removes the tree it finds; what the worker writes after it
    is removed by the worker itself once it sees the file gone."""
    user = await make_user()
    start_worker(["media", "package"])
    video = h264_mp4(tmp_path / "clip.mp4", height=720, seconds=20)
    file_id = (await upload(client, user, video.read_bytes(), "clip.mp4"))["id"]
    scratch = scratch_root(settings)

    def packaging() -> bool:
        return any(scratch.glob(f"package-{file_id}-*"))

    await until(packaging, timeout_s=120, what="the package worker to start on the file")
    response = await client.delete(f"/api/v1/files/{file_id}", headers=user.headers)
    assert response.status == 200, await response.text()
    await until(lambda: not packaging(), timeout_s=120, what="packaging to end")

    store = build_storage(settings)

    async def tree() -> list[str]:
        return [info.key async for info in store.list(f"hls/{file_id}/")]

    async def tree_is_gone() -> bool:
        return await tree() == []

    try:
        await until(tree_is_gone, timeout_s=30, what="the HLS tree to be removed")
        # And nothing comes back: the worker's last write was before its cleanup.
        await asyncio.sleep(1)
        assert await tree() == []
    finally:
        await store.aclose()
