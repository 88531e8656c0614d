"""Private tag vocabularies through the API: one user's tags are never suggested to another;
administrators curate and promote the global vocabulary; feedback on a decision whose row
is not written yet is still attributed to it."""

from __future__ import annotations

from api.recommendations.scorer import SCORER_CACHE
from db import recommender as rec_rows
from db.migrate import available_migrations
from tests.api.files_helpers import upload
from tests.support.media import png_bytes

SECRET_TAGS = "project-nightingale acquisition-target-zeta"


async def _suggested(client, user, file_id: str, k: int = 20) -> list[str]:
    response = await client.get(
        f"/api/v1/files/{file_id}/recommended-tags?k={k}", headers=user.headers
    )
    assert response.status == 200, await response.text()
    return [t["tag"] for t in (await response.json())["data"]["tags"]]


async def test_one_users_tags_are_never_suggested_to_another(client, make_user, db):
    alice, bob = await make_user(), await make_user()
    # Alice's private tags, and a title that names them word for word
    await upload(client, alice, png_bytes(), "a.png", title="notes", tags=SECRET_TAGS)
    bait = "Project nightingale acquisition target zeta"
    alice_file = (await upload(client, alice, png_bytes(color=(1, 2, 3)), "b.png", title=bait))[
        "id"
    ]
    bob_file = (await upload(client, bob, png_bytes(color=(4, 5, 6)), "c.png", title=bait))["id"]
    await upload(client, bob, png_bytes(color=(7, 8, 9)), "d.png", tags="holiday beach")

    alice_sees = await _suggested(client, alice, alice_file)
    assert "project-nightingale" in alice_sees  # her own tags are candidates for her
    bob_sees = await _suggested(client, bob, bob_file)
    assert not set(bob_sees) & set(SECRET_TAGS.split())
    assert set(bob_sees) <= {"holiday", "beach"}

    # an admin may read Alice's file, but suggestions come from the admin's own tags
    admin = await make_user("ADMIN")
    assert not set(await _suggested(client, admin, alice_file)) & set(SECRET_TAGS.split())

    # Bob accepting a tag (typed by him) grows his vocabulary only, not Alice's
    response = await client.post(
        "/api/v1/feedback",
        json={"content_id": bob_file, "event_type": "tag_accept", "tags": ["bobs-own-word"]},
        headers=bob.headers,
    )
    assert response.status == 202
    assert "bobs-own-word" not in await _suggested(client, alice, alice_file)
    async with db.acquire() as conn:
        assert "bobs-own-word" in await rec_rows.user_tag_counts(conn, bob.id)
        assert "bobs-own-word" not in await rec_rows.tag_counts(conn)  # not global


async def test_administrators_curate_and_promote_the_global_vocabulary(client, make_user):
    users = [await make_user() for _ in range(3)]
    for i, user in enumerate(users):
        await upload(client, user, png_bytes(color=(i, 1, 1)), f"{i}.png", tags="sunrise")
    await upload(client, users[0], png_bytes(color=(9, 9, 1)), "x.png", tags="only-mine")
    admin = await make_user("ADMIN")

    listed = await client.get("/api/v1/recommender/vocabulary", headers=users[0].headers)
    assert listed.status == 403
    response = await client.get(
        "/api/v1/recommender/vocabulary/candidates?min_users=3", headers=admin.headers
    )
    assert response.status == 200
    candidates = (await response.json())["data"]["candidates"]
    assert [c["tag"] for c in candidates] == ["sunrise"]  # one user's tag is not listed
    assert candidates[0]["users"] == 3
    bad = await client.get(
        "/api/v1/recommender/vocabulary/candidates?min_users=1", headers=admin.headers
    )
    assert bad.status == 400

    response = await client.post(
        "/api/v1/recommender/vocabulary/promote", json={"tags": ["Sunrise"]}, headers=admin.headers
    )
    assert response.status == 201
    assert (await response.json())["data"] == {"added": ["sunrise"], "already_present": []}
    response = await client.post(
        "/api/v1/recommender/vocabulary", json={"tags": ["#Nature", "  "]}, headers=admin.headers
    )
    assert response.status == 201
    response = await client.post(
        "/api/v1/recommender/vocabulary", json={"tags": ["!!!"]}, headers=admin.headers
    )
    assert response.status == 400
    vocab = (
        await (await client.get("/api/v1/recommender/vocabulary", headers=admin.headers)).json()
    )["data"]
    assert {(t["tag"], t["source"]) for t in vocab["tags"]} == {
        ("sunrise", "promoted"),
        ("nature", "curated"),
    }

    # a newcomer with no tags of their own gets the global vocabulary, nothing private
    newcomer = await make_user()
    file_id = (await upload(client, newcomer, png_bytes(color=(3, 3, 3)), "n.png"))["id"]
    assert set(await _suggested(client, newcomer, file_id)) == {"sunrise", "nature"}

    removed = await client.delete("/api/v1/recommender/vocabulary/nature", headers=admin.headers)
    assert removed.status == 200
    again = await client.delete("/api/v1/recommender/vocabulary/nature", headers=admin.headers)
    assert again.status == 404
    assert set(await _suggested(client, newcomer, file_id)) == {"sunrise"}


