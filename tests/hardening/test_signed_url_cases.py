"""Signed links, the cases tests/api/test_signed_urls.py leaves out.

That module covers changing inline/expires/user_id/signature, adding quality
or an unknown parameter, dropping the signature, another file of the same
user, expiry and deletion.  Here: the remaining signed parameters (size,
file_type), a real other user's id, another user's file, and a link that
outlives its signer's access.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
from yarl import URL

from t2m import signing
from tests.api.files_helpers import upload
from tests.support.media import png_bytes


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


# --- a corpus of tampering cases -------------------------------------------------
#
# Each case rewrites the raw (percent-encoded) query of a link the API issued
# and is sent byte for byte, so encoded separators reach the server as such.

Pairs = list[str]  # the raw "name=value" pieces of a query, in order


def _raw_pairs(url: str) -> tuple[str, Pairs]:
    parts = urlsplit(url)
    return parts.path, parts.query.split("&")


def _value(pairs: Pairs, name: str) -> str:
    return next(p.split("=", 1)[1] for p in pairs if p.split("=", 1)[0] == name)


def _without(pairs: Pairs, *names: str) -> Pairs:
    return [p for p in pairs if p.split("=", 1)[0] not in names]


def _replace(pairs: Pairs, name: str, raw_value: str) -> Pairs:
    return [f"{name}={raw_value}" if p.split("=", 1)[0] == name else p for p in pairs]


def _rename(pairs: Pairs, name: str, new_name: str) -> Pairs:
    return [new_name + p[len(name) :] if p.split("=", 1)[0] == name else p for p in pairs]


Tamper = Callable[[Pairs], Pairs]

# What a link of any kind must resist.
COMMON_TAMPERING: dict[str, Tamper] = {
    # Dropped parameters.
    "drop-kind": lambda q: _without(q, "kind"),
    "drop-user": lambda q: _without(q, "user_id"),
    "drop-expires": lambda q: _without(q, "expires"),
    "drop-signature": lambda q: _without(q, "signature"),
    # Repeated parameters, with the same or another value.
    "repeat-kind": lambda q: [*q, f"kind={_value(q, 'kind')}"],
    "repeat-user": lambda q: [*q, f"user_id={_value(q, 'user_id')}"],
    "repeat-expires": lambda q: [*q, f"expires={_value(q, 'expires')}"],
    "repeat-signature": lambda q: [*q, f"signature={_value(q, 'signature')}"],
    "repeat-kind-as-original": lambda q: [*q, "kind=original"],
    # Another spelling of the same expiry (the number is unchanged).
    "expires-leading-zero": lambda q: _replace(q, "expires", "0" + _value(q, "expires")),
    "expires-plus-sign": lambda q: _replace(q, "expires", "%2B" + _value(q, "expires")),
    "expires-spaces": lambda q: _replace(q, "expires", "%20" + _value(q, "expires") + "%20"),
    "expires-underscore": lambda q: _replace(
        q, "expires", _value(q, "expires")[:1] + "_" + _value(q, "expires")[1:]
    ),
    "expires-arabic-indic-digits": lambda q: _replace(
        q,
        "expires",
        quote("".join(chr(0x0660 + int(d)) for d in _value(q, "expires"))),
    ),
    "expires-fullwidth-digits": lambda q: _replace(
        q,
        "expires",
        quote("".join(chr(0xFF10 + int(d)) for d in _value(q, "expires"))),
    ),
    "expires-trailing-newline": lambda q: _replace(q, "expires", _value(q, "expires") + "%0A"),
    # Case changes.
    "kind-uppercase": lambda q: _replace(q, "kind", _value(q, "kind").upper()),
    "name-uppercase": lambda q: _rename(q, "kind", "KIND"),
    "signature-uppercase": lambda q: _replace(q, "signature", _value(q, "signature").upper()),
    "user-uppercase": lambda q: _replace(q, "user_id", _value(q, "user_id").upper()),
    # Unicode look-alikes: Cyrillic "ѕ"/"і" for Latin "s"/"i", a fullwidth "_".
    "kind-lookalike-name": lambda q: _rename(q, "kind", quote("kіnd")),
    "user-lookalike-name": lambda q: _rename(q, "user_id", quote("user＿id")),
    "signature-lookalike-name": lambda q: _rename(q, "signature", quote("ѕignature")),
    # Encoded separators smuggling a second parameter into a value.
    "newline-in-user": lambda q: _replace(
        q, "user_id", _value(q, "user_id") + "%0Akind%3Doriginal"
    ),
    "ampersand-in-user": lambda q: _replace(
        q, "user_id", _value(q, "user_id") + "%26kind%3Doriginal"
    ),
    "nul-in-signature": lambda q: _replace(q, "signature", _value(q, "signature") + "%00"),
    "semicolon-separator": lambda q: [*q[:-1], q[-1] + ";kind=original"],
    # Swapping the kind (see also each kind's corpus).
    "kind-to-original-inline": lambda q: [*_replace(q, "kind", "original"), "inline=false"],
    "kind-to-hls": lambda q: _replace(q, "kind", "hls"),
    "kind-empty": lambda q: _replace(q, "kind", ""),
    "unknown-parameter": lambda q: [*q, "download=1"],
    "empty-parameter-name": lambda q: [*q, "=x"],
}

# What a thumbnail link (size=small) must resist, beyond the common cases.
THUMBNAIL_TAMPERING: dict[str, Tamper] = {
    # The finding: a separator smuggled into another value, size dropped.
    "size-smuggled-into-inline": lambda q: [*_without(q, "size"), "inline=false%0Asize%3Dsmall"],
    "size-smuggled-into-inline-as-original": lambda q: [
        *_replace(_without(q, "size"), "kind", "original"),
        "inline=false%0Asize%3Dsmall",
    ],
    "size-smuggled-into-user": lambda q: _replace(
        _without(q, "size"), "user_id", _value(q, "user_id") + "%0Asize%3Dsmall"
    ),
    "drop-size": lambda q: _without(q, "size"),
    "repeat-size": lambda q: [*q, "size=large"],
    "repeat-size-same": lambda q: [*q, "size=small"],
    "size-uppercase": lambda q: _replace(q, "size", "SMALL"),
    "size-name-uppercase": lambda q: _rename(q, "size", "Size"),
    "size-lookalike-value": lambda q: _replace(q, "size", quote("ѕmall")),
    "size-lookalike-name": lambda q: _rename(q, "size", quote("ѕize")),
    "size-trailing-newline": lambda q: _replace(q, "size", "small%0A"),
    "size-with-second-size": lambda q: _replace(q, "size", "small%26size%3Dlarge"),
    "size-changed": lambda q: _replace(q, "size", "large"),
    "add-inline": lambda q: [*q, "inline=false"],
    "add-quality": lambda q: [*q, "quality=original"],
    "kind-to-original": lambda q: _replace(q, "kind", "original"),
    "kind-to-rendition": lambda q: _replace(q, "kind", "rendition"),
}

# What a rendition link (quality=480p) must resist, beyond the common cases.
RENDITION_TAMPERING: dict[str, Tamper] = {
    "quality-smuggled-into-inline": lambda q: [
        *_replace(_without(q, "quality"), "kind", "original"),
        "inline=false%0Aquality%3D480p",
    ],
    "quality-smuggled-into-inline-kept-kind": lambda q: [
        *_without(q, "quality"),
        "inline=false%0Aquality%3D480p",
    ],
    "drop-quality": lambda q: _without(q, "quality"),
    "repeat-quality": lambda q: [*q, "quality=original"],
    "quality-to-original": lambda q: _replace(q, "quality", "original"),
    "quality-uppercase": lambda q: _replace(q, "quality", "480P"),
    "quality-arabic-indic-digits": lambda q: _replace(q, "quality", quote("٤٨٠p")),
    "quality-trailing-newline": lambda q: _replace(q, "quality", "480p%0A"),
    "add-size": lambda q: [*q, "size=small"],
    "kind-to-original": lambda q: _replace(q, "kind", "original"),
    "kind-to-thumbnail": lambda q: _replace(q, "kind", "thumbnail"),
}

# What an original link (inline=false) must resist, beyond the common cases.
ORIGINAL_TAMPERING: dict[str, Tamper] = {
    "drop-inline": lambda q: _without(q, "inline"),
    "inline-true": lambda q: _replace(q, "inline", "true"),
    "inline-uppercase": lambda q: _replace(q, "inline", "False"),
    "inline-one": lambda q: _replace(q, "inline", "0"),
    "repeat-inline": lambda q: [*q, "inline=true"],
    "repeat-inline-same": lambda q: [*q, "inline=false"],
    "inline-smuggles-quality": lambda q: _replace(q, "inline", "false%0Aquality%3D480p"),
    "add-size": lambda q: [*q, "size=small"],
    "kind-to-thumbnail": lambda q: _replace(q, "kind", "thumbnail"),
    "kind-to-rendition": lambda q: _replace(q, "kind", "rendition"),
}


# What an hls link (no parameters of its own) must resist, beyond the common cases.
HLS_TAMPERING: dict[str, Tamper] = {
    "add-size": lambda q: [*q, "size=small"],
    "add-format": lambda q: [*q, "format=vtt"],
    "add-path": lambda q: [*q, "path=720p"],
    "kind-to-original": lambda q: _replace(q, "kind", "original"),
    "kind-to-captions-vtt": lambda q: [*_replace(q, "kind", "captions"), "format=vtt"],
    "kind-to-thumbnail-small": lambda q: [*_replace(q, "kind", "thumbnail"), "size=small"],
}


async def _issue(client: Any, user: Any, file_id: str, **body: Any) -> tuple[str, Pairs]:
    response = await client.post(
        f"/api/v1/files/{file_id}/signed-url", headers=user.headers, json=body
    )
    assert response.status == 200, await response.text()
    return _raw_pairs((await response.json())["data"]["url"])


async def _status(client: Any, path: str, pairs: Pairs) -> tuple[int, str]:
    # encoded=True: the query goes out exactly as written, escapes and all.
    response = await client.get(URL(path + "?" + "&".join(pairs), encoded=True))
    body = await response.read()
    code = ""
    if response.content_type == "application/json":
        code = json.loads(body).get("error", {}).get("code", "")
    return response.status, code


async def _all_refused(
    client: Any, path: str, pairs: Pairs, corpus: dict[str, Tamper]
) -> list[str]:
    """The cases of the corpus that were not refused with 403 SIGNATURE_INVALID."""
    accepted = []
    for name, tamper in corpus.items():
        status, code = await _status(client, path, tamper(pairs))
        if (status, code) != (403, "SIGNATURE_INVALID"):
            accepted.append(f"{name}: {status} {code}")
    return accepted


@pytest.mark.parametrize(
    ("body", "corpus", "kind"),
    [
        ({"size": "small"}, THUMBNAIL_TAMPERING, "thumbnail"),
        ({"quality": "480p"}, RENDITION_TAMPERING, "rendition"),
        ({"inline": False}, ORIGINAL_TAMPERING, "original"),
    ],
    ids=["thumbnail", "rendition", "original"],
)
async def test_tampering_corpus(client, make_user, body, corpus, kind):
    user = await make_user()
    file_id = (await upload(client, user, png_bytes()))["id"]
    path, pairs = await _issue(client, user, file_id, **body)
    assert f"kind={kind}" in pairs
    assert await _all_refused(client, path, pairs, {**COMMON_TAMPERING, **corpus}) == []
    # The untouched link, and the same link with its parameters in any order,
    # still pass the signature check (a thumbnail not yet made is a 404).
    for order in (pairs, pairs[::-1], sorted(pairs)):
        status, code = await _status(client, path, order)
        assert status in (200, 404), (status, code)
        assert code != "SIGNATURE_INVALID"


@pytest.mark.parametrize("target", ["master.m3u8", "720p/index.m3u8", "720p/seg_00000.m4s"])
async def test_hls_tampering_corpus(client, make_user, target):
    """Playlists (checked against the database too) and segments (HMAC alone)
    refuse the same corpus."""
    user = await make_user()
    file_id = (await upload(client, user, png_bytes()))["id"]
    path, pairs = await _issue(client, user, file_id, format="hls")
    assert "kind=hls" in pairs and path.endswith("/hls/master.m3u8")
    path = path.replace("master.m3u8", target)
    # (kind-to-hls changes nothing on an hls link)
    common = {name: t for name, t in COMMON_TAMPERING.items() if name != "kind-to-hls"}
    assert await _all_refused(client, path, pairs, {**common, **HLS_TAMPERING}) == []
    # Untouched, in any order: past the signature (a picture has no tree: 404).
    for order in (pairs, pairs[::-1], sorted(pairs)):
        assert await _status(client, path, order) == (404, "RESOURCE_NOT_FOUND")
    # Another kind's valid link does not open the tree.
    _, thumbnail = await _issue(client, user, file_id, size="small")
    assert await _status(client, path, thumbnail) == (403, "SIGNATURE_INVALID")


async def test_the_path_file_id_is_checked_exactly(client, make_user):
    user = await make_user()
    file_id = (await upload(client, user, png_bytes()))["id"]
    path, pairs = await _issue(client, user, file_id)
    for other in (file_id.upper(), file_id + "%0A", file_id + "%20", quote(file_id + "\u200b")):
        status, code = await _status(client, path.replace(file_id, other), pairs)
        assert (status, code) == (403, "SIGNATURE_INVALID"), other


async def test_each_kind_serves_only_what_it_names(client, make_user):
    user = await make_user()
    content = png_bytes()
    file_id = (await upload(client, user, content))["id"]
    # An original link downloads the bytes, as an attachment unless asked inline.
    path, pairs = await _issue(client, user, file_id, kind="original")
    response = await client.get(URL(path + "?" + "&".join(pairs), encoded=True))
    assert response.status == 200
    assert await response.read() == content
    assert response.headers["Content-Disposition"].startswith("attachment;")
    # A thumbnail link never falls back to the original: no thumbnail, a 404.
    path, pairs = await _issue(client, user, file_id, size="small")
    response = await client.get(URL(path + "?" + "&".join(pairs), encoded=True))
    assert response.status == 404
    # A rendition link answers as the stream endpoint does.
    path, pairs = await _issue(client, user, file_id, quality="auto")
    response = await client.get(URL(path + "?" + "&".join(pairs), encoded=True))
    assert response.status == 200
    assert response.headers["X-T2M-Quality"] == "original"


@pytest.mark.parametrize(
    "body",
    [
        {"size": "small", "quality": "480p"},
        {"kind": "original", "size": "small"},
        {"kind": "thumbnail", "quality": "480p"},
        {"kind": "rendition", "size": "small"},
        {"kind": "hls", "size": "small"},
        {"kind": "hls", "format": "vtt"},
        {"kind": "captions", "format": "hls"},
        {"format": "hls", "quality": "480p"},
        {"kind": "ORIGINAL"},
        {"quality": "480p\n"},
        {"quality": "٤٨٠p"},
    ],
)
async def test_a_link_asked_for_two_things_is_refused(client, make_user, body):
    user = await make_user()
    file_id = (await upload(client, user, png_bytes()))["id"]
    response = await client.post(
        f"/api/v1/files/{file_id}/signed-url", headers=user.headers, json=body
    )
    assert response.status == 400, await response.text()
    assert (await response.json())["error"]["code"] == "VALIDATION_ERROR"


def test_the_signed_statement_is_unambiguous():
    """Different grants never sign alike, however their values are spelt."""
    secret = "s" * 48
    user, file_id = "usr_" + "a" * 24, "file_" + "b" * 24
    issued = {
        signing.signed_query(secret, file_id, user, kind, params, 60, now=1_000)[0]
        for kind, params in [
            (signing.LinkKind.ORIGINAL, {"inline": "false"}),
            (signing.LinkKind.ORIGINAL, {"inline": "true"}),
            (signing.LinkKind.THUMBNAIL, {"size": "small"}),
            (signing.LinkKind.RENDITION, {"quality": "original"}),
            (signing.LinkKind.HLS, {}),
        ]
    }
    signatures = {parse_qs(q)["signature"][0] for q in issued}
    assert len(signatures) == 5
    with pytest.raises(ValueError, match="cannot sign"):
        signing.signed_query(
            secret, file_id, user, signing.LinkKind.ORIGINAL, {"inline": "false\nsize=small"}, 60
        )
    with pytest.raises(ValueError, match="cannot sign"):
        signing.signed_query(secret, file_id, user, signing.LinkKind.THUMBNAIL, {}, 60)
