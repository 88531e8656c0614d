"""Enqueue actor messages by name, without importing the actors.

Messages carry ids only; actors load everything else from PostgreSQL.
"""

from __future__ import annotations

import asyncio
from typing import Any

import dramatiq

from t2m.errors import ServiceUnavailable
from t2m.queues import QUEUES, ActorRef


class Enqueuer:
    def __init__(self, broker: dramatiq.Broker) -> None:
        self.broker = broker
        for queue in QUEUES:
            broker.declare_queue(queue)

    def build(self, ref: ActorRef, *args: Any, **options: Any) -> dramatiq.Message[Any]:
        return dramatiq.Message(
            queue_name=ref.queue_name,
            actor_name=ref.actor_name,
            args=args,
            kwargs={},
            options=options,
        )

    def send_now(self, ref: ActorRef, *args: Any, delay_ms: int | None = None) -> str:
        """Blocking enqueue, for worker threads and the scheduler."""
        message = self.build(ref, *args)
        try:
            self.broker.enqueue(message, delay=delay_ms)
        except Exception as exc:  # the broker raises its client's own errors
            raise ServiceUnavailable("The job queue is unavailable; try again shortly") from exc
        return message.message_id

    async def send(self, ref: ActorRef, *args: Any, delay_ms: int | None = None) -> str:
        # The broker clients are synchronous; a slow Redis must not stall the
        # event loop, so the call runs in a thread.
        return await asyncio.to_thread(self.send_now, ref, *args, delay_ms=delay_ms)
