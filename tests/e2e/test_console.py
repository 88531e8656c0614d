"""The web console in real headless Chromium against a live stack.

The app listens on a real TCP port; real worker processes take the upload,
video and recommender queues through the real Redis broker.  The browser signs
in, uploads an image, generates a video from the sample script, watches the
progress reach 100 %, plays and seeks the video, likes it, accepts a suggested
tag, and opens the job log.  Each page is saved as a screenshot at desktop and
phone width (``$T2M_TEST_ARTIFACTS/console`` or ``var/test-artifacts/console``).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import (
    FilePayload,
    Page,
    Response,
    ViewportSize,
    async_playwright,
    expect,
)

from tests.support.media import jpeg_bytes

REPO = Path(__file__).resolve().parents[2]
QUEUES = ["parse", "narrate", "storyboard", "render", "thumbnails", "media", "rl_update"]
DESKTOP: ViewportSize = {"width": 1280, "height": 860}
PHONE: ViewportSize = {"width": 390, "height": 844}
WAIT_MS = 60_000
RENDER_WAIT_MS = 240_000


def chromium_binary() -> str:
    """Debian's Chromium, which ``make`` installs (system-packages.txt).

    Missing, the browser tests fail rather than pass silently; on a machine
    that cannot have it, ``T2M_SKIP_BROWSER=1`` skips them on purpose.
    """
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if found is None:
        if os.environ.get("T2M_SKIP_BROWSER") == "1":
            pytest.skip("T2M_SKIP_BROWSER=1")
        pytest.fail("No Chromium binary: install Debian's 'chromium' (system-packages.txt)")
    return found


def artifacts_dir() -> Path:
    root = os.environ.get("T2M_TEST_ARTIFACTS")
    path = Path(root) / "console" if root else REPO / "var" / "test-artifacts" / "console"
    path.mkdir(parents=True, exist_ok=True)
    return path


# Every visible form control has a label (or an aria-label); every button has a name.
UNLABELLED = """() => {
  const controls = [...document.querySelectorAll('input, select, textarea')]
    .filter((e) => e.type !== 'hidden' && (e.offsetParent !== null || e.type === 'radio'))
    .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'));
  const buttons = [...document.querySelectorAll('button, a.button')]
    .filter((e) => e.offsetParent !== null)
    .filter((e) => !(e.textContent.trim() || e.getAttribute('aria-label')));
  return [...controls, ...buttons].map((e) => e.outerHTML.slice(0, 120));
}"""

OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"


class Screens:
    """Full-page screenshots of each page at desktop and phone width, with the
    checks that belong to every page: labelled controls, no sideways scrolling."""

    def __init__(self, page: Page, directory: Path) -> None:
        self.page = page
        self.directory = directory
        self.saved: list[Path] = []

    async def take(self, name: str) -> None:
        page = self.page
        assert await page.evaluate(UNLABELLED) == [], f"unlabelled controls on {name}"
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            await page.set_viewport_size(size)
            # From the top, so the sticky header sits where it belongs.
            await page.evaluate("window.scrollTo(0, 0)")
            await page.wait_for_timeout(150)  # one layout pass after the resize
            assert await page.evaluate(OVERFLOW) <= 0, f"{name} scrolls sideways at {label} width"
            path = self.directory / f"{len(self.saved) // 2 + 1:02d}-{name}-{label}.png"
            await page.screenshot(path=str(path), full_page=True)
            self.saved.append(path)
        await page.set_viewport_size(DESKTOP)


async def feedback_rows(db: Any, content_id: str, event_type: str) -> list[Any]:
    async with db.acquire() as conn:
        rows: list[Any] = await conn.fetch(
            "SELECT user_id, event_type, watch_time_ms, tags, recommendation_id"
            " FROM feedback_events WHERE content_id = $1 AND event_type = $2",
            content_id,
            event_type,
        )
    return rows


async def wait_rows(db: Any, content_id: str, event_type: str, page: Page) -> list[Any]:
    for _ in range(100):
        rows = await feedback_rows(db, content_id, event_type)
        if rows:
            return rows
        await page.wait_for_timeout(100)
    raise AssertionError(f"no {event_type} feedback for {content_id}")


@pytest.mark.timeout(900)
async def test_console_end_to_end(client, db, make_user, start_worker):
    chromium = chromium_binary()
    started = time.monotonic()
    user = await make_user(login=False)
    start_worker(QUEUES)
    base = str(client.make_url("/"))
    directory = artifacts_dir()
    for old in directory.glob("*.png"):
        old.unlink()

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
        )
        try:
            context = await browser.new_context(viewport=DESKTOP)
            page = await context.new_page()
            page_errors: list[str] = []
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            ranges: list[int] = []

            def on_response(response: Response) -> None:
                if "/api/v1/files/secure/" in response.url and "quality=" in response.url:
                    ranges.append(response.status)

            page.on("response", on_response)
            screens = Screens(page, directory)

            # Sign in (with the keyboard: Enter submits the form).
            await page.goto(base)
            await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            assert "#/login" in page.url
            await screens.take("sign-in")
            await page.get_by_label("Username or e-mail").fill(user.username)
            await page.get_by_label("Password").fill("wrong password")
            await page.get_by_label("Password").press("Enter")
            await expect(page.locator("#login-error")).to_be_visible()
            await page.get_by_label("Password").fill(user.password)
            await page.get_by_label("Password").press("Enter")
            await expect(page.get_by_role("heading", name="Library")).to_be_visible()
            await expect(page.locator("#whoami")).to_have_text(user.username)

            # Upload an image, with a progress bar that ends at 100 %.
            await page.get_by_role("link", name="Upload", exact=True).click()
            upload = page.locator("section[data-view=upload]")
            await expect(upload.get_by_role("heading", name="Upload")).to_be_visible()
            await upload.get_by_label("File", exact=True).set_input_files(
                files=[
                    FilePayload(
                        name="sunset.jpg", mimeType="image/jpeg", buffer=jpeg_bytes(640, 400)
                    )
                ]
            )
            await upload.get_by_label("Title").fill("Sunset")
            await upload.get_by_label("Tags").fill("sunset, beach")
            await upload.get_by_role("button", name="Upload", exact=True).click()
            await expect(page.locator("#upload-status")).to_contain_text("Uploaded sunset.jpg")
            await expect(page.locator("#upload-progress")).to_have_js_property("value", 100)
            await screens.take("upload")

            # The library shows it with the thumbnail the media worker made.
            await page.get_by_role("link", name="Library", exact=True).click()
            tile = page.locator(".tile", has_text="Sunset")
            await expect(tile.locator(".thumb.loaded")).to_be_visible(timeout=WAIT_MS)
            await page.locator("label[for=type-video]").click()
            await expect(page.locator("#library-status")).to_have_text("No video files yet.")
            await page.locator("label[for=type-image]").click()
            await expect(tile).to_be_visible()
            assert "type=image" in page.url
            # The image opens on its own page (through a signed link).
            await tile.get_by_role("link").click()
            image = page.locator("#item-media img")
            await expect(image).to_have_attribute("alt", "Sunset")
            await page.wait_for_function(
                "() => document.querySelector('#item-media img')?.naturalWidth === 640"
            )
            await expect(page.locator("#item-facts")).to_contain_text("640 × 400")

            # Generate a short, low-quality video from the console's sample script.
            await page.get_by_role("link", name="Generate", exact=True).click()
            generate = page.locator("section[data-view=generate]")
            await generate.get_by_role("button", name="Insert the sample script").click()
            assert "Welcome to T2M" in await generate.get_by_label("Script").input_value()
            await generate.get_by_label("Title", exact=True).fill("Console tour")
            await generate.get_by_label("Tags", exact=True).fill("tour")
            await generate.get_by_label("Quality").select_option("480p")
            await generate.get_by_label("Length, seconds").fill("6")
            # Sidecar captions: the player shows them as a <track>.
            await generate.get_by_label("Subtitles").select_option("sidecar")
            # The voice picker: the registry's voices, and a sample a narrate
            # worker speaks once.
            voice = generate.get_by_label("Voice")
            await expect(voice.locator("option[value=en-us-joe]")).to_have_count(1)
            await voice.select_option("en-us-joe")
            await generate.get_by_role("button", name="Play sample").click()
            await expect(page.locator("#gen-voice-sample")).to_have_attribute(
                "data-voice", "en-us-joe", timeout=30_000
            )
            assert await page.evaluate(
                "document.querySelector('#gen-voice-sample').src.startsWith('blob:')"
            )
            # Record every value the bar shows.
            await page.evaluate(
                """() => {
                  const bar = document.querySelector('#gen-progress');
                  window.seenProgress = [];
                  new MutationObserver(() => window.seenProgress.push(bar.value))
                    .observe(bar, {attributes: true, attributeFilter: ['value']});
                }"""
            )
            await page.get_by_role("button", name="Generate video").click()
            bar = page.locator("#gen-progress")
            await expect(bar).to_have_attribute("data-ended", "true", timeout=RENDER_WAIT_MS)
            assert await bar.get_attribute("data-status") == "completed", await page.locator(
                "#gen-progress-text"
            ).text_content()
            await expect(bar).to_have_js_property("value", 100)
            await expect(page.locator("#gen-progress-text")).to_contain_text("100 %")
            seen = await page.evaluate("window.seenProgress")
            assert seen and seen[-1] == 100 and seen == sorted(seen), seen
            live_mode = await bar.get_attribute("data-mode")
            assert live_mode in ("sse", "polling")
            await expect(page.locator("#gen-log li").first).to_be_visible()
            await screens.take("generate")

            # Play, seek (the server answers Range requests) and watch.
            await page.get_by_role("link", name="Watch the video").click()
            await expect(page.get_by_role("heading", name="Console tour")).to_be_visible()
            video_id = page.url.rsplit("/", 1)[1]
            await page.wait_for_function(
                "() => { const v = document.querySelector('#item-video');"
                " return v && v.readyState >= 1 && v.duration > 2 }",
                timeout=WAIT_MS,
            )
            await page.evaluate(
                """() => new Promise((resolve) => {
                  const v = document.querySelector('#item-video');
                  v.muted = true;
                  v.addEventListener('seeked', resolve, {once: true});
                  v.currentTime = 1.5;
                })"""
            )
            position = await page.evaluate("document.querySelector('#item-video').currentTime")
            assert abs(position - 1.5) < 0.1, position
            await page.evaluate("() => document.querySelector('#item-video').play()")
            await page.wait_for_function(
                "() => document.querySelector('#item-video').currentTime > 2.6", timeout=WAIT_MS
            )
            await page.evaluate("() => document.querySelector('#item-video').pause()")
            assert 206 in ranges, ranges

            # Captions: a <track> with the video's cues, and a toggle for them.
            toggle = page.get_by_label("Captions")
            await expect(toggle).to_be_visible(timeout=WAIT_MS)
            await expect(toggle).to_be_checked()
            await page.wait_for_function(
                "() => { const t = document.querySelector('#item-video').textTracks[0];"
                " return t && t.mode === 'showing' && t.cues && t.cues.length > 0 }",
                timeout=WAIT_MS,
            )
            first_cue = await page.evaluate(
                "document.querySelector('#item-video').textTracks[0].cues[0].text"
            )
            # Narrated: the cue text carries word timestamps (<00:00:01.200>).
            spoken = " ".join(re.sub(r"<[^>]+>", "", first_cue).split())
            assert "Welcome to T2M" in spoken, first_cue
            await toggle.uncheck()
            assert (
                await page.evaluate("document.querySelector('#item-video').textTracks[0].mode")
                == "hidden"
            )

            # Like it.
            like = page.get_by_role("button", name="Like")
            await like.click()
            await expect(like).to_have_attribute("aria-pressed", "true")
            await expect(page.locator("#item-status")).to_contain_text("like was recorded")
            likes = await wait_rows(db, video_id, "like", page)
            assert [r["user_id"] for r in likes] == [user.id]

            # Accept a suggested tag (the upload's tags; the video's own are excluded).
            accept = page.get_by_role("button", name=re.compile(r"^Accept tag ")).first
            await expect(accept).to_be_visible(timeout=WAIT_MS)
            tag = (await accept.get_attribute("aria-label") or "").removeprefix("Accept tag ")
            assert tag in ("sunset", "beach"), tag
            await accept.click()
            await expect(page.locator(".tag-row.accepted")).to_contain_text(tag)
            accepted = await wait_rows(db, video_id, "tag_accept", page)
            assert accepted[0]["tags"] == [tag]
            assert accepted[0]["recommendation_id"] == await page.locator(
                "#item-tags"
            ).get_attribute("data-recommendation-id")

            # Share: a link that works without a token.
            await page.get_by_role("button", name="Share").click()
            link = page.get_by_label("Share link (valid 7 days)")
            await expect(link).to_have_value(re.compile(r"/api/v1/files/secure/"))
            shared_url = await link.input_value()
            async with aiohttp.ClientSession() as anonymous, anonymous.get(shared_url) as shared:
                assert shared.status == 200
                assert shared.headers["Content-Type"] == "video/mp4"
            await wait_rows(db, video_id, "share", page)
            await screens.take("player")

            # The job list with its log; leaving the player recorded the view.
            await page.get_by_role("link", name="Jobs", exact=True).click()
            job = page.locator(".job", has_text="Console tour")
            await expect(job.locator(".badge")).to_have_text("completed")
            await job.get_by_role("button", name="Log").click()
            await expect(job.locator(".log")).to_contain_text("Video ready")
            await expect(job.get_by_role("link", name="Watch")).to_be_visible()
            views = await wait_rows(db, video_id, "view", page)
            assert views[0]["watch_time_ms"] >= 500, views[0]["watch_time_ms"]
            await screens.take("jobs")

            # The library now holds both, each with its thumbnail.
            await page.get_by_role("link", name="Library", exact=True).click()
            await page.locator("label[for=type-all]").click()
            video_tile = page.locator(".tile", has_text="Console tour")
            await expect(video_tile.locator(".thumb.loaded")).to_be_visible(timeout=WAIT_MS)
            await expect(page.locator(".tile")).to_have_count(2)
            await screens.take("library")

            assert page_errors == []
        finally:
            await browser.close()

    elapsed = time.monotonic() - started
    print(
        f"\nconsole browser test: {elapsed:.1f} s; progress followed by {live_mode};"
        f" {len(screens.saved)} screenshots in {directory}"
    )


@pytest.mark.timeout(600)
async def test_progress_falls_back_to_polling_without_events(client, make_user, start_worker):
    """With no event stream (here: the token request fails) the console polls
    the job and still shows every step up to 100 %."""
    chromium = chromium_binary()
    user = await make_user(login=False)
    start_worker(["parse", "narrate", "storyboard", "render", "thumbnails"])
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport=DESKTOP)
            token_requests: list[str] = []

            async def refuse(route: Any) -> None:
                token_requests.append(route.request.url)
                await route.fulfill(
                    status=503,
                    content_type="application/json",
                    body='{"success": false, "error": {"code": "SERVICE_UNAVAILABLE",'
                    ' "message": "Event stream unavailable"}}',
                )

            await page.route("**/api/v1/jobs/*/events/token", refuse)
            event_streams: list[str] = []
            page.on(
                "request",
                lambda request: (
                    event_streams.append(request.url)
                    if re.search(r"/jobs/[^/]+/events(\?|$)", request.url)
                    else None
                ),
            )
            await page.goto(str(client.make_url("/#/generate")))
            await page.get_by_label("Username or e-mail").fill(user.username)
            await page.get_by_label("Password").fill(user.password)
            await page.get_by_role("button", name="Sign in").click()
            # Back where the sign-in interrupted.
            generate = page.locator("section[data-view=generate]")
            await expect(generate.get_by_role("heading", name="Generate a video")).to_be_visible()
            await generate.get_by_role("button", name="Insert the sample script").click()
            await generate.get_by_label("Quality").select_option("480p")
            await generate.get_by_label("Length, seconds").fill("6")
            await generate.get_by_role("button", name="Generate video").click()
            bar = page.locator("#gen-progress")
            await expect(bar).to_have_attribute("data-ended", "true", timeout=RENDER_WAIT_MS)
            assert await bar.get_attribute("data-status") == "completed"
            assert await bar.get_attribute("data-mode") == "polling"
            await expect(bar).to_have_js_property("value", 100)
            await expect(page.locator("#gen-log")).to_contain_text("Video ready")
            await expect(page.get_by_role("link", name="Watch the video")).to_be_visible()
            assert len(token_requests) == 1
            assert event_streams == []
        finally:
            await browser.close()


async def test_an_expired_access_token_is_refreshed(client, make_user):
    """A rejected access token is traded for a new pair once, and the call retried;
    a session that cannot be renewed goes back to the sign-in page."""
    chromium = chromium_binary()
    user = await make_user(login=False)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport=DESKTOP)
            await page.goto(str(client.make_url("/")))
            await page.get_by_label("Username or e-mail").fill(user.username)
            await page.get_by_label("Password").fill(user.password)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.locator("#library-status")).to_have_text(re.compile("No files yet"))

            stored = "JSON.parse(sessionStorage.getItem('t2m.session'))"
            first = await page.evaluate(stored)
            await page.evaluate(
                f"() => {{ const s = {stored}; s.access_token = 'expired';"
                " sessionStorage.setItem('t2m.session', JSON.stringify(s)); }"
            )
            await page.reload()
            await page.get_by_role("link", name="Jobs", exact=True).click()
            jobs_status = page.locator("#jobs-status-text")
            await expect(jobs_status).to_have_text("No jobs yet: generate a video.")
            renewed = await page.evaluate(stored)
            assert renewed["access_token"] not in ("expired", first["access_token"])
            assert renewed["refresh_token"] != first["refresh_token"]

            # Both tokens bad: the session is dropped and sign-in is asked for.
            await page.evaluate(
                f"() => {{ const s = {stored}; s.access_token = 'x'; s.refresh_token = 'y';"
                " sessionStorage.setItem('t2m.session', JSON.stringify(s)); }"
            )
            await page.reload()  # on the jobs page, which loads the list at once
            await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            assert await page.evaluate("sessionStorage.getItem('t2m.session')") is None
            await expect(page.locator("#main-nav")).to_be_hidden()
        finally:
            await browser.close()