async def test_feedback_on_a_decision_not_yet_written_is_attributed_to_it(client, make_user, db):
    user = await make_user()
    file_id = (await upload(client, user, png_bytes(), "a.png", tags="alpha beta gamma"))["id"]
    other = (await upload(client, user, png_bytes(color=(2, 2, 2)), "b.png"))["id"]
    cache = client.app[SCORER_CACHE]
    cache.decisions.flush_s = 3600.0  # the batch would wait: only the feedback writes it
    response = await client.get(f"/api/v1/files/{other}/recommended-tags?k=2", headers=user.headers)
    rec = (await response.json())["data"]
    assert cache.decisions.is_pending(rec["recommendation_id"])
    shown = rec["tags"][0]["tag"]
    response = await client.post(
        "/api/v1/feedback",
        json={
            "content_id": other,
            "event_type": "tag_accept",
            "tags": [shown],
            "recommendation_id": rec["recommendation_id"],
        },
        headers=user.headers,
    )
    assert response.status == 202, await response.text()
    async with db.acquire() as conn, conn.transaction():
        rows = await rec_rows.claim_unprocessed_feedback(conn, 100)
    assert [list(r["shown_tags"]) for r in rows] == [[t["tag"] for t in rec["tags"]]]

    # an id this service never issued for that content is refused
    response = await client.post(
        "/api/v1/feedback",
        json={
            "content_id": file_id,
            "event_type": "tag_reject",
            "tags": ["alpha"],
            "recommendation_id": rec["recommendation_id"],
        },
        headers=user.headers,
    )
    assert response.status == 400


async def test_a_new_user_gets_the_default_vocabulary_before_any_curation(client, make_user, db):
    # the suite empties every table between tests: apply the seeding migration again,
    # as an upgrade or a first start does
    seed = next(m for m in available_migrations() if m.name == "default_tag_vocabulary")
    async with db.acquire() as conn:
        await conn.execute(seed.sql)
        defaults = set(await rec_rows.tag_counts(conn))
    assert {"beach", "sunset", "travel"} <= defaults

    newcomer = await make_user()
    file_id = (
        await upload(client, newcomer, png_bytes(color=(2, 4, 6)), "s.png", title="Sunset beach")
    )["id"]
    suggested = await _suggested(client, newcomer, file_id, k=5)
    assert len(suggested) == 5 and set(suggested) <= defaults
    assert suggested[0] in {"sunset", "beach"}  # the title's words rank first

    # the defaults are ordinary curated tags: an administrator sees and edits them
    admin = await make_user("ADMIN")
    listed = (
        await (await client.get("/api/v1/recommender/vocabulary", headers=admin.headers)).json()
    )["data"]["tags"]
    assert {t["tag"] for t in listed} == defaults
    assert {t["source"] for t in listed} == {"curated"}
    for tag in ("sunset", "beach"):
        response = await client.delete(
            f"/api/v1/recommender/vocabulary/{tag}", headers=admin.headers
        )
        assert response.status == 200
    after = await _suggested(client, newcomer, file_id, k=20)
    assert len(after) == 20 and set(after) <= defaults - {"sunset", "beach"}
