"""The error envelope for failures aiohttp itself detects."""

from __future__ import annotations

import io


async def test_unknown_route_is_a_404_envelope(client):
    response = await client.get("/api/v1/no/such/thing")
    assert response.status == 404
    body = await response.json()
    assert body == {**body, "success": False}
    assert body["error"]["code"] == "RESOURCE_NOT_FOUND"


async def test_wrong_method_is_a_405_envelope(client):
    response = await client.delete("/api/v1/auth/login")
    assert response.status == 405
    body = await response.json()
    assert body["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert "POST" in response.headers["Allow"]


async def test_oversized_body_is_413(client, settings):
    payload = b'{"username": "' + b"a" * (settings.max_request_body + 10) + b'"}'
    response = await client.post(
        "/api/v1/auth/login",
        data=io.BytesIO(payload),  # a raw body this large makes aiohttp warn
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_request_id_is_echoed_or_made(client):
    response = await client.get("/api/v1/auth/health", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    response = await client.get("/api/v1/auth/health", headers={"X-Request-ID": "bad id; <script>"})
    assert response.headers["X-Request-ID"] not in ("", "bad id; <script>")
