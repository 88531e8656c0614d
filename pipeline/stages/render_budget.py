"""How much memory a render will take, known before it starts.

Today a storyboard renders in one ffmpeg run whose filter graph holds a
source and a chain for every image or video scene at once, so its peak
memory grows with the number of such scenes, not with the video's length:
a base for the encoders and the static track, plus a share per dynamic
scene proportional to the frame's pixels.  The figures come from
``bench/bench_render_memory.py`` (its fit is printed there and recorded in
the README); gradient scenes share one track and cost next to nothing.

The API refuses a job whose estimate exceeds ``RENDER_MEMORY_BUDGET_MB``
(the script is parsed at submission for that), and the render worker checks
the built storyboard again before starting ffmpeg, so a budget lowered in
between, or a storyboard planned differently, still cannot exceed it.

No PIL, av or ffmpeg here: the API process imports this module.
"""

from __future__ import annotations

from collections.abc import Iterable

from t2m.errors import ValidationFailed

# Both terms are linear in the top rendition's pixels (relative to 720p), fitted
# at 720p and 1080p with some headroom; see the module docstring.
_PIXELS_720P = 1280 * 720
BASE_MB = (10.0, 175.0)  # constant, per 720p-frame of pixels
PER_SCENE_MB = (12.0, 44.0)
_HEIGHTS = {"480p": 480, "720p": 720, "1080p": 1080}


def _linear(terms: tuple[float, float], pixels: int) -> float:
    return terms[0] + terms[1] * pixels / _PIXELS_720P


class RenderBudgetExceeded(ValidationFailed):
    """The storyboard needs more render memory than the deployment allows."""

    status = 422


def top_pixels(quality: str, aspect: str = "16:9") -> int:
    """Pixels of the largest rendition of ``quality`` at ``aspect``."""
    height = _HEIGHTS.get(quality, 1080)
    wide = round(height * 16 / 9 / 2) * 2
    if aspect == "9:16":
        return wide * height
    if aspect == "1:1":
        return height * height
    return wide * height


def estimate_render_mb(dynamic_scenes: int, pixels: int) -> float:
    """Peak memory (MB) of rendering ``dynamic_scenes`` image/video scenes."""
    return _linear(BASE_MB, pixels) + _linear(PER_SCENE_MB, pixels) * dynamic_scenes


def max_dynamic_scenes(budget_mb: float, pixels: int) -> int:
    """The most image/video scenes that fit ``budget_mb`` at ``pixels`` a frame."""
    spare = budget_mb - _linear(BASE_MB, pixels)
    return max(0, int(spare // _linear(PER_SCENE_MB, pixels)))


def check_render_budget(
    backgrounds: Iterable[str | None], pixels: int, budget_mb: float, *, what: str = "script"
) -> float:
    """The estimate for scenes with these background asset ids (None: a
    gradient); raises :class:`RenderBudgetExceeded` past ``budget_mb``
    (0 or less: no budget)."""
    dynamic = sum(1 for asset in backgrounds if asset)
    estimate = estimate_render_mb(dynamic, pixels)
    if budget_mb > 0 and estimate > budget_mb:
        fits = max_dynamic_scenes(budget_mb, pixels)
        raise RenderBudgetExceeded(
            "Request validation failed",
            {
                what: [
                    f"{dynamic} image/video scenes need about {estimate:.0f} MB to render;"
                    f" the limit is {budget_mb:g} MB (RENDER_MEMORY_BUDGET_MB), which fits"
                    f" {fits} at this quality"
                ]
            },
        )
    return estimate
