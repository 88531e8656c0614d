"""Uploaded recordings as narration through the real API and workers."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from pipeline.stages.ffmpeg_runner import ffmpeg_executable
from tests.api.files_helpers import upload
from tests.pipeline.workers.test_video_pipeline import wait_job
from tests.support import polling
from tests.support.errors import assert_error
from tests.support.media import png_bytes
from tests.support.recordings import spoken_recording

QUEUES = ["parse", "narrate", "storyboard", "render", "thumbnails", "media"]
PHRASES = ["Recorded speech opens this video.", "A second phrase follows the pause."]


async def _processed(client, user, file_id: str) -> dict:
    async def done() -> dict | None:
        body = await (await client.get(f"/api/v1/files/{file_id}", headers=user.headers)).json()
        status = body["data"]["processing_status"]
        return body["data"] if status in ("completed", "failed") else None

    return await polling.until(done, f"file {file_id} processed", timeout_s=60, interval_s=0.2)


async def _generate(client, user, script: str):
    return await client.post(
        "/api/v1/videos/generate", json={"script": script, "quality": "480p"}, headers=user.headers
    )


async def test_a_recording_narrates_its_scene_with_aligned_captions(
    client, make_user, start_worker, tmp_path: Path
):
    from api.keys import STORAGE

    user = await make_user()
    start_worker(QUEUES)
    wav = tmp_path / "speech.wav"
    phrases = spoken_recording(wav, PHRASES)
    file_id = (await upload(client, user, wav.read_bytes(), "speech.wav"))["id"]
    text = " ".join(PHRASES)
    script = f"# Spoken by a person\nA synthesized scene.\n\n[narration: asset:{file_id}]\n{text}"
    response = await _generate(client, user, script)
    assert response.status == 202, await response.text()
    job_id = (await response.json())["data"]["id"]
    job = await wait_job(client, user, job_id, ("completed", "failed"), timeout_s=300)
    assert job["status"] == "completed", job["error"]

    board = json.loads(await client.app[STORAGE].get_bytes(f"storyboards/{job_id}.json"))
    recorded = [c for c in board["narration"] if c["source_index"] == 1]
    assert len(recorded) == 1
    clip = recorded[0]
    assert clip["audio_key"].startswith("tts/recordings/")
    assert clip["duration_s"] == pytest.approx(phrases[-1].end_s + 0.7, abs=0.1)
    assert [w["text"] for w in clip["words"]] == text.split()
    second = clip["words"][len(PHRASES[0].split())]
    assert second["start_s"] == pytest.approx(phrases[1].start_s, abs=0.1)
    # The scene lasts at least its recording: nothing of it is cut.
    cards = [c for c in board["scenes"] if c["source_index"] == 1]
    first, last = cards[0], cards[-1]
    assert first["start_frame"] / board["fps"] <= clip["start_s"]
    assert (
        clip["start_s"] + clip["duration_s"]
        <= (last["start_frame"] + last["slot_frames"]) / board["fps"] + 0.05
    )

    vtt = await client.get(f"/api/v1/videos/{job_id}/captions.vtt", headers=user.headers)
    assert vtt.status == 200
    body = re.sub(r"<[^>]+>", "", await vtt.text())
    assert "A second phrase follows the pause." in body

    # The same upload again: converted once.
    keys = sorted([i.key async for i in client.app[STORAGE].list("tts/recordings/")])
    again = await _generate(client, user, script)
    job = await wait_job(client, user, (await again.json())["data"]["id"], ("completed", "failed"))
    assert job["status"] == "completed", job["error"]
    assert sorted([i.key async for i in client.app[STORAGE].list("tts/recordings/")]) == keys
    assert len(keys) == 2  # the WAV and its measurements


async def test_a_video_upload_narrates_with_its_sound(
    client, make_user, start_worker, tmp_path: Path
):
    user = await make_user()
    start_worker(QUEUES)
    wav = tmp_path / "speech.wav"
    spoken_recording(wav, PHRASES[:1])
    video = _talking_video(tmp_path / "talk.mp4", wav)
    file_id = (await upload(client, user, video.read_bytes(), "talk.mp4"))["id"]
    await _processed(client, user, file_id)
    response = await _generate(client, user, f"[narration: asset:{file_id}]\n{PHRASES[0]}")
    assert response.status == 202, await response.text()
    job_id = (await response.json())["data"]["id"]
    job = await wait_job(client, user, job_id, ("completed", "failed"), timeout_s=300)
    assert job["status"] == "completed", job["error"]


async def test_recordings_that_cannot_narrate_are_refused_naming_the_scene(
    client, make_user, start_worker, tmp_path: Path
):
    user, other = await make_user(), await make_user()
    start_worker(["media"])
    theirs = (await upload(client, other, _tone(tmp_path / "a.wav", 2), "a.wav"))["id"]
    picture = (await upload(client, user, png_bytes(), "p.png"))["id"]
    long_one = (await upload(client, user, _tone(tmp_path / "l.wav", 301), "long.wav"))["id"]
    short = (await upload(client, user, _tone(tmp_path / "s.wav", 3), "short.wav"))["id"]
    await _processed(client, user, long_one)
    await _processed(client, user, short)
    cases = [
        ("file_doesnotexist0000000000", "is not one of your files"),
        (theirs, "is not one of your files"),
        (picture, "is an image file, not audio"),
        (long_one, "is 301 s long; a narration recording may last 300 s"),
    ]
    for file_id, message in cases:
        script = f"A first scene.\n\n[narration: asset:{file_id}]\nSpoken."
        body = await assert_error(await _generate(client, user, script), 400, "VALIDATION_ERROR")
        problems = body["error"]["details"]["script"]
        assert problems == [f"line 3: scene 2: narration file {file_id} {message}"], problems
    script = f"[duration: 2s]\n[narration: asset:{short}]\nToo long for its scene."
    body = await assert_error(await _generate(client, user, script), 400, "VALIDATION_ERROR")
    assert "scene 1" in body["error"]["details"]["script"][0]
    assert "never sped up" in body["error"]["details"]["script"][0]


def _tone(path: Path, seconds: float) -> bytes:
    subprocess.run(
        [ffmpeg_executable(), "-v", "error", "-f", "lavfi", "-i",
         f"sine=frequency=330:sample_rate=8000:duration={seconds}", "-ac", "1", "-y", str(path)],
        check=True,
    )  # fmt: skip
    return path.read_bytes()


def _talking_video(path: Path, sound: Path) -> Path:
    subprocess.run(
        [ffmpeg_executable(), "-v", "error", "-f", "lavfi", "-i", "color=c=blue:s=160x120:d=3",
         "-i", str(sound), "-shortest", "-c:v", "libx264", "-c:a", "aac", "-y", str(path)],
        check=True,
    )  # fmt: skip
    return path
