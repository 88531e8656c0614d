"""Signed links: work without a token, break on any change, expire."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from t2m import signing
from tests.api.files_helpers import upload
from tests.support.media import png_bytes


def _path(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


async def _signed(client, user, file_id: str, **body) -> tuple[str, dict[str, str]]:
    response = await client.post(
        f"/api/v1/files/{file_id}/signed-url", headers=user.headers, json=body
    )
    assert response.status == 200, await response.text()
    return _path((await response.json())["data"]["url"])


async def test_signed_link_downloads_without_a_token(client, make_user):
    user = await make_user()
    content = png_bytes()
    file_id = (await upload(client, user, content))["id"]

    path, query = await _signed(client, user, file_id, expires_in=600)
    assert query["inline"] == "false"
    response = await client.get(path, params=query)
    assert response.status == 200
    assert await response.read() == content
    assert response.headers["Content-Disposition"].startswith("attachment;")

    path, query = await _signed(client, user, file_id, inline=True)
    response = await client.get(path, params=query, headers={"Range": "bytes=0-3"})
    assert response.status == 206
    assert await response.read() == content[:4]
    assert response.headers["Content-Disposition"].startswith("inline;")


@pytest.mark.parametrize(
    "tamper",
    [
        lambda q: {**q, "inline": "true"},
        lambda q: {k: v for k, v in q.items() if k != "inline"},
        lambda q: {**q, "expires": str(int(q["expires"]) + 3600)},
        lambda q: {**q, "user_id": "usr_" + "0" * 24},
        lambda q: {
            **q,
            "signature": q["signature"][:-1] + ("0" if q["signature"][-1] != "0" else "1"),
        },
        lambda q: {**q, "quality": "720p"},
        lambda q: {**q, "extra": "1"},
        lambda q: {k: v for k, v in q.items() if k != "signature"},
    ],
)
async def test_tampered_links_are_403(client, make_user, tamper):
    user = await make_user()
    file_id = (await upload(client, user, png_bytes()))["id"]
    path, query = await _signed(client, user, file_id)
    response = await client.get(path + "?" + urlencode(tamper(query)))
    assert response.status == 403, await response.text()
    assert (await response.json())["error"]["code"] == "SIGNATURE_INVALID"


async def test_link_for_another_file_and_expired_link_are_403(client, make_user, settings):
    user = await make_user()
    first = (await upload(client, user, png_bytes(color=(1, 1, 1))))["id"]
    second = (await upload(client, user, png_bytes(color=(2, 2, 2))))["id"]
    path, query = await _signed(client, user, first)
    response = await client.get(path.replace(first, second), params=query)
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "SIGNATURE_INVALID"

    expired, _ = signing.signed_query(
        settings.signing_secret,
        first,
        user.id,
        signing.LinkKind.ORIGINAL,
        {"inline": "false"},
        60,
        now=time.time() - 3600,
    )
    response = await client.get(f"/api/v1/files/secure/{first}?{expired}")
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "SIGNATURE_EXPIRED"


async def test_link_stops_working_when_the_file_is_deleted(client, make_user):
    user = await make_user()
    file_id = (await upload(client, user, png_bytes()))["id"]
    path, query = await _signed(client, user, file_id)
    assert (await client.delete(f"/api/v1/files/{file_id}", headers=user.headers)).status == 200
    assert (await client.get(path, params=query)).status == 403


async def test_signed_url_request_validation(client, make_user):
    user = await make_user()
    file_id = (await upload(client, user, png_bytes()))["id"]
    for body in ({"expires_in": 0}, {"expires_in": 10**9}, {"size": "huge"}, {"quality": "x"}):
        response = await client.post(
            f"/api/v1/files/{file_id}/signed-url", headers=user.headers, json=body
        )
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "VALIDATION_ERROR"
