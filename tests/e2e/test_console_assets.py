"""The console's page and static files: types, caching, no escape from its folder."""

from __future__ import annotations

import pytest

from api.console.routes import CONSOLE_DIR


async def test_root_serves_the_console_page(client):
    response = await client.get("/")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    page = await response.text()
    assert '<meta name="viewport"' in page
    assert 'src="/console/js/main.js"' in page

    again = await client.get("/", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304
    assert await again.read() == b""


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/console/js/main.js", "text/javascript; charset=utf-8"),
        ("/console/css/console.css", "text/css; charset=utf-8"),
        ("/console/img/icon.svg", "image/svg+xml"),
    ],
)
async def test_assets_have_their_types_and_etags(client, path, content_type):
    response = await client.get(path)
    assert response.status == 200
    assert response.headers["Content-Type"] == content_type
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    etag = response.headers["ETag"]
    assert await response.read() == (CONSOLE_DIR / path.removeprefix("/console/")).read_bytes()
    cached = await client.get(path, headers={"If-None-Match": f'W/{etag}, "other"'})
    assert cached.status == 304
    assert cached.headers["ETag"] == etag


async def test_every_module_the_page_imports_is_served(client):
    # A module missing from the folder would break the page silently.
    for module in sorted((CONSOLE_DIR / "js").glob("*.js")):
        text = module.read_text()
        for line in text.splitlines():
            if line.startswith("import ") and ' from "./' in line:
                name = line.split(' from "./', 1)[1].split('"', 1)[0]
                assert (CONSOLE_DIR / "js" / name).is_file(), f"{module.name} imports {name}"
        response = await client.get(f"/console/js/{module.name}")
        assert response.status == 200


@pytest.mark.parametrize(
    "path",
    [
        "/console/../routes/console.py",
        "/console/%2e%2e/routes/console.py",
        "/console/js/../../routes/console.py",
        "/console/js/%2e%2e%2f%2e%2e%2fapp.py",
        "/console/js/..%5c..%5capp.py",
        "/console/js",
        "/console/js/",
        "/console/nothing.js",
        "/console/index.html%00.js",
        "/console/.hidden",
    ],
)
async def test_no_path_leaves_the_console_folder(client, path):
    response = await client.get(path)
    assert response.status == 404, path
    body = await response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "RESOURCE_NOT_FOUND"


async def test_the_console_does_not_shadow_the_root_api(client):
    response = await client.get("/health")
    assert response.status == 200
    assert "json" in response.headers["Content-Type"]
