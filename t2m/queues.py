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
BUILD_STORYBOARD = ActorRef("build_storyboard", "storyboard")
RENDER_VIDEO = ActorRef("render_video", "render")
MAKE_THUMBNAILS = ActorRef("make_video_thumbnails", "thumbnails")
PACKAGE_HLS = ActorRef("package_hls", "package")
PROCESS_UPLOAD = ActorRef("process_upload", "media")
DELIVER_WEBHOOK = ActorRef("deliver_webhook", "webhooks")
UPDATE_RECOMMENDER = ActorRef("update_recommender", "rl_update")
RUN_MAINTENANCE = ActorRef("run_maintenance", "maintenance")
PING = ActorRef("ping", "maintenance")

ALL_ACTORS: tuple[ActorRef, ...] = (
    PARSE_SCRIPT,
    BUILD_STORYBOARD,
    RENDER_VIDEO,
    MAKE_THUMBNAILS,
    PACKAGE_HLS,
    PROCESS_UPLOAD,
    DELIVER_WEBHOOK,
    UPDATE_RECOMMENDER,
    RUN_MAINTENANCE,
    PING,
)

QUEUES: tuple[str, ...] = tuple(dict.fromkeys(a.queue_name for a in ALL_ACTORS))
