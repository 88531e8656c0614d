"""Caption endpoints: by job, by file, by signed link; owner checks, CORS,
content types, and the job's result listing them."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from api.keys import STORAGE
from tests.api.files_helpers import completed_video_job, upload
from tests.support.media import png_bytes

VTT = "WEBVTT\n\n1\n00:00:00.500 --> 00:00:01.700\nShort <00:00:00.900>and <00:00:01.200>sweet.\n"
SRT = "1\n00:00:00,500 --> 00:00:01,700\nShort and sweet.\n"


async def _video(client, db, user, *, captions: bool = True) -> tuple[str, str]:
    """A completed job of ``user`` and its video file (job id, file id)."""
    job_id, file_id = await completed_video_job(client, db, user, png_bytes())
    if captions:
        storage = client.server.app[STORAGE]
        await storage.put_bytes(f"videos/{job_id}/subtitles.vtt", VTT.encode())
        await storage.put_bytes(f"videos/{job_id}/subtitles.srt", SRT.encode())
    return job_id, file_id


async def test_captions_by_job_and_by_file(client, db, make_user):
    alice, bob = await make_user(), await make_user()
    job_id, file_id = await _video(client, db, alice)
    for base in (f"/api/v1/videos/{job_id}", f"/api/v1/files/{file_id}"):
        vtt = await client.get(f"{base}/captions.vtt", headers=alice.headers)
        assert vtt.status == 200, await vtt.text()
        assert vtt.headers["Content-Type"] == "text/vtt; charset=utf-8"
        assert vtt.headers["Access-Control-Allow-Origin"] == "*"
        assert await vtt.text() == VTT
        srt = await client.get(f"{base}/captions.srt", headers=alice.headers)
        assert srt.status == 200
        assert srt.headers["Content-Type"].startswith("application/x-subrip")
        assert srt.headers["Access-Control-Allow-Origin"] == "*"
        assert await srt.text() == SRT
        # Another user: not found, as if it did not exist; no token: 401.
        other = await client.get(f"{base}/captions.vtt", headers=bob.headers)
        assert other.status == 404
        assert (await other.json())["error"]["code"] == "RESOURCE_NOT_FOUND"
        assert (await client.get(f"{base}/captions.vtt")).status == 401


async def test_no_captions_is_404_and_unfinished_is_409(client, db, make_user):
    alice = await make_user()
    job_id, _file_id = await _video(client, db, alice, captions=False)
    response = await client.get(f"/api/v1/videos/{job_id}/captions.vtt", headers=alice.headers)
    assert response.status == 404
    picture = (await upload(client, alice, png_bytes(color=(9, 9, 9)), "p.png"))["id"]
    response = await client.get(f"/api/v1/files/{picture}/captions.srt", headers=alice.headers)
    assert response.status == 404
    async with db.acquire() as conn:
        await conn.execute("UPDATE jobs SET status = 'processing' WHERE id = $1", job_id)
    response = await client.get(f"/api/v1/videos/{job_id}/captions.vtt", headers=alice.headers)
    assert response.status == 409


async def test_signed_captions_link(client, db, make_user):
    alice = await make_user()
    _job_id, file_id = await _video(client, db, alice)
    response = await client.post(
        f"/api/v1/files/{file_id}/signed-url",
        headers=alice.headers,
        json={"kind": "captions", "format": "vtt"},
    )
    assert response.status == 200, await response.text()
    data = (await response.json())["data"]
    assert data["kind"] == "captions"
    parts = urlsplit(data["url"])
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["format"] == "vtt"
    served = await client.get(parts.path, params=query)  # no token: a player's <track>
    assert served.status == 200
    assert served.headers["Content-Type"] == "text/vtt; charset=utf-8"
    assert served.headers["Access-Control-Allow-Origin"] == "*"
    assert await served.text() == VTT
    # Tampered: another format, or a flipped signature.
    for bad in (
        {**query, "format": "srt"},
        {
            **query,
            "signature": query["signature"][:-1] + ("0" if query["signature"][-1] != "0" else "1"),
        },
    ):
        response = await client.get(parts.path, params=bad)
        assert response.status == 403
        assert (await response.json())["error"]["code"] == "SIGNATURE_INVALID"
    # format alone implies a captions link; format with another kind is refused.
    response = await client.post(
        f"/api/v1/files/{file_id}/signed-url", headers=alice.headers, json={"format": "srt"}
    )
    assert (await response.json())["data"]["kind"] == "captions"
    response = await client.post(
        f"/api/v1/files/{file_id}/signed-url",
        headers=alice.headers,
        json={"kind": "thumbnail", "format": "srt"},
    )
    assert response.status in (400, 422)
    assert (await response.json())["error"]["code"] == "VALIDATION_ERROR"
    response = await client.post(
        f"/api/v1/files/{file_id}/signed-url",
        headers=alice.headers,
        json={"kind": "captions", "format": "ass"},
    )
    assert (await response.json())["error"]["code"] == "VALIDATION_ERROR"


async def test_karaoke_is_a_subtitles_mode(client, make_user):
    alice = await make_user()
    response = await client.post(
        "/api/v1/videos/generate",
        json={"script": "A scene.", "subtitles": "karaoke"},
        headers=alice.headers,
    )
    assert response.status == 202, await response.text()
    response = await client.post(
        "/api/v1/videos/generate",
        json={"script": "A scene.", "subtitles": "disco"},
        headers=alice.headers,
    )
    body = await response.json()
    assert response.status in (400, 422)
    assert body["error"]["code"] == "VALIDATION_ERROR"
    assert "karaoke" in str(body["error"])
