"""How much memory a render will take, known before it starts.

One ffmpeg run's filter graph holds a source and a chain for every image or
video scene it renders at once, so its peak memory grows with the number of
such scenes, not with the length: a base for the encoders and the static
track, plus a share per dynamic scene proportional to the frame's pixels.
The figures come from ``bench/bench_render_memory.py`` (its fit is printed
there and recorded in the README); gradient scenes cost next to nothing.

Videos render in segments (segment_plan) that hold at most
``segment_dynamic_cap`` such scenes, chosen so one segment stays under
SEGMENT_BOUND_MB; so a render's peak is bounded by the segment, whatever the
number of scenes.  The API still refuses a job whose *per-segment* estimate
exceeds ``RENDER_MEMORY_BUDGET_MB`` (a deployment may set it below the
bound), and the render worker checks the built storyboard again.

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


# The documented per-segment bound: a worker's ffmpeg stays under it for any
# accepted storyboard (tests/hardening/test_render_budget.py measures it).
SEGMENT_BOUND_MB = {720: 400.0, 1080: 700.0}


def segment_bound_mb(pixels: int) -> float:
    return SEGMENT_BOUND_MB[720] if pixels <= _PIXELS_720P else SEGMENT_BOUND_MB[1080]


def segment_dynamic_cap(pixels: int) -> int:
    """Most image/video scenes one segment holds (at least one: a scene is never split)."""
    return max(1, max_dynamic_scenes(segment_bound_mb(pixels), pixels))


def max_dynamic_scenes(budget_mb: float, pixels: int) -> int:
    """The most image/video scenes that fit ``budget_mb`` at ``pixels`` a frame."""
    spare = budget_mb - _linear(BASE_MB, pixels)
    return max(0, int(spare // _linear(PER_SCENE_MB, pixels)))


def check_render_budget(
    backgrounds: Iterable[str | None], pixels: int, budget_mb: float, *, what: str = "script"
) -> float:
    """The estimate for the largest segment of scenes with these background
    asset ids (None: a gradient); raises :class:`RenderBudgetExceeded` past ``budget_mb``
    (0 or less: no budget)."""
    dynamic = min(sum(1 for asset in backgrounds if asset), segment_dynamic_cap(pixels))
    estimate = estimate_render_mb(dynamic, pixels)
    if budget_mb > 0 and estimate > budget_mb:
        fits = max_dynamic_scenes(budget_mb, pixels)
        raise RenderBudgetExceeded(
            "Request validation failed",
            {
                what: [
                    f"{dynamic} image/video scenes in one render segment need about"
                    f" {estimate:.0f} MB; the limit is {budget_mb:g} MB"
                    f" (RENDER_MEMORY_BUDGET_MB), which fits {fits} at this quality"
                ]
            },
        )
    return estimate
