"""User files never run as pages on the API's origin.

Every serving path (API download/stream, signed links, the root /download and
/stream aliases, thumbnails) sends ``X-Content-Type-Options: nosniff``; HTML,
SVG, XML and script uploads go out as attachments under a sandbox CSP, even
where the route asks for inline display.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import ClientResponse

from api.serving import as_attachment, is_active_content, is_active_filename
from tests.api.files_helpers import upload
from tests.support.media import png_bytes

ACTIVE_UPLOADS = [
    (
        "page.html",
        b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>",
    ),
    (
        "drawing.svg",
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.domain)</script></svg>',
    ),
    ("feed.xml", b'<?xml version="1.0"?><x:html xmlns:x="http://www.w3.org/1999/xhtml"/>'),
    ("app.js", b"fetch('/api/v1/auth/me').then(r => r.text()).then(alert)"),
]


def _signed_path(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


async def _responses(client, user, file_id: str) -> dict[str, ClientResponse]:
    """The file fetched through every path that serves its bytes."""
    got: dict[str, ClientResponse] = {}
    for path in (
        f"/api/v1/files/{file_id}/download",
        f"/api/v1/files/{file_id}/stream",
        f"/download/{file_id}",
        f"/stream/{file_id}",
    ):
        got[path] = await client.get(path, headers=user.headers)
    for inline in (False, True):
        response = await client.post(
            f"/api/v1/files/{file_id}/signed-url",
            headers=user.headers,
            json={"expires_in": 600, "inline": inline},
        )
        assert response.status == 200, await response.text()
        path, query = _signed_path((await response.json())["data"]["url"])
        got[f"signed inline={inline}"] = await client.get(path, params=query)
    return got


@pytest.mark.parametrize(("filename", "content"), ACTIVE_UPLOADS)
async def test_active_uploads_are_attachments_under_a_sandbox(client, make_user, filename, content):
    user = await make_user()
    file_id = (await upload(client, user, content, filename))["id"]
    for path, response in (await _responses(client, user, file_id)).items():
        assert response.status == 200, (path, await response.text())
        headers = response.headers
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Content-Disposition"].startswith("attachment;"), (path, headers)
        assert "sandbox" in headers["Content-Security-Policy"], path
        assert await response.read() == content, path


async def test_passive_uploads_keep_inline_display_and_get_nosniff(client, make_user):
    user = await make_user()
    content = png_bytes()
    file_id = (await upload(client, user, content))["id"]
    responses = await _responses(client, user, file_id)
    for path, response in responses.items():
        assert response.status == 200, path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert "Content-Security-Policy" not in response.headers, path
    stream = responses[f"/api/v1/files/{file_id}/stream"]
    assert stream.headers["Content-Disposition"].startswith("inline;")
    # A revalidation (304) carries the header too.
    download = responses[f"/api/v1/files/{file_id}/download"]
    again = await client.get(
        f"/api/v1/files/{file_id}/download",
        headers={**user.headers, "If-None-Match": download.headers["ETag"]},
    )
    assert again.status == 304
    assert again.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("content_type", "active"),
    [
        ("text/html", True),
        ("TEXT/HTML; charset=utf-8", True),
        ("image/svg+xml", True),
        ("application/atom+xml", True),
        ("application/javascript", True),
        ("text/xml", True),
        ("", True),
        ("text/html\r\nX: y", True),
        ("image/png", False),
        ("video/mp4", False),
        ("application/pdf", False),
        ("text/plain; charset=utf-8", False),
    ],
)
def test_active_content_types(content_type: str, active: bool) -> None:
    assert is_active_content(content_type) is active


def test_as_attachment_keeps_the_file_names() -> None:
    value = "inline; filename=\"a.html\"; filename*=UTF-8''%C3%A9.html"
    assert as_attachment(value) == "attachment; filename=\"a.html\"; filename*=UTF-8''%C3%A9.html"
    assert as_attachment('attachment; filename="a"') == 'attachment; filename="a"'


@pytest.mark.parametrize(
    ("filename", "active"),
    [
        ("a.html", True),
        ("A.HTM", True),
        ("x.svg", True),
        ("feed.xml", True),
        ("app.js", True),
        ("page.html.", True),
        ("notes.txt", False),
        ("html", False),
        ("", False),
        (None, False),
    ],
)
def test_active_file_names(filename: str | None, active: bool) -> None:
    assert is_active_filename(filename) is active
