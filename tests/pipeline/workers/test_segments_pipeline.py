"""A video past the one-pass threshold renders in segments through real workers.

Two render workers share the segments; the job log names each segment's
worker; the joined video has every frame at its time; re-submitting the
script reuses every stored segment and an edited scene re-renders only its
own segment; a segment that fails for good fails the job naming its scenes.
"""

from __future__ import annotations

import io
import re

import aiohttp
import av

from tests.pipeline.workers.test_video_pipeline import wait_job

# 13 cards of 5 s: 65 s, past the 60 s one-pass threshold: segments of 15, 15, 15, 15, 5 s.
SCENES = [f"[duration: 5s]\nScene {i}: a line of text for the card." for i in range(13)]
SCENES[1] = "[silent]\n[duration: 5s]\nA card shown, not spoken."


async def _submit(client, user, script: str) -> str:
    response = await client.post(
        "/api/v1/videos/generate", json={"script": script, "quality": "480p"}, headers=user.headers
    )
    assert response.status == 202, await response.text()
    return (await response.json())["data"]["id"]


async def _logs(client, user, job_id: str) -> list[str]:
    body = await (await client.get(f"/api/v1/jobs/{job_id}/logs", headers=user.headers)).json()
    return [entry["message"] for entry in body["data"]["logs"]]


def _seconds(messages: list[str]) -> float:
    """The time the pieces logged as rendered ("... rendered on host:pid in 3.2 s")."""
    found = [re.search(r" rendered on \S+ in ([\d.]+) s$", m) for m in messages]
    return sum(float(m.group(1)) for m in found if m)


async def _render_seconds(db, job_id: str) -> float:
    async with db.acquire() as conn:
        return float(await conn.fetchval("SELECT render_seconds FROM jobs WHERE id = $1", job_id))


async def test_segments_render_on_both_workers_and_are_reused(client, make_user, start_worker, db):
    user = await make_user()
    start_worker(["parse", "narrate", "storyboard", "thumbnails"])
    start_worker(["render"])
    start_worker(["render"])
    job_id = await _submit(client, user, "\n\n".join(SCENES))
    job = await wait_job(client, user, job_id, ("completed", "failed"), timeout_s=400)
    assert job["status"] == "completed", job["error"]
    assert job["_progress_seen"] == sorted(job["_progress_seen"])
    messages = await _logs(client, user, job_id)
    assert "Rendering in 5 segments" in messages
    rendered = [m for m in messages if re.match(r"segment \d \(scenes? [\d-]+\) rendered on ", m)]
    assert len(rendered) == 5, messages
    hosts = {m.split(" rendered on ")[1].split(" ")[0] for m in rendered}
    assert len(hosts) == 2, rendered  # both workers took part
    # The sound is a piece of its own, rendered once beside the segments.
    assert len([m for m in messages if m.startswith("the sound rendered on ")]) == 1, messages
    assert "Joined 5 segments" in messages
    # render_seconds counts every piece's render time, then the join's.
    assert await _render_seconds(db, job_id) >= _seconds(messages) > 0
    data = await (
        await client.get(f"/api/v1/videos/{job_id}/download", headers=user.headers)
    ).read()
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.video[0]
        time_base = stream.time_base
        assert time_base is not None
        times = []
        for packet in container.demux(stream):
            if packet.size:
                assert packet.pts is not None
                times.append(float(packet.pts * time_base))
        assert container.streams.audio
    assert len(times) == 65 * 30
    assert sorted(round(t * 30) for t in times) == list(range(65 * 30))

    # The same script again: nothing is rendered again.
    again = await _submit(client, user, "\n\n".join(SCENES))
    job = await wait_job(client, user, again, ("completed", "failed"), timeout_s=400)
    assert job["status"] == "completed", job["error"]
    messages = await _logs(client, user, again)
    # (Once every segment is found stored the job moves on: later segment
    # messages are dropped without a log line.)
    assert [m for m in messages if m.endswith(" reused")], messages
    assert not [m for m in messages if " rendered on " in m]  # nor the sound

    # One unspoken card edited: only its segment renders; the sound (its
    # narration and music unchanged) is reused.
    edited = [*SCENES]
    edited[1] = "[silent]\n[duration: 5s]\nAn edited second card."
    third = await _submit(client, user, "\n\n".join(edited))
    job = await wait_job(client, user, third, ("completed", "failed"), timeout_s=400)
    assert job["status"] == "completed", job["error"]
    messages = await _logs(client, user, third)
    rendered = [m for m in messages if " rendered on " in m]
    assert len(rendered) == 1 and rendered[0].startswith("segment 1 "), messages
    assert "the sound reused" in messages


async def test_a_failing_segment_fails_the_job_naming_its_scenes(
    client, make_user, start_worker, db
):
    user = await make_user()
    start_worker(["parse", "narrate", "storyboard", "thumbnails", "render", "media"])
    form = aiohttp.FormData()
    form.add_field("file", _png(), filename="photo.png", content_type="image/png")
    photo = await client.post("/upload", data=form, headers=user.headers)
    assert photo.status in (200, 201), await photo.text()
    photo_id = (await photo.json())["content_id"]
    scenes = [*SCENES]
    scenes[7] = f"[background: asset:{photo_id}]\n[duration: 5s]\nScene with a photo."
    # The photo's stored bytes are damaged after submission: that segment
    # cannot render (a permanent failure), the others can.
    async with db.acquire() as conn:
        key = await conn.fetchval(
            "SELECT b.storage_key FROM files f JOIN blobs b ON b.sha256 = f.blob_sha256"
            " WHERE f.id = $1",
            photo_id,
        )
    from api.keys import STORAGE

    await client.app[STORAGE].put_bytes(key, b"not an image any more")
    job_id = await _submit(client, user, "\n\n".join(scenes))
    job = await wait_job(client, user, job_id, ("completed", "failed"), timeout_s=400)
    assert job["status"] == "failed"
    named = re.search(r"segment \d \(scenes (\d+)-(\d+)\)", job["error"])
    assert named and int(named[1]) <= 8 <= int(named[2]), job["error"]
    assert "cannot be read" in job["error"]


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (320, 240), "#557799").save(out, format="PNG")
    return out.getvalue()
