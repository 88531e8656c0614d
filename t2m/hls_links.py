"""Where a packaged video's HLS tree and seek previews are served.

The package worker records what it wrote (the ``hls`` facts: variants,
captions, storyboard) in the file's metadata once the tree is complete; the
file detail and the job result list these URLs from those facts, so a URL is
listed only once what it names exists.
"""

from __future__ import annotations

from typing import Any

# The file-metadata key holding the package worker's facts.
HLS_KEY = "hls"
V1 = "/api/v1"


def hls_facts(variants: list[str], *, subtitles: bool, storyboard: bool) -> dict[str, Any]:
    return {"variants": variants, "subtitles": subtitles, "storyboard": storyboard}


def _links(hls: str, storyboard: str, facts: dict[str, Any] | None) -> dict[str, str | None]:
    """``hls``/master.m3u8, and ``storyboard``.vtt/.jpg when the tree has them."""
    previews = bool(facts and facts.get("storyboard"))
    return {
        "hls_url": f"{hls}/master.m3u8" if facts else None,
        "storyboard_vtt_url": f"{storyboard}.vtt" if previews else None,
        "storyboard_jpg_url": f"{storyboard}.jpg" if previews else None,
    }


def file_hls_links(file_id: str, metadata: dict[str, Any] | None) -> dict[str, str | None]:
    """The file detail's URLs (None until the package worker is done)."""
    base = f"{V1}/files/{file_id}"
    return _links(f"{base}/hls", f"{base}/storyboard", (metadata or {}).get(HLS_KEY))


def video_hls_links(job_id: str, facts: dict[str, Any]) -> dict[str, str | None]:
    """The job result's URLs: under the job's own tree, authorised like its
    other ``/videos/{job_id}`` links (the storyboard is part of that tree)."""
    base = f"{V1}/videos/{job_id}/hls"
    return _links(base, f"{base}/storyboard", facts)
