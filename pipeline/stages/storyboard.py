"""The storyboard: what each card shows, and when — the data stored with the job.

The storyboard is the contract between planning (storyboard_planner) and
rendering: it is stored as JSON (``to_dict``/``from_dict``) and rendering
needs nothing else but the asset files.  Its lines are already wrapped with
the real fonts and frame size (text_cards), so the renderer draws exactly
these lines.

Timing is kept in whole frames so crossfade offsets are exact and the
rendered duration equals the planned one: a card's *slot* is the time from
its start to the next card's start (the video lasts the sum of the slots),
and a crossfade into card *i* overlaps the end of card *i-1*, so card
*i-1*'s clip (``frames``) is its slot plus the fade.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.stages.narration_plan import SpeechClip, clips_from_list, clips_to_list
from pipeline.stages.script import normalise_hex
from pipeline.stages.text_cards import POSITIONS, CardMetrics, hex_rgb
from t2m.errors import ValidationFailed

STORYBOARD_VERSION = 1
QUALITIES = ("480p", "720p", "1080p")
ASPECTS = ("16:9", "9:16", "1:1")
SUBTITLE_MODES = ("none", "burned", "sidecar", "karaoke")
FONT_FAMILIES = ("sans", "serif")
# Even dimensions: yuv420p halves chroma in both directions.
RESOLUTIONS: dict[tuple[str, str], tuple[int, int]] = {
    ("480p", "16:9"): (854, 480),
    ("720p", "16:9"): (1280, 720),
    ("1080p", "16:9"): (1920, 1080),
    ("480p", "9:16"): (480, 854),
    ("720p", "9:16"): (720, 1280),
    ("1080p", "9:16"): (1080, 1920),
    ("480p", "1:1"): (480, 480),
    ("720p", "1:1"): (720, 720),
    ("1080p", "1:1"): (1080, 1080),
}
DEFAULT_PALETTE = (
    "#1F3B73",
    "#6A1B9A",
    "#0B6E4F",
    "#8E2C48",
    "#2D3142",
    "#0F4C5C",
    "#5F0F40",
    "#283593",
)
IMAGE_MOTIONS = ("zoom_in", "pan_right", "zoom_out", "pan_left")


class StoryboardError(ValidationFailed):
    """The script and options cannot make a video.  Never worth a retry."""

    permanent = True


@dataclass(frozen=True)
class Style:
    font_family: str = "sans"
    text_color: str = "#FFFFFF"
    background_colors: tuple[str, ...] = DEFAULT_PALETTE
    text_position: str = "center"
    font_scale: float = 1.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Style:
        """Validate user-supplied style options (unknown keys are an error)."""
        data = dict(data or {})
        unknown = set(data) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise StoryboardError(f"unknown style option(s): {', '.join(sorted(unknown))}")
        try:
            style = cls(
                font_family=str(data.get("font_family", "sans")),
                text_color=normalise_hex(str(data.get("text_color", "#FFFFFF"))),
                background_colors=tuple(
                    normalise_hex(str(c)) for c in data.get("background_colors", DEFAULT_PALETTE)
                ),
                text_position=str(data.get("text_position", "center")),
                font_scale=float(data.get("font_scale", 1.0)),
            )
        except (TypeError, ValueError) as exc:
            raise StoryboardError(f"bad style: {exc}") from None
        if style.font_family not in FONT_FAMILIES:
            raise StoryboardError(f"font_family must be one of {FONT_FAMILIES}")
        if style.text_position not in POSITIONS:
            raise StoryboardError(f"text_position must be one of {POSITIONS}")
        if not 0.5 <= style.font_scale <= 2.0:
            raise StoryboardError("font_scale must be between 0.5 and 2.0")
        if not style.background_colors:
            raise StoryboardError("background_colors needs at least one colour")
        return style

    def to_dict(self) -> dict[str, Any]:
        return {
            "font_family": self.font_family,
            "text_color": self.text_color,
            "background_colors": list(self.background_colors),
            "text_position": self.text_position,
            "font_scale": self.font_scale,
        }

    @property
    def shadow_color(self) -> str:
        r, g, b = hex_rgb(self.text_color)
        light = 0.2126 * r + 0.7152 * g + 0.0722 * b > 128
        return "#000000" if light else "#FFFFFF"


@dataclass(frozen=True)
class AssetInfo:
    """What the storyboard needs to know about an uploaded file."""

    kind: str  # "image" | "video" | "audio"
    duration_s: float | None = None

    @classmethod
    def from_mime(cls, mime: str, duration_s: float | None = None) -> AssetInfo:
        major = mime.split("/", 1)[0].lower()
        if major not in ("image", "video", "audio"):
            raise StoryboardError(f"unsupported asset type {mime!r}")
        return cls(kind=major, duration_s=duration_s)

    @classmethod
    def coerce(cls, value: AssetInfo | Mapping[str, Any] | str) -> AssetInfo:
        if isinstance(value, AssetInfo):
            return value
        if isinstance(value, str):
            return cls.from_mime(value) if "/" in value else cls(kind=value)
        return cls(kind=str(value["kind"]), duration_s=value.get("duration_s"))


@dataclass(frozen=True)
class BackgroundPlan:
    kind: str  # "gradient" | "image" | "video"
    colors: tuple[str, ...] = ()
    angle_deg: float = 0.0
    asset_id: str | None = None
    motion: str | None = None  # images: one of IMAGE_MOTIONS
    asset_duration_s: float | None = None  # videos, when known

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "colors": list(self.colors),
            "angle_deg": self.angle_deg,
            "asset_id": self.asset_id,
            "motion": self.motion,
            "asset_duration_s": self.asset_duration_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BackgroundPlan:
        return cls(
            kind=str(data["kind"]),
            colors=tuple(data.get("colors") or ()),
            angle_deg=float(data.get("angle_deg", 0.0)),
            asset_id=data.get("asset_id"),
            motion=data.get("motion"),
            asset_duration_s=data.get("asset_duration_s"),
        )


@dataclass(frozen=True)
class StoryboardScene:
    index: int
    source_index: int  # which script scene this card comes from
    source_line: int
    part: int  # 0-based card number within its script scene
    parts: int
    title_lines: tuple[str, ...]
    lines: tuple[str, ...]
    cjk_locale: str
    start_frame: int
    slot_frames: int  # until the next card starts
    frames: int  # clip length: slot plus the crossfade into the next card
    transition_in: str  # "none" (first card) | "crossfade" | "cut"
    transition_in_frames: int
    background: BackgroundPlan
    explicit_duration: bool = False

    @property
    def text(self) -> str:
        return " ".join(self.lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "source_index": self.source_index,
            "source_line": self.source_line,
            "part": self.part,
            "parts": self.parts,
            "title_lines": list(self.title_lines),
            "lines": list(self.lines),
            "cjk_locale": self.cjk_locale,
            "start_frame": self.start_frame,
            "slot_frames": self.slot_frames,
            "frames": self.frames,
            "transition_in": self.transition_in,
            "transition_in_frames": self.transition_in_frames,
            "background": self.background.to_dict(),
            "explicit_duration": self.explicit_duration,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StoryboardScene:
        fields = dict(data)
        fields["title_lines"] = tuple(fields["title_lines"])
        fields["lines"] = tuple(fields["lines"])
        fields["background"] = BackgroundPlan.from_dict(fields["background"])
        return cls(**fields)


@dataclass(frozen=True)
class Rendition:
    quality: str
    width: int
    height: int

    def to_dict(self) -> dict[str, Any]:
        return {"quality": self.quality, "width": self.width, "height": self.height}


@dataclass(frozen=True)
class MusicPlan:
    asset_id: str
    fade_in_s: float = 1.0
    fade_out_s: float = 2.0
    volume: float = 0.8


@dataclass(frozen=True)
class Storyboard:
    quality: str
    aspect: str
    width: int
    height: int
    fps: int
    renditions: tuple[Rendition, ...]
    style: Style
    card: CardMetrics
    subtitles: str
    scenes: tuple[StoryboardScene, ...]
    total_frames: int
    edge_fade_frames: int
    music: MusicPlan | None = None
    method: str = "text_cards"
    version: int = STORYBOARD_VERSION
    warnings: tuple[str, ...] = field(default=())
    # Spoken sentences on the timeline; empty for a silent video.
    narration: tuple[SpeechClip, ...] = field(default=())
    # Render plan: scene ranges [first, end) rendered apart (segment_plan).
    segments: tuple[tuple[int, int], ...] = field(default=())

    @property
    def duration_s(self) -> float:
        return self.total_frames / self.fps

    def scene_start_s(self, scene: StoryboardScene) -> float:
        return scene.start_frame / self.fps

    @property
    def poster_time_s(self) -> float:
        """Middle of the fully visible part of the card with the most text."""

        def weight(s: StoryboardScene) -> tuple[int, int]:
            return (sum(map(len, s.lines)) + sum(map(len, s.title_lines)), -s.index)

        best = max(self.scenes, key=weight)
        lo = best.start_frame + best.transition_in_frames
        hi = best.start_frame + best.slot_frames  # the next crossfade starts here
        lo = max(lo, self.edge_fade_frames)
        hi = min(hi, self.total_frames - self.edge_fade_frames)
        if hi <= lo:  # degenerate (tiny video): fall back to the clip middle
            lo, hi = best.start_frame, best.start_frame + best.slot_frames
        return round((lo + hi) / 2) / self.fps

    def summary(self) -> dict[str, Any]:
        sources = {s.source_index for s in self.scenes}
        split = {s.source_index for s in self.scenes if s.parts > 1}
        return {
            "method": self.method,
            "scenes": len(self.scenes),
            "source_scenes": len(sources),
            "split_scenes": len(split),
            "duration_s": round(self.duration_s, 3),
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "quality": self.quality,
            "aspect": self.aspect,
            "renditions": [r.quality for r in self.renditions],
            "subtitles": self.subtitles,
            "music": self.music.asset_id if self.music else None,
            "poster_time_s": self.poster_time_s,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "method": self.method,
            "quality": self.quality,
            "aspect": self.aspect,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "renditions": [r.to_dict() for r in self.renditions],
            "style": self.style.to_dict(),
            "card": self.card.to_dict(),
            "subtitles": self.subtitles,
            "scenes": [s.to_dict() for s in self.scenes],
            "total_frames": self.total_frames,
            "edge_fade_frames": self.edge_fade_frames,
            "music": None
            if self.music is None
            else {
                "asset_id": self.music.asset_id,
                "fade_in_s": self.music.fade_in_s,
                "fade_out_s": self.music.fade_out_s,
                "volume": self.music.volume,
            },
            "warnings": list(self.warnings),
            "narration": clips_to_list(self.narration),
            "segments": [list(b) for b in self.segments],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Storyboard:
        if int(data.get("version", 0)) != STORYBOARD_VERSION:
            raise StoryboardError(f"unsupported storyboard version {data.get('version')!r}")
        music = data.get("music")
        return cls(
            version=STORYBOARD_VERSION,
            method=str(data.get("method", "text_cards")),
            quality=str(data["quality"]),
            aspect=str(data["aspect"]),
            width=int(data["width"]),
            height=int(data["height"]),
            fps=int(data["fps"]),
            renditions=tuple(Rendition(**r) for r in data["renditions"]),
            style=Style.from_dict(data["style"]),
            card=CardMetrics.from_dict(data["card"]),
            subtitles=str(data["subtitles"]),
            scenes=tuple(StoryboardScene.from_dict(s) for s in data["scenes"]),
            total_frames=int(data["total_frames"]),
            edge_fade_frames=int(data["edge_fade_frames"]),
            music=MusicPlan(**music) if music else None,
            warnings=tuple(data.get("warnings") or ()),
            narration=clips_from_list(data.get("narration")),
            segments=tuple((int(a), int(b)) for a, b in data.get("segments") or ()),
        )


def resolution(quality: str, aspect: str) -> tuple[int, int]:
    try:
        return RESOLUTIONS[(quality, aspect)]
    except KeyError:
        raise StoryboardError(
            f"unsupported quality/aspect {quality}/{aspect}; qualities {QUALITIES}, "
            f"aspects {ASPECTS}"
        ) from None


__all__ = [
    "ASPECTS",
    "IMAGE_MOTIONS",
    "QUALITIES",
    "RESOLUTIONS",
    "SUBTITLE_MODES",
    "AssetInfo",
    "BackgroundPlan",
    "MusicPlan",
    "Rendition",
    "Storyboard",
    "StoryboardError",
    "StoryboardScene",
    "Style",
    "resolution",
]
