"""/api/v1/voices: the narration voices, and a short spoken sample of each.

The list comes from the voice registry (data only).  A sample is spoken by
a narrate worker the first time it is asked for and kept in storage; the
web process loads no speech engine, so it waits a bounded time for the
worker and answers 503 when none is there.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp_apigami import docs

from api.auth.authn import require_user
from api.common_schemas import BEARER, NOT_FOUND, UNAUTHORIZED, envelope, error_doc
from api.keys import ENQUEUER, STORAGE
from api.responses import ok
from api.voices.schemas import VoiceListSchema
from pipeline.stages.narrate.voices import BY_ID, VOICES
from t2m.errors import NotFound, ServiceUnavailable
from t2m.queues import VOICE_SAMPLE

routes = web.RouteTableDef()
SAMPLE_WAIT_S = 15.0
SAMPLE_POLL_S = 0.25


def sample_key(voice_id: str) -> str:
    return f"tts/samples/{voice_id}.wav"  # written by pipeline.workers.narrate


@routes.get("/voices")
@docs(
    tags=["voices"],
    summary="The voices that can narrate a video",
    description="Use an id as the generate request's `voice`, or in a script's `[voice: id]`.",
    security=BEARER,
    responses={
        200: {"schema": envelope(VoiceListSchema, "VoiceList"), "description": "Voices"},
        401: UNAUTHORIZED,
    },
)
async def list_voices(request: web.Request) -> web.Response:
    await require_user(request)
    return ok({"items": [v.to_dict() for v in VOICES]})


@routes.get("/voices/{voice_id}/sample")
@docs(
    tags=["voices"],
    summary="A short spoken sample of a voice (audio/wav)",
    description="Spoken once by a narrate worker, then served from storage. The first "
    f"request waits up to {SAMPLE_WAIT_S:g} s for it.",
    security=BEARER,
    responses={
        200: {"description": "audio/wav"},
        401: UNAUTHORIZED,
        404: NOT_FOUND,
        503: error_doc(
            f"No narrate worker spoke the sample within {SAMPLE_WAIT_S:g} s (SERVICE_UNAVAILABLE)"
        ),
    },
)
async def voice_sample(request: web.Request) -> web.Response:
    await require_user(request)
    voice_id = request.match_info["voice_id"]
    if voice_id not in BY_ID:
        raise NotFound("No such voice", f"Known voices: {', '.join(BY_ID)}")
    storage = request.config_dict[STORAGE]
    key = sample_key(voice_id)
    if not await storage.exists(key):
        await request.config_dict[ENQUEUER].send(VOICE_SAMPLE, voice_id)
        deadline = time.monotonic() + SAMPLE_WAIT_S
        while not await storage.exists(key):
            if time.monotonic() >= deadline:
                raise ServiceUnavailable(
                    "The voice sample is not ready", "No narrate worker answered; try again"
                )
            await asyncio.sleep(SAMPLE_POLL_S)
    return web.Response(
        body=await storage.get_bytes(key),
        content_type="audio/wav",
        headers={"Cache-Control": "private, max-age=86400"},
    )
