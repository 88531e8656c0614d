"""The last step of a video job: the video becomes the owner's file, the job completes."""

from __future__ import annotations

from typing import Any

from db import files as file_rows
from db import jobs as job_rows
from db import webhooks as webhook_rows
from pipeline.workers import notify
from pipeline.workers.jobs import StageRun
from pipeline.workers.resources import invalidate_cache, job_events
from t2m import job_events as live
from t2m.job_status import JobStatus
from t2m.webhook_events import JOB_COMPLETED


async def finalize_video(
    run: StageRun,
    rendered: dict[str, Any],
    primary: dict[str, Any],
    thumbnail_keys: dict[str, str],
    metadata: dict[str, Any],
) -> None:
    """Idempotent: the file id is derived from the job, so a redelivered
    message finds the record made the first time and only completes the job."""
    job = run.job
    file_id = job["output_file_id"]
    params = job["parameters"]
    others = {q: r for q, r in rendered["renditions"].items() if q != rendered["primary"]}
    title = params.get("title") or "Generated video"
    deliveries: list[str] = []
    async with run.pool.acquire() as conn, conn.transaction():
        if await file_rows.file_by_id(conn, file_id) is None:
            await file_rows.add_blob_reference(
                conn,
                sha256=primary["sha256"],
                storage_key=primary["key"],
                size=primary["size"],
                mime="video/mp4",
            )
            await file_rows.insert_file(
                conn,
                id=file_id,
                owner_id=job["owner_id"],
                blob_sha256=primary["sha256"],
                filename=f"{_slug(title)}.mp4",
                title=title,
                description=f"Generated from a script by job {job['id']}",
                content_type="video/mp4",
                file_type="video",
                size=primary["size"],
                source="generated",
                processing_status="completed",
                metadata=metadata,
                thumbnails=thumbnail_keys,
                renditions={rendered["primary"]: primary, **others},
                tags=list(params.get("tags") or []),
                job_id=job["id"],
            )
        result = {
            "file_id": file_id,
            "file_size": primary["size"],
            "duration": rendered["duration"],
            "renditions": sorted(rendered["renditions"]),
            "download_url": f"/api/v1/videos/{job['id']}/download",
            "stream_url": f"/api/v1/videos/{job['id']}/stream",
            "thumbnail_url": f"/api/v1/videos/{job['id']}/thumbnail",
        }
        if rendered.get("subtitles"):  # narrated, or silent with subtitles=sidecar
            result["captions"] = {
                kind: f"/api/v1/videos/{job['id']}/captions.{kind}"
                for kind in rendered["subtitles"]
            }
        completed = await job_rows.complete_job(conn, job["id"], result)
        if completed:
            await job_rows.add_log(
                conn, job["id"], "INFO", "Video ready", {"step": "completed", "progress": 100}
            )
            deliveries = await webhook_rows.emit_job_event(
                conn, job["id"], JOB_COMPLETED, public_base_url=notify.public_base_url()
            )
    # Right after the commit, before the slower webhook sends.
    await invalidate_cache(job["owner_id"])  # the new file, the completed job
    await notify.send_deliveries(deliveries)
    if completed:  # after the commit: a client reading the job then sees it done
        events = job_events()
        await events.publish_log(job["id"], "INFO", "Video ready", "completed")
        await events.publish(
            job["id"],
            live.END,
            {"status": JobStatus.COMPLETED, "progress": 100, "output_file_id": file_id},
        )


def _slug(title: str) -> str:
    cleaned = "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")
    return "-".join(filter(None, cleaned.split("-")))[:60] or "video"
