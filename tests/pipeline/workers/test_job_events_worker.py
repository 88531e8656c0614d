"""Live events from real worker processes: a script rendered while a client follows it."""

from __future__ import annotations

from tests.pipeline.workers.test_video_pipeline import VIDEO_QUEUES
from tests.samples import SCRIPTS
from tests.support.jobs import submit_video
from tests.support.sse import Event, next_event, read_until_end


async def test_a_followed_render_streams_stages_progress_and_end(client, make_user, start_worker):
    user = await make_user()
    start_worker(VIDEO_QUEUES)
    script = (SCRIPTS / "sample_video_script.txt").read_text()
    job_id = await submit_video(
        client, user, script=script, title="Live", quality="480p", duration=8
    )
    url = f"/api/v1/jobs/{job_id}/events"

    # Follow until the render reports progress, then drop the connection...
    stream = await client.get(url, headers=user.headers)
    first: list[Event] = []
    while True:
        event = await next_event(stream)
        assert event is not None, [e.type for e in first]
        first.append(event)
        assert event.type != "end", event.data  # render progress comes first
        if event.type == "progress" and event.data["progress"] > 10:
            break
    stream.close()
    assert first[0].type == "snapshot"

    # ...and resume from the last id seen, as EventSource would.
    stream = await client.get(url, headers={**user.headers, "Last-Event-ID": str(first[-1].id)})
    rest = await read_until_end(stream)

    events = first[1:] + rest
    ids = [e.id for e in events]
    start = first[0].id
    assert start is not None
    # No duplicate and no gap across the reconnection.
    assert ids == list(range(start + 1, start + 1 + len(ids)))
    assert "snapshot" not in [e.type for e in rest]
    stages = [e.data["stage"] for e in events if e.type == "stage"]
    assert stages[-3:] == ["storyboard", "render", "thumbnails"]
    progress = [e.data["progress"] for e in events if e.type in ("progress", "stage")]
    assert progress == sorted(progress)
    assert any(e.type == "progress" and 10 < e.data["progress"] < 90 for e in events)
    logs = [e.data["message"] for e in events if e.type == "log"]
    assert "Stage render started" in logs
    assert logs[-1] == "Video ready"
    end = events[-1]
    assert end.type == "end"
    assert end.data["status"] == "completed", end.data
    assert end.data["progress"] == 100
    job = (await (await client.get(f"/api/v1/jobs/{job_id}", headers=user.headers)).json())["data"]
    assert end.data["output_file_id"] == job["result"]["file_id"]
