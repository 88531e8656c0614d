"""Inputs schema fuzzing found answering 500; each must be a 400 envelope."""

from __future__ import annotations

import pytest


async def _expect_400(response) -> None:
    assert response.status == 400, await response.text()
    body = await response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"username": "a\\u0000b", "password": "whatever"}',  # NUL: PostgreSQL refuses it
        b'{"username": "a\\ud800b", "password": "whatever"}',  # lone surrogate: not encodable
    ],
    ids=["nul", "lone-surrogate"],
)
async def test_text_no_store_can_hold(client, raw):
    response = await client.post(
        "/api/v1/auth/login", data=raw, headers={"Content-Type": "application/json"}
    )
    await _expect_400(response)


@pytest.mark.parametrize("path", ["/login", "/generate-video", "/api/v1/files/upload"])
async def test_multipart_without_boundary(client, make_user, path):
    user = await make_user()
    response = await client.post(
        path, data=b"--x--\r\n", headers={**user.headers, "Content-Type": "multipart/form-data"}
    )
    await _expect_400(response)


async def test_malformed_multipart_part_header(client):
    body = (
        b'--b\r\nContent-Disposition: form-data; name="\x07"\r\n\r\nv\r\n'
        b'--b\r\nContent-Disposition: form-data; name="username"\r\n\r\nu\r\n--b--\r\n'
    )
    response = await client.post(
        "/login", data=body, headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    await _expect_400(response)


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/api/v1/files", {"params": {"page": str(10**20)}}),
        ("GET", "/api/v1/jobs", {"params": {"page": "1000001"}}),
        ("POST", "/api/v1/files/cleanup", {"json": {"older_than_days": 1e30}}),
    ],
    ids=["page-beyond-bigint", "page-too-far", "age-beyond-datetime"],
)
async def test_numbers_out_of_range(client, make_user, method, path, kwargs):
    user = await make_user()
    response = await client.request(method, path, headers=user.headers, **kwargs)
    await _expect_400(response)
