"""Turn a parsed script into a storyboard: what each card shows, and when.

The storyboard is the contract between planning and rendering: it is stored
as JSON (``to_dict``/``from_dict``) and rendering needs nothing else but the
asset files.  Text is wrapped here with the real fonts and frame size
(text_cards), so the renderer draws exactly these lines; a scene whose text
does not fit one card becomes several cards, never smaller type.

Timing is kept in whole frames so crossfade offsets are exact and the
rendered duration equals the planned one:

* a card's *slot* is the time from its start to the next card's start; the
  video lasts the sum of the slots;
* the slot comes from reading speed (words, or characters for CJK), clamped
  to [MIN_AUTO_S, MAX_AUTO_S], or from the scene's ``[duration: ...]``
  (spread over its cards by their text);
* with ``target_duration`` the automatic slots are scaled to make the total
  match, explicit ones are kept;
* a crossfade into card *i* overlaps the end of card *i-1*, so card *i-1*'s
  clip is its slot plus the fade;
* a spoken scene (``speech``, from the narrate stage) lasts its speech plus
  pauses (pipeline.stages.narrate.timing) and is never cut: a
  ``[duration]`` stretches its pauses, a target duration scales them within
  bounds, and its sentences become the storyboard's ``narration`` clips.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.stages.narrate import timing
from pipeline.stages.narrate.stage import SpeechPlan
from pipeline.stages.narration_plan import SpeechClip, clips_from_list, clips_to_list
from pipeline.stages.reading_time import reading_seconds
from pipeline.stages.script import Script, normalise_hex
from pipeline.stages.text_cards import (
    POSITIONS,
    CardMetrics,
    hex_rgb,
    paginate,
)
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

MIN_AUTO_S = 2.5
MAX_AUTO_S = 15.0
HARD_MIN_S = 1.5  # scaling to a target never goes below / above these
HARD_MAX_S = 60.0
CROSSFADE_S = 0.5
EDGE_FADE_S = 0.4  # fade from / to black at the very start and end
MAX_DURATION_S = 3600.0


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


def build_storyboard(
    script: Script,
    *,
    quality: str = "720p",
    aspect: str = "16:9",
    target_duration: float | None = None,
    style: Style | Mapping[str, Any] | None = None,
    assets: Mapping[str, AssetInfo | Mapping[str, Any] | str] | None = None,
    subtitles: str = "none",
    music: str | None = None,
    fps: int = 30,
    renditions: Sequence[str] | None = None,
    max_duration_s: float = MAX_DURATION_S,
    speech: SpeechPlan | None = None,
) -> Storyboard:
    """Plan the video.  Raises StoryboardError (permanent) on bad options.

    ``assets`` maps file ids used by the script (backgrounds, music) to their
    kind; ``music`` (a file id) overrides the script's ``[music: ...]``;
    ``renditions`` defaults to ``quality`` and every lower quality.
    """
    width, height = resolution(quality, aspect)
    if subtitles not in SUBTITLE_MODES:
        raise StoryboardError(f"subtitles must be one of {SUBTITLE_MODES}")
    if not 10 <= fps <= 60:
        raise StoryboardError("fps must be between 10 and 60")
    if target_duration is not None and not 1.0 <= target_duration <= max_duration_s:
        raise StoryboardError(f"target_duration must be between 1 and {max_duration_s:g} s")
    style = style if isinstance(style, Style) else Style.from_dict(style)
    infos = {k: AssetInfo.coerce(v) for k, v in (assets or {}).items()}
    metrics = CardMetrics.for_frame(
        width,
        height,
        family=style.font_family,
        position=style.text_position,
        font_scale=style.font_scale,
        caption=subtitles in ("burned", "karaoke"),  # karaoke: burned, word-highlighted
    )

    # 1. Cards: wrap every scene, split what does not fit.
    drafts: list[_Draft] = []
    warnings: list[str] = list(speech.notes) if speech else []
    for source_index, scene in enumerate(script.scenes):
        background = _background_plan(source_index, scene.background, style, infos, scene.line_no)
        pages = paginate(scene.text, scene.title, metrics)
        reads = [reading_seconds(" ".join((*p.title_lines, *p.lines))) for p in pages]
        spoken = speech.for_scene(source_index) if speech else None
        for part, (page, read) in enumerate(zip(pages, reads, strict=True)):
            share = read / sum(reads)
            lo, hi = HARD_MIN_S, HARD_MAX_S
            if spoken is not None:
                # The scene's speech is spread over its cards like its text.
                durations = [c.duration_s for c in spoken.clips]
                natural = timing.scene_seconds(durations)
                lo = share * timing.scene_seconds(durations, timing.MIN_PAUSE_SCALE)
                hi = share * timing.scene_seconds(durations, timing.MAX_PAUSE_SCALE)
                if scene.duration_s is not None:
                    seconds, explicit = max(scene.duration_s, lo / share) * share, True
                else:
                    seconds, explicit = natural * share, False
            elif scene.duration_s is not None:
                seconds, explicit = scene.duration_s * share, True
            else:
                seconds, explicit = min(MAX_AUTO_S, max(MIN_AUTO_S, read)), False
            drafts.append(
                _Draft(
                    source_index=source_index,
                    source_line=scene.line_no,
                    part=part,
                    parts=len(pages),
                    title_lines=page.title_lines,
                    lines=page.lines,
                    cjk_locale=page.cjk_locale,
                    seconds=seconds,
                    explicit=explicit,
                    transition=(scene.transition or "crossfade") if part == 0 else "crossfade",
                    background=background,
                    min_s=lo,
                    max_s=hi,
                    spoken=spoken is not None,
                )
            )

    # 2. Durations.
    if target_duration is not None:
        note = _fit_to_target(drafts, target_duration)
        if note:
            warnings.append(note)
    total_s = sum(d.seconds for d in drafts)
    if total_s > max_duration_s:
        raise StoryboardError(
            f"the video would last {total_s:.0f} s; the limit is {max_duration_s:.0f} s"
        )

    # 3. Frames: cumulative rounding so the total is exact and nothing drifts.
    starts = [0]
    acc = 0.0
    for d in drafts:
        acc += d.seconds
        starts.append(round(acc * fps))
    slots = [max(1, b - a) for a, b in itertools.pairwise(starts)]
    starts = [0]
    for slot in slots:
        starts.append(starts[-1] + slot)
    total_frames = starts[-1]
    fade = round(CROSSFADE_S * fps)
    trans_in = [0] * len(drafts)
    for i in range(1, len(drafts)):
        if drafts[i].transition == "crossfade":
            # Never longer than half of either card, so each is seen on its own.
            trans_in[i] = max(0, min(fade, slots[i - 1] // 2, slots[i] // 2))
    scenes = tuple(
        StoryboardScene(
            index=i,
            source_index=d.source_index,
            source_line=d.source_line,
            part=d.part,
            parts=d.parts,
            title_lines=d.title_lines,
            lines=d.lines,
            cjk_locale=d.cjk_locale,
            start_frame=starts[i],
            slot_frames=slots[i],
            frames=slots[i] + (trans_in[i + 1] if i + 1 < len(drafts) else 0),
            transition_in="none" if i == 0 else ("crossfade" if trans_in[i] else "cut"),
            transition_in_frames=trans_in[i],
            background=d.background,
            explicit_duration=d.explicit,
        )
        for i, d in enumerate(drafts)
    )

    # 4. Music and renditions.
    music_id = music or script.music_asset_id
    music_plan: MusicPlan | None = None
    if music_id is not None:
        info = infos.get(music_id)
        if info is None:
            raise StoryboardError(f"music asset {music_id!r} is not among the job's assets")
        if info.kind != "audio":
            raise StoryboardError(f"music asset {music_id!r} is a {info.kind}, not audio")
        duration = total_frames / fps
        music_plan = MusicPlan(
            asset_id=music_id,
            fade_in_s=min(1.0, duration / 4),
            fade_out_s=min(2.0, duration / 4),
        )
    ladder = (
        list(renditions)
        if renditions is not None
        else [q for q in QUALITIES if QUALITIES.index(q) <= QUALITIES.index(quality)][::-1]
    )
    if quality not in ladder:
        ladder.insert(0, quality)
    outputs = tuple(Rendition(q, *resolution(q, aspect)) for q in dict.fromkeys(ladder))

    return Storyboard(
        quality=quality,
        aspect=aspect,
        width=width,
        height=height,
        fps=fps,
        renditions=outputs,
        style=style,
        card=metrics,
        subtitles=subtitles,
        scenes=scenes,
        total_frames=total_frames,
        edge_fade_frames=min(round(EDGE_FADE_S * fps), slots[0] // 4, slots[-1] // 4),
        music=music_plan,
        warnings=tuple(warnings),
        narration=_place_narration(scenes, speech, fps) if speech else (),
    )


def _place_narration(
    scenes: Sequence[StoryboardScene], speech: SpeechPlan, fps: int
) -> tuple[SpeechClip, ...]:
    """Each sentence at its time: the scene's pauses take what its speech leaves."""
    placed: list[SpeechClip] = []
    for spoken in speech.scenes:
        cards = [s for s in scenes if s.source_index == spoken.source_index]
        if not cards or not spoken.clips:
            continue
        start = cards[0].start_frame / fps
        total = sum(c.slot_frames for c in cards) / fps
        base_pauses = timing.pauses_s(len(spoken.clips))
        scale = max(0.0, (total - spoken.speech_s) / base_pauses) if base_pauses else 0.0
        # An explicit [duration] longer than the speech leaves the rest as a
        # normal tail instead of stretching the lead-in.
        lead_scale = min(scale, 1.0) if cards[0].explicit_duration else scale
        at = start + timing.LEAD_S * lead_scale
        for clip in spoken.clips:
            placed.append(
                SpeechClip(
                    source_index=spoken.source_index,
                    sentence=clip.sentence,
                    audio_key=clip.audio_key,
                    start_s=round(at, 4),
                    duration_s=clip.duration_s,
                    words=clip.words,
                    voice=spoken.voice,
                    rate=spoken.rate,
                )
            )
            gap_scale = min(scale, 1.0) if cards[0].explicit_duration else scale
            at += clip.duration_s + timing.GAP_S * gap_scale
    return tuple(placed)


