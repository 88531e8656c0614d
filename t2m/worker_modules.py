"""Which actor modules serve which queue, by name.

``t2m worker --queues render`` imports only the modules its queues need, so a
webhook worker never loads ffmpeg helpers and only the updater loads torch.
Names, not imports: the health check reads which queues this version serves
without loading a worker.
"""

from __future__ import annotations

from t2m.queues import QUEUES

QUEUE_MODULES: dict[str, tuple[str, ...]] = {
    "parse": ("pipeline.workers.video",),
    # Speech engines run as child processes of this worker only.
    "narrate": ("pipeline.workers.narrate",),
    "storyboard": ("pipeline.workers.video",),
    "render": ("pipeline.workers.video", "pipeline.workers.segments"),
    "thumbnails": ("pipeline.workers.video",),
    "package": ("pipeline.workers.package",),
    "media": ("pipeline.workers.media",),
    "rl_update": ("pipeline.workers.recommender",),
    "webhooks": ("pipeline.workers.webhooks",),
    "maintenance": ("pipeline.workers.system",),
}


def modules_for(queues: list[str]) -> list[str]:
    unknown = [q for q in queues if q not in QUEUES]
    if unknown:
        raise ValueError(f"unknown queue(s): {', '.join(unknown)}; known: {', '.join(QUEUES)}")
    without = [q for q in queues if q not in QUEUE_MODULES]
    if without:
        raise ValueError(f"no actors serve queue(s) {', '.join(without)} in this version")
    modules: list[str] = ["pipeline.workers.runtime"]
    for queue in queues:
        modules.extend(m for m in QUEUE_MODULES[queue] if m not in modules)
    return modules


def served_queues() -> list[str]:
    return [q for q in QUEUES if q in QUEUE_MODULES]
