"""Signed links, the cases tests/api/test_signed_urls.py leaves out.

That module covers changing inline/expires/user_id/signature, adding quality
or an unknown parameter, dropping the signature, another file of the same
user, expiry and deletion.  Here: the remaining signed parameters (size,
file_type), a real other user's id, another user's file, and a link that
outlives its signer's access.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.api.files_helpers import upload
from tests.media_factory import png_bytes


async def _signed(client, user, file_id: str, **body) -> tuple[str, dict[str, str]]:
    response = await client.post(
        f"/api/v1/files/{file_id}/signed-url", headers=user.headers, json=body
    )
    assert response.status == 200, await response.text()
    parts = urlsplit((await response.json())["data"]["url"])
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


async def _refused(client, path: str, query: dict[str, str], code: str) -> None:
    response = await client.get(path + "?" + urlencode(query))
    assert response.status == 403, await response.text()
    assert (await response.json())["error"]["code"] == code


@pytest.mark.parametrize(
    ("signed_with", "tamper"),
    [
        ({}, lambda q: {**q, "size": "small"}),
        ({}, lambda q: {**q, "file_type": "image"}),
        ({"size": "small"}, lambda q: {**q, "size": "large"}),
        ({"size": "small"}, lambda q: {k: v for k, v in q.items() if k != "size"}),
        ({"quality": "480p"}, lambda q: {**q, "quality": "original"}),
        ({}, lambda q: {**q, "expires": str(int(q["expires"]) - 1)}),
    ],
    ids=["add-size", "add-file-type", "change-size", "drop-size", "change-quality", "shorten"],
)
async def test_every_signed_parameter_is_covered(client, make_user, signed_with, tamper):
    user = await make_user()
    file_id = (await upload(client, user, png_bytes()))["id"]
    path, query = await _signed(client, user, file_id, **signed_with)
    await _refused(client, path, tamper(query), "SIGNATURE_INVALID")


async def test_a_real_other_user_or_file_does_not_fit_the_signature(client, make_user):
    owner, other = await make_user(), await make_user()
    owners_file = (await upload(client, owner, png_bytes(color=(5, 5, 5))))["id"]
    others_file = (await upload(client, other, png_bytes(color=(6, 6, 6))))["id"]
    path, query = await _signed(client, owner, owners_file)
    # The owner's link claiming to be issued to another (existing) user.
    await _refused(client, path, {**query, "user_id": other.id}, "SIGNATURE_INVALID")
    # The other user's valid link pointed at the owner's file.
    other_path, other_query = await _signed(client, other, others_file)
    await _refused(
        client, other_path.replace(others_file, owners_file), other_query, "SIGNATURE_INVALID"
    )
    # The untouched link still works, with or without anyone's token.
    response = await client.get(path, params=query, headers=other.headers)
    assert response.status == 200


async def test_a_link_ends_with_its_signers_access(client, make_user, db):
    user = await make_user()
    file_id = (await upload(client, user, png_bytes()))["id"]
    path, query = await _signed(client, user, file_id)
    async with db.acquire() as conn:
        await conn.execute("UPDATE users SET is_active = false WHERE id = $1", user.id)
    await _refused(client, path, query, "SIGNATURE_INVALID")