@dataclass(eq=False)  # identity semantics: _fit_to_target tracks drafts by object
class _Draft:
    source_index: int
    source_line: int
    part: int
    parts: int
    title_lines: tuple[str, ...]
    lines: tuple[str, ...]
    cjk_locale: str
    seconds: float
    explicit: bool
    transition: str
    background: BackgroundPlan
    min_s: float = HARD_MIN_S  # bounds when scaling to a target duration
    max_s: float = HARD_MAX_S
    spoken: bool = False


def _background_plan(
    index: int,
    wanted: Any,
    style: Style,
    assets: Mapping[str, AssetInfo],
    line_no: int,
) -> BackgroundPlan:
    # Seeded by the scene index: the same script always looks the same, and
    # all cards of one split scene share their background.
    rng = random.Random(index)
    angle = round(rng.uniform(0, 360), 1)
    if wanted is None:
        palette = style.background_colors
        first = palette[index % len(palette)]
        second = palette[(index + 1 + rng.randrange(max(1, len(palette) - 1))) % len(palette)]
        return BackgroundPlan(kind="gradient", colors=(first, second), angle_deg=angle)
    if wanted.kind == "color":
        colors = tuple(wanted.colors)
        if len(colors) == 1:
            colors = (colors[0], _darken(colors[0]))
        return BackgroundPlan(kind="gradient", colors=colors, angle_deg=angle)
    asset_id = wanted.asset_id
    info = assets.get(asset_id)
    if info is None:
        raise StoryboardError(
            f"line {line_no}: background asset {asset_id!r} is not among the job's assets"
        )
    if info.kind == "image":
        return BackgroundPlan(
            kind="image", asset_id=asset_id, motion=IMAGE_MOTIONS[index % len(IMAGE_MOTIONS)]
        )
    if info.kind == "video":
        return BackgroundPlan(kind="video", asset_id=asset_id, asset_duration_s=info.duration_s)
    raise StoryboardError(f"line {line_no}: asset {asset_id!r} is {info.kind}, not image or video")


