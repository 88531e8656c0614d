"""The OpenAPI document is valid and documents every route."""

from __future__ import annotations

from openapi_spec_validator import validate


async def test_openapi_document_is_valid_and_complete(client):
    response = await client.get("/api/v1/openapi.json")
    assert response.status == 200
    spec = await response.json()
    assert spec["openapi"].startswith("3.")
    validate(spec)

    documented = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    undocumented = []
    for resource in client.app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter")
        if (
            path is None
            or path.startswith("/api/docs")
            or path in ("/api/v1/openapi.json", "/docs")
        ):
            continue
        for route in resource:
            if route.method in ("HEAD", "OPTIONS"):
                continue
            if (route.method, path) not in documented:
                undocumented.append((route.method, path))
    assert undocumented == []
    assert "bearerAuth" in spec["components"]["securitySchemes"]


async def test_swagger_ui_is_served(client):
    response = await client.get("/api/docs")
    assert response.status == 200
    assert "swagger" in (await response.text()).lower()
    response = await client.get("/docs", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == "/api/docs"
