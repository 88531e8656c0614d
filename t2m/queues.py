"""The queue and actor names of every stage, declared once.

The web process enqueues by these names (see :mod:`t2m.enqueue`) and never
imports the actor modules, so no video or torch library is loaded there.
Each actor lives on its own queue so each stage scales on its own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ActorRef:
    actor_name: str
    queue_name: str


PARSE_SCRIPT = ActorRef("parse_script", "parse")
NARRATE_SCRIPT = ActorRef("narrate_script", "narrate")
VOICE_SAMPLE = ActorRef("make_voice_sample", "narrate")
BUILD_STORYBOARD = ActorRef("build_storyboard", "storyboard")
RENDER_VIDEO = ActorRef("render_video", "render")
# Segmented videos (pipeline.workers.segments): one message per segment, then
# the join; on the render queue, so every render worker takes part.
RENDER_SEGMENT = ActorRef("render_segment", "render")
RENDER_SOUND = ActorRef("render_sound", "render")  # the timeline's sound, beside the segments
ASSEMBLE_VIDEO = ActorRef("assemble_video", "render")
MAKE_THUMBNAILS = ActorRef("make_video_thumbnails", "thumbnails")
PACKAGE_HLS = ActorRef("package_hls", "package")
PROCESS_UPLOAD = ActorRef("process_upload", "media")
EMBED_TEXT = ActorRef("embed_file_text", "media")
DELIVER_WEBHOOK = ActorRef("deliver_webhook", "webhooks")
UPDATE_RECOMMENDER = ActorRef("update_recommender", "rl_update")
RUN_MAINTENANCE = ActorRef("run_maintenance", "maintenance")
PING = ActorRef("ping", "maintenance")

ALL_ACTORS: tuple[ActorRef, ...] = (
    PARSE_SCRIPT,
    NARRATE_SCRIPT,
    VOICE_SAMPLE,
    BUILD_STORYBOARD,
    RENDER_VIDEO,
    RENDER_SEGMENT,
    RENDER_SOUND,
    ASSEMBLE_VIDEO,
    MAKE_THUMBNAILS,
    PACKAGE_HLS,
    PROCESS_UPLOAD,
    EMBED_TEXT,
    DELIVER_WEBHOOK,
    UPDATE_RECOMMENDER,
    RUN_MAINTENANCE,
    PING,
)

QUEUES: tuple[str, ...] = tuple(dict.fromkeys(a.queue_name for a in ALL_ACTORS))

# The stages of a video job in the order they run, each with the actor that
# runs it: the worker refuses to run a stage behind the job's current one,
# and the stuck-job reaper and the failed-operation retry re-enqueue by it.
VIDEO_STAGE_ACTORS: dict[str, ActorRef] = {
    "parse": PARSE_SCRIPT,
    "narrate": NARRATE_SCRIPT,  # skipped by silent jobs (parse goes straight on)
    "storyboard": BUILD_STORYBOARD,
    # Re-sent, the render message re-sends every segment's; segments already
    # stored are not rendered again (pipeline.workers.segments).
    "render": RENDER_VIDEO,
    # Segmented videos only: the join, between their segments and thumbnails.
    "assemble": ASSEMBLE_VIDEO,
    "thumbnails": MAKE_THUMBNAILS,
}
VIDEO_STAGES: tuple[str, ...] = tuple(VIDEO_STAGE_ACTORS)
VIDEO_QUEUES: tuple[str, ...] = tuple(
    dict.fromkeys(ref.queue_name for ref in VIDEO_STAGE_ACTORS.values())
)
# The value of ``jobs.current_stage`` once the last stage is done.
COMPLETED_STAGE = "completed"
