"""Cut a storyboard into segments that render on their own and join by stream copy.

A segment is a run of whole scenes ``[first, end)``: frames
``[start_frame, end_frame)`` of the video.  Rules (why):

* Cuts only at scene starts, so a scene is never split and a crossfade belongs
  wholly to the segment holding the scene it fades *into*.  That segment needs
  the outgoing scene's last picture for the fade: it renders that scene as a
  *lead*, of which only what the fade needs is composed (a static card, or an
  image/video scene's tail) and nothing is encoded.
* Each segment is its own encode, so it starts on a keyframe (IDR, closed GOP).
* A segment holds at most ``max_dynamic`` image/video scenes: a render's peak
  memory grows with those (render_budget), so this bounds a worker's memory by
  the segment, not the video.
* Lengths aim at TARGET_S and stay under MAX_S when the cut points allow:
  short enough that two workers share a two-minute video evenly and an
  edited scene re-renders a small part of it, long enough that a
  segment's fixed cost (a message, an ffmpeg start, its lead) stays small.
* Below SINGLE_PASS_S (and within the per-segment scene cap) a video is one
  segment: today's single pass, with no extra queue hop.

No PIL, av or ffmpeg here: the API process imports this module.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from pipeline.stages.render_budget import segment_dynamic_cap
from pipeline.stages.storyboard import Storyboard, StoryboardScene

SINGLE_PASS_S = 60.0  # shorter videos render in one pass
TARGET_S = 12.0
MAX_S = 30.0
MIN_S = 4.0  # a shorter tail segment joins the one before when it can


@dataclass(frozen=True)
class Segment:
    index: int
    first: int  # first scene index
    end: int  # one past the last scene index
    lead: bool  # the previous (static) scene is rendered for the fade, then trimmed
    start_frame: int
    end_frame: int

    @property
    def frames(self) -> int:
        return self.end_frame - self.start_frame

    def to_list(self) -> list[int]:
        return [self.first, self.end]

    def describe(self) -> str:
        """Names the scenes, for logs and errors (1-based like the console)."""
        if self.end - self.first == 1:
            return f"segment {self.index + 1} (scene {self.first + 1})"
        return f"segment {self.index + 1} (scenes {self.first + 1}-{self.end})"


def _is_dynamic(scene: StoryboardScene) -> bool:
    return scene.background.kind in ("image", "video")


def plan_bounds(
    sb: Storyboard,
    *,
    max_dynamic: int | None = None,
    single_pass_s: float = SINGLE_PASS_S,
    target_s: float = TARGET_S,
    max_s: float = MAX_S,
) -> list[tuple[int, int]]:
    """Scene ranges ``(first, end)`` covering the storyboard, in order
    (the keywords exist for tests and benchmarks of short videos)."""
    scenes = sb.scenes
    cap = max_dynamic if max_dynamic is not None else segment_dynamic_cap(sb.width * sb.height)
    dynamic_total = sum(1 for s in scenes if _is_dynamic(s))
    # Karaoke cards are laid out on the whole timeline's cues: one pass.
    if sb.subtitles == "karaoke" or (sb.duration_s < single_pass_s and dynamic_total <= cap):
        return [(0, len(scenes))]
    fps = sb.fps
    bounds: list[tuple[int, int]] = []
    first, dynamic = 0, 0
    for i, scene in enumerate(scenes):
        if i > first:
            length = (scene.start_frame - scenes[first].start_frame) / fps
            grown = (scene.start_frame + scene.slot_frames - scenes[first].start_frame) / fps
            over_cap = dynamic + _is_dynamic(scene) > cap
            if length >= target_s or grown > max_s or over_cap:
                bounds.append((first, i))
                # A lead image/video scene's fade costs a source: it counts.
                lead = scene.transition_in_frames > 0 and _is_dynamic(scenes[i - 1])
                first, dynamic = i, int(lead)
        dynamic += _is_dynamic(scene)
    bounds.append((first, len(scenes)))
    if len(bounds) > 1:
        (a, _), (c, d) = bounds[-2], bounds[-1]
        tail_s = (sb.total_frames - scenes[c].start_frame) / fps
        merged = sum(1 for s in scenes[a:d] if _is_dynamic(s))
        if (
            tail_s < MIN_S
            and merged <= cap
            and (sb.total_frames - scenes[a].start_frame) / fps <= max_s
        ):
            bounds[-2:] = [(a, d)]
    return bounds


def segments(sb: Storyboard, bounds: list[tuple[int, int]] | None = None) -> list[Segment]:
    """The storyboard's segments (its stored plan, or a fresh one)."""
    ranges = bounds if bounds is not None else plan_bounds(sb)
    scenes = sb.scenes
    out = []
    for k, (first, end) in enumerate(ranges):
        start = scenes[first].start_frame
        stop = scenes[end].start_frame if end < len(scenes) else sb.total_frames
        lead = first > 0 and scenes[first].transition_in_frames > 0
        out.append(Segment(k, first, end, lead, start, stop))
    return out


def plan_to_json(bounds: list[tuple[int, int]]) -> list[list[int]]:
    return [[a, b] for a, b in bounds]


def plan_from_json(data: Any) -> list[tuple[int, int]] | None:
    if not data:
        return None
    return [(int(a), int(b)) for a, b in data]


def with_plan(sb: Storyboard) -> Storyboard:
    """``sb`` with its render plan stored in it (every worker renders the same)."""
    return dataclasses.replace(sb, segments=tuple(plan_bounds(sb)))
