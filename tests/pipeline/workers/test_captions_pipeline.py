"""A rendered job's caption files reach the caption endpoints (real broker,
real worker processes): the keys the render stage writes are the ones the
API serves, and the job's result lists them."""

from __future__ import annotations

import dataclasses
import io

import av
import numpy as np

from tests.pipeline.workers.test_video_pipeline import VIDEO_QUEUES, wait_job
from tests.support.jobs import submit_video
from tests.support.polling import until


async def test_sidecar_captions_are_served_and_listed(client, make_user, start_worker):
    user = await make_user()
    start_worker(VIDEO_QUEUES)
    job_id = await submit_video(
        client,
        user,
        script="First card.\n\nSecond card, last.",
        quality="480p",
        duration=3,
        subtitles="sidecar",
    )
    job = await wait_job(client, user, job_id, ("completed", "failed"))
    assert job["status"] == "completed", job["error"]
    captions = job["result"]["captions"]
    assert captions == {
        "srt": f"/api/v1/videos/{job_id}/captions.srt",
        "vtt": f"/api/v1/videos/{job_id}/captions.vtt",
    }
    vtt = await client.get(captions["vtt"], headers=user.headers)
    assert vtt.status == 200
    assert vtt.headers["Content-Type"] == "text/vtt; charset=utf-8"
    text = await vtt.text()
    # Narrated by default: the cue carries the spoken words' timestamps.
    assert text.startswith("WEBVTT") and "First <00:00:" in text and "card." in text
    file_id = job["result"]["file_id"]
    srt = await client.get(f"/api/v1/files/{file_id}/captions.srt", headers=user.headers)
    assert srt.status == 200 and "Second card, last." in await srt.text()


async def test_a_narrated_storyboard_renders_with_its_speech(
    client, make_user, start_worker, tmp_path
):
    """The render worker fetches the narration clips from tts/ storage, mixes
    them, and the job lists captions made from the speech (subtitles: none).

    The storyboard stage runs first (no render worker yet); its storyboard is
    then given narration, as the narrate stage's timing would, before the
    render worker starts."""
    import json

    from api.keys import STORAGE
    from pipeline.stages.storyboard import Storyboard
    from tests.narration_clips import make_clips

    user = await make_user()
    start_worker(["parse", "storyboard"])
    # No narration: the clips are put in by hand below.
    job_id = await submit_video(
        client, user, script="A spoken card.", quality="480p", duration=4, narration="none"
    )

    async def planned() -> dict | None:
        job = (await (await client.get(f"/api/v1/jobs/{job_id}", headers=user.headers)).json())[
            "data"
        ]
        return job if job["storyboard"] else None

    job = await until(planned, f"job {job_id}'s storyboard", timeout_s=120, interval_s=0.2)
    assert job["storyboard"], job
    storage = client.server.app[STORAGE]
    key = f"storyboards/{job_id}.json"
    sb = Storyboard.from_dict(json.loads(await storage.get_bytes(key)))
    clips, paths = make_clips([(0, "This card is spoken aloud.", 0.5)], tmp_path)
    for clip in clips:
        await storage.put_bytes(clip.audio_key, paths[clip.audio_key].read_bytes())
    narrated = dataclasses.replace(sb, narration=clips)
    await storage.put_bytes(key, json.dumps(narrated.to_dict()).encode())
    start_worker(["render", "thumbnails"])
    job = await wait_job(client, user, job_id, ("completed", "failed"))
    assert job["status"] == "completed", job["error"]
    assert set(job["result"]["captions"]) == {"vtt", "srt"}
    vtt = await (await client.get(job["result"]["captions"]["vtt"], headers=user.headers)).text()
    assert "This <00:00:" in vtt and "aloud." in vtt
    video = await client.get(f"/api/v1/videos/{job_id}/download", headers=user.headers)
    data = await video.read()
    with av.open(io.BytesIO(data), "r") as container:
        assert [s.codec_context.name for s in container.streams.audio] == ["aac"]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=48000)
        samples = np.concatenate(
            [
                f.to_ndarray().reshape(-1)
                for frame in container.decode(audio=0)
                for f in resampler.resample(frame)
            ]
        )
    speech = samples[int(0.6 * 48000) : int(1.6 * 48000)]
    assert np.sqrt(np.mean(speech**2)) > 0.03  # spoken, at normalised loudness
