"""The narrate actor (parse → **narrate** → storyboard) and voice samples.

Only this worker module starts speech engines, each in a child process
(see pipeline.stages.narrate): the web process and the other workers never
load one.  Cancel is polled while synthesizing; it kills the engine child
so synthesis stops at once, and the next job starts a fresh one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import dramatiq

from db import files as file_rows
from pipeline.stages.narrate import SynthesisCancelled, SynthesisError
from pipeline.stages.narrate import engines as engine_pool
from pipeline.stages.narrate.recording import RecordingError, recording_problem
from pipeline.stages.narrate.stage import NarrationError, NarrationOptions, Narrator, narrate_script
from pipeline.stages.narrate.voices import get_voice
from pipeline.stages.script import Script
from pipeline.workers import runtime
from pipeline.workers.jobs import StageRun, stage_run
from pipeline.workers.resources import storage
from t2m.enqueue import Enqueuer
from t2m.queues import BUILD_STORYBOARD, NARRATE_SCRIPT, VOICE_SAMPLE
from t2m.scratch import attempt_dir

log = logging.getLogger(__name__)
NARRATE_AT, NARRATE_END = 2, 5
CANCEL_POLL_S = 0.3
SAMPLE_TEXT = "Hello! This is how I sound reading your script."

_enqueuer: Enqueuer | None = None


def parsed_key(job_id: str) -> str:
    return f"scripts/{job_id}.parsed.json"


def speech_key(job_id: str) -> str:
    return f"scripts/{job_id}.speech.json"


def sample_key(voice_id: str) -> str:
    return f"tts/samples/{voice_id}.wav"


def _next(job_id: str) -> None:
    global _enqueuer
    if _enqueuer is None:
        _enqueuer = Enqueuer(runtime.broker)
    _enqueuer.send_now(BUILD_STORYBOARD, job_id)


class OwnRecordings:
    """The job owner's uploads, for scenes narrated by a recording."""

    def __init__(self, run: StageRun) -> None:
        self.run = run
        self._keys: dict[str, str] = {}

    async def content_sha256(self, file_id: str) -> str:
        async with self.run.pool.acquire() as conn:
            row = await file_rows.visible_file(
                conn, file_id, viewer_id=self.run.job["owner_id"], is_admin=False
            )
        if row is None:
            raise RecordingError("is not one of your files")
        problem = recording_problem(row["file_type"], row["processing_status"], row["metadata"])
        if problem is not None:
            raise RecordingError(problem)
        self._keys[file_id] = row["storage_key"]
        return str(row["blob_sha256"])

    async def download(self, file_id: str, dest: Path) -> None:
        await storage().download_to(self._keys[file_id], dest)


async def _poll_cancel(run: StageRun, cancelled: asyncio.Event) -> None:
    while True:
        if await run.status() != "processing":
            cancelled.set()
            # Killing the child ends the synthesis in progress within the poll.
            await asyncio.to_thread(engine_pool.stop_all)
            return
        await asyncio.sleep(CANCEL_POLL_S)


@dramatiq.actor(
    actor_name=NARRATE_SCRIPT.actor_name, queue_name=NARRATE_SCRIPT.queue_name, max_retries=3
)
async def narrate_script_stage(job_id: str) -> None:
    async with stage_run(job_id, "narrate", NARRATE_AT) as run:
        if run is None:
            return
        script = Script.from_dict(json.loads(await storage().get_bytes(parsed_key(job_id))))
        options = NarrationOptions.from_params(run.job["parameters"])
        engine_pool.reopen_all()
        cancelled = asyncio.Event()
        poller = asyncio.create_task(_poll_cancel(run, cancelled))

        async def on_scene(done: int, total: int) -> None:
            await run.progress(NARRATE_AT + (NARRATE_END - NARRATE_AT) * done // max(1, total))

        try:
            with attempt_dir(runtime.settings, "narrate", job_id) as scratch:
                narrator = Narrator(storage(), recordings=OwnRecordings(run), scratch=scratch)
                plan = await narrate_script(script, options, narrator, on_scene=on_scene)
        except (SynthesisCancelled, SynthesisError) as exc:
            if cancelled.is_set():
                await run.log("INFO", "Narration stopped: the job was cancelled")
                return
            if isinstance(exc, SynthesisCancelled):
                raise RuntimeError("speech engine stopped") from exc  # retried
            raise NarrationError(f"speech synthesis failed: {exc}") from exc
        finally:
            poller.cancel()
        if cancelled.is_set():
            return
        await storage().put_bytes(
            speech_key(job_id), json.dumps(plan.to_dict()).encode(), content_type="application/json"
        )
        for note in plan.notes:
            await run.log("WARNING", note)
        spoken = sum(len(s.clips) for s in plan.scenes)
        await run.log(
            "INFO",
            f"Narration: {spoken} sentences in {len(plan.scenes)} scenes "
            f"({plan.synthesized} synthesized, {plan.reused} from the cache)",
            sentences=spoken,
            synthesized=plan.synthesized,
            reused=plan.reused,
            speech_s=round(sum(s.speech_s for s in plan.scenes), 3),
        )
        _next(job_id)


@dramatiq.actor(
    actor_name=VOICE_SAMPLE.actor_name, queue_name=VOICE_SAMPLE.queue_name, max_retries=1
)
async def make_voice_sample(voice_id: str) -> None:
    """Speak the sample sentence once and keep it (GET /voices/{id}/sample)."""
    voice = get_voice(voice_id)
    key = sample_key(voice.id)
    if await storage().exists(key):
        return
    engine_pool.reopen_all()
    speech = await asyncio.to_thread(engine_pool.synthesize, SAMPLE_TEXT, voice.id, 1.0)
    await storage().put_bytes(key, speech.wav, content_type="audio/wav")