def _darken(colour: str) -> str:
    r, g, b = (round(c * 0.55) for c in hex_rgb(colour))
    return f"#{r:02X}{g:02X}{b:02X}"


def _fit_to_target(drafts: list[_Draft], target: float) -> str | None:
    """Scale the automatic durations so the total is ``target`` (explicit ones stay).

    Silent videos that cannot fit are an error, as before; with narration the
    speech is never cut, so the nearest possible length is used and the
    returned note says so (the job log shows it)."""
    fixed = sum(d.seconds for d in drafts if d.explicit)
    free = [d for d in drafts if not d.explicit]
    remaining = target - fixed
    narrated = any(d.spoken for d in drafts)
    if not free:
        if abs(remaining) > 0.5:
            if narrated:
                return (
                    f"target duration {target:g} s not met: every scene has an explicit "
                    f"duration (total {fixed:.1f} s)"
                )
            raise StoryboardError(
                f"every scene has an explicit duration (total {fixed:.1f} s), "
                f"so target_duration {target:g} s cannot be met"
            )
        return None
    lo, hi = sum(d.min_s for d in free), sum(d.max_s for d in free)
    if not lo - 1e-6 <= remaining <= hi + 1e-6:
        if narrated:
            bound = lo if remaining < lo else hi
            for d in free:
                d.seconds = d.min_s if remaining < lo else d.max_s
            return (
                f"target duration {target:g} s not met: with the narration's pauses within "
                f"bounds the video lasts {fixed + bound:.1f} s"
            )
        raise StoryboardError(
            f"target_duration {target:g} s cannot fit {len(drafts)} cards "
            f"(possible: {fixed + lo:.1f}-{fixed + hi:.1f} s)"
        )
    # Water-filling: scale, clamp the ones that hit a bound, rescale the rest.
    pending = list(free)
    while pending:
        budget = remaining - sum(d.seconds for d in free if d not in pending)
        base = sum(d.seconds for d in pending)
        factor = budget / base
        clamped = [d for d in pending if not d.min_s <= d.seconds * factor <= d.max_s]
        if not clamped:
            for d in pending:
                d.seconds *= factor
            return None
        for d in clamped:
            d.seconds = d.min_s if d.seconds * factor < d.min_s else d.max_s
            pending.remove(d)
    return None


__all__ = [
    "ASPECTS",
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
    "build_storyboard",
    "reading_seconds",
]
