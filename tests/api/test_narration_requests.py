"""Narration options, scenes as data and the voice list, at the API (no engine loaded)."""

from __future__ import annotations

import sys

from api.keys import STORAGE


async def _generate(client, user, **body):
    response = await client.post("/api/v1/videos/generate", json=body, headers=user.headers)
    return response.status, await response.json()


async def test_the_voice_list(client, make_user):
    user = await make_user()
    response = await client.get("/api/v1/voices", headers=user.headers)
    assert response.status == 200
    items = (await response.json())["data"]["items"]
    by_id = {v["id"]: v for v in items}
    assert by_id["en-us-joe"]["engine"] == "piper"
    assert by_id["en-us-joe"]["languages"] == ["en"]
    assert by_id["espeak-zh"]["engine"] == "espeak-ng"
    assert all(set(v) == {"id", "engine", "languages", "quality", "licence"} for v in items)
    response = await client.get("/api/v1/voices/nobody/sample", headers=user.headers)
    assert response.status == 404
    # The web process never loads a speech engine.
    assert not [m for m in sys.modules if m.startswith(("piper", "onnxruntime"))]


async def test_unknown_voice_is_refused_listing_the_voices(client, make_user):
    user = await make_user()
    status, body = await _generate(client, user, script="Hello.", voice="nobody")
    assert status == 400 and body["error"]["code"] == "VALIDATION_ERROR"
    assert "en-us-joe" in str(body["error"])
    status, body = await _generate(client, user, script="[voice: nobody]\nHello.")
    assert status == 400 and "espeak-fr" in str(body["error"])


async def test_a_duration_far_too_short_for_the_speech_is_refused(client, make_user):
    user = await make_user()
    long_text = " ".join(["word"] * 60)
    status, body = await _generate(client, user, script=f"[duration: 2s]\n{long_text}")
    assert status == 400 and body["error"]["code"] == "VALIDATION_ERROR"
    assert "scene 1" in str(body["error"])
    # Silent, the same scene is fine.
    status, body = await _generate(
        client, user, script=f"[duration: 2s]\n{long_text}", narration="none"
    )
    assert status == 202, body


async def test_scenes_as_data_become_the_script(client, make_user):
    user = await make_user()
    status, body = await _generate(
        client,
        user,
        scenes=[
            {"text": "# Welcome\nFirst scene.", "duration": 4},
            {"text": "[not a directive]", "narration": "Read this instead.", "voice": "en-us-joe"},
            {"text": "Quiet.", "narration": "", "background": "#112233", "transition": "cut"},
        ],
        speech_rate=1.1,
        language="en",
    )
    assert status == 202, body
    job_id = body["data"]["id"]
    script = (await client.app[STORAGE].get_bytes(f"scripts/{job_id}.txt")).decode()
    assert "[duration: 4s]" in script and "\\[not a directive]" in script
    assert "[narration: Read this instead.]" in script and "[silent]" in script
    status, body = await _generate(client, user, scenes=[{"text": "x", "transition": "wipe"}])
    assert status == 400
    status, body = await _generate(client, user, scenes=[{"text": "x", "background": "red"}])
    assert status == 400 and "scenes" in str(body["error"]) and "background" in str(body)
    status, body = await _generate(client, user, script="x", scenes=[{"text": "x"}])
    assert status == 400
