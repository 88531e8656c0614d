"""The console's HLS player in real headless Chromium: hls.js plays the signed
master playlist, a forced rendition switch does not stall, the caption track
has cues and the seek preview loads."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import async_playwright, expect

from tests.api.hls_helpers import package_tree, stored_video
from tests.e2e.test_console import DESKTOP, WAIT_MS, chromium_binary

# Counts the stalls ('waiting' after playback started) from the moment it runs.
WATCH_STALLS = """() => {
  const v = document.querySelector('#item-video');
  window.stalls = 0;
  v.addEventListener('waiting', () => { window.stalls += 1; });
}"""


@pytest.mark.timeout(300)
async def test_console_plays_hls(client, db, make_user, tmp_path: Path):
    chromium = chromium_binary()
    user = await make_user()
    tree = package_tree(tmp_path, heights=(240, 480), seconds=16)
    _job_id, file_id = await stored_video(client, db, user, tree)
    base = str(client.make_url("/"))
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
        )
        try:
            page = await (await browser.new_context(viewport=DESKTOP)).new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            segments: list[str] = []
            page.on(
                "response",
                lambda r: segments.append(r.url.split("?")[0]) if ".m4s" in r.url else None,
            )
            await page.goto(base)
            await page.get_by_label("Username or e-mail").fill(user.username)
            await page.get_by_label("Password").fill(user.password)
            await page.get_by_label("Password").press("Enter")
            await expect(page.get_by_role("heading", name="Library")).to_be_visible()
            await page.goto(f"{base}#/item/{file_id}")
            video = page.locator("#item-video")
            await expect(video).to_have_attribute("data-engine", "hls.js", timeout=WAIT_MS)
            # The quality menu: automatic and each rendition.
            quality = page.locator("#item-quality")
            await expect(quality.locator("option")).to_have_text(
                ["Automatic", "240p", "480p"], timeout=WAIT_MS
            )
            await page.evaluate("() => { const v = document.querySelector('#item-video');"
                                " v.muted = true; return v.play(); }")  # fmt: skip
            await page.wait_for_function(
                "() => document.querySelector('#item-video').currentTime > 1", timeout=WAIT_MS
            )
            # Force the lowest, then the highest rendition: both play, no stall.
            for level in ("0", "1"):
                await page.evaluate(WATCH_STALLS)
                start = await page.evaluate("document.querySelector('#item-video').currentTime")
                await quality.select_option(level)
                await expect(video).to_have_attribute("data-level", level, timeout=WAIT_MS)
                await page.wait_for_function(
                    f"() => document.querySelector('#item-video').currentTime > {start + 2}",
                    timeout=WAIT_MS,
                )
                assert await page.evaluate("window.stalls") == 0
            assert any("/240p/" in s for s in segments) and any("/480p/" in s for s in segments)
            # Captions: the sidecar track has cues.
            await page.wait_for_function(
                "() => { const t = document.querySelector('#item-video').textTracks[0];"
                " return t && t.cues && t.cues.length > 0 }",
                timeout=WAIT_MS,
            )
            # Seek previews: the sprite loads, and hovering the seek bar shows a tile.
            await page.wait_for_function(
                "() => { const i = document.querySelector('#item-storyboard');"
                " return i && i.complete && i.naturalWidth > 0 }",
                timeout=WAIT_MS,
            )
            box = await video.bounding_box()
            assert box is not None
            await page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] - 20)
            preview = page.locator("#item-preview")
            await expect(preview).to_be_visible()
            assert "storyboard.jpg" in (await preview.evaluate("e => e.style.backgroundImage"))
            assert errors == []
        finally:
            await browser.close()
