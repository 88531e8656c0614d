"""Plan a storyboard from a parsed script: the cards, their times, music and renditions.

Text is wrapped here with the real fonts and frame size (text_cards), so the
renderer draws exactly these lines; a scene whose text does not fit one card
becomes several cards, never smaller type.  Planning goes in four steps, one
function each:

1. cards: wrap every scene and draft its cards with their wanted length;
2. durations: fit the drafts to a target duration and the length limit;
3. frames: turn seconds into whole-frame slots and crossfades;
4. music and renditions.

Durations follow these rules:

* the slot comes from reading speed (words, or characters for CJK), clamped
  to [MIN_AUTO_S, MAX_AUTO_S], or from the scene's ``[duration: ...]``
  (spread over its cards by their text);
* with ``target_duration`` the automatic slots are scaled to make the total
  match, explicit ones are kept;
* a spoken scene (``speech``, from the narrate stage) lasts its speech plus
  pauses (pipeline.stages.narrate.timing) and is never cut: a
  ``[duration]`` stretches its pauses, a target duration scales them within
  bounds, and its sentences become the storyboard's ``narration`` clips.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.stages.narrate import timing
from pipeline.stages.narrate.stage import SceneSpeech, SpeechPlan
from pipeline.stages.narration_plan import SpeechClip
from pipeline.stages.reading_time import reading_seconds
from pipeline.stages.script import Scene, Script
from pipeline.stages.storyboard import (
    IMAGE_MOTIONS,
    QUALITIES,
    SUBTITLE_MODES,
    AssetInfo,
    BackgroundPlan,
    MusicPlan,
    Rendition,
    Storyboard,
    StoryboardError,
    StoryboardScene,
    Style,
    resolution,
)
from pipeline.stages.text_cards import CardMetrics, hex_rgb, paginate

MIN_AUTO_S = 2.5
MAX_AUTO_S = 15.0
HARD_MIN_S = 1.5  # scaling to a target never goes below / above these
HARD_MAX_S = 60.0
CROSSFADE_S = 0.5
EDGE_FADE_S = 0.4  # fade from / to black at the very start and end
MAX_DURATION_S = 3600.0


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
    _check_options(subtitles, fps, target_duration, max_duration_s)
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
    warnings: list[str] = list(speech.notes) if speech else []

    drafts = _draft_cards(script, metrics, style, infos, speech)
    note = _fit_durations(drafts, target_duration, max_duration_s)
    if note:
        warnings.append(note)
    scenes = _frame_scenes(drafts, fps)
    first, last = scenes[0], scenes[-1]
    total_frames = last.start_frame + last.slot_frames

    return Storyboard(
        quality=quality,
        aspect=aspect,
        width=width,
        height=height,
        fps=fps,
        renditions=_renditions(quality, aspect, renditions),
        style=style,
        card=metrics,
        subtitles=subtitles,
        scenes=scenes,
        total_frames=total_frames,
        edge_fade_frames=min(
            round(EDGE_FADE_S * fps), first.slot_frames // 4, last.slot_frames // 4
        ),
        music=_music_plan(music or script.music_asset_id, infos, total_frames / fps),
        warnings=tuple(warnings),
        narration=_place_narration(scenes, speech, fps) if speech else (),
    )


def _check_options(
    subtitles: str, fps: int, target_duration: float | None, max_duration_s: float
) -> None:
    if subtitles not in SUBTITLE_MODES:
        raise StoryboardError(f"subtitles must be one of {SUBTITLE_MODES}")
    if not 10 <= fps <= 60:
        raise StoryboardError("fps must be between 10 and 60")
    if target_duration is not None and not 1.0 <= target_duration <= max_duration_s:
        raise StoryboardError(f"target_duration must be between 1 and {max_duration_s:g} s")


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


# 1. Cards: wrap every scene, split what does not fit.


def _draft_cards(
    script: Script,
    metrics: CardMetrics,
    style: Style,
    infos: Mapping[str, AssetInfo],
    speech: SpeechPlan | None,
) -> list[_Draft]:
    drafts: list[_Draft] = []
    for source_index, scene in enumerate(script.scenes):
        background = _background_plan(source_index, scene.background, style, infos, scene.line_no)
        pages = paginate(scene.text, scene.title, metrics)
        reads = [reading_seconds(" ".join((*p.title_lines, *p.lines))) for p in pages]
        spoken = speech.for_scene(source_index) if speech else None
        for part, (page, read) in enumerate(zip(pages, reads, strict=True)):
            seconds, explicit, lo, hi = _card_seconds(scene, read, read / sum(reads), spoken)
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
    return drafts


def _card_seconds(
    scene: Scene, read: float, share: float, spoken: SceneSpeech | None
) -> tuple[float, bool, float, float]:
    """One card's wanted length, whether it is explicit, and its scaling bounds.

    ``read`` is the card's reading time, ``share`` its part of the scene's text.
    """
    if spoken is not None:
        # The scene's speech is spread over its cards like its text.
        durations = [c.duration_s for c in spoken.clips]
        natural = timing.scene_seconds(durations)
        lo = share * timing.scene_seconds(durations, timing.MIN_PAUSE_SCALE)
        hi = share * timing.scene_seconds(durations, timing.MAX_PAUSE_SCALE)
        if scene.duration_s is not None:
            return max(scene.duration_s, lo / share) * share, True, lo, hi
        return natural * share, False, lo, hi
    if scene.duration_s is not None:
        return scene.duration_s * share, True, HARD_MIN_S, HARD_MAX_S
    return min(MAX_AUTO_S, max(MIN_AUTO_S, read)), False, HARD_MIN_S, HARD_MAX_S


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


# 2. Durations.


def _fit_durations(
    drafts: list[_Draft], target_duration: float | None, max_duration_s: float
) -> str | None:
    """Fit the drafts to ``target_duration`` and check the length limit.

    Returns a note for the job log when the target could not be met."""
    note = _fit_to_target(drafts, target_duration) if target_duration is not None else None
    total_s = sum(d.seconds for d in drafts)
    if total_s > max_duration_s:
        raise StoryboardError(
            f"the video would last {total_s:.0f} s; the limit is {max_duration_s:.0f} s"
        )
    return note


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


# 3. Frames.


def _frame_scenes(drafts: Sequence[_Draft], fps: int) -> tuple[StoryboardScene, ...]:
    """The drafts on a timeline of whole frames, with their crossfades."""
    slots = _slot_frames(drafts, fps)
    starts = [0, *itertools.accumulate(slots)]
    trans_in = _crossfade_frames(drafts, slots, fps)
    return tuple(
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


def _slot_frames(drafts: Sequence[_Draft], fps: int) -> list[int]:
    """Cumulative rounding, so the total is exact and nothing drifts; at least a frame each."""
    ends = [0]
    acc = 0.0
    for d in drafts:
        acc += d.seconds
        ends.append(round(acc * fps))
    return [max(1, b - a) for a, b in itertools.pairwise(ends)]


def _crossfade_frames(drafts: Sequence[_Draft], slots: Sequence[int], fps: int) -> list[int]:
    """How many frames each card fades in over (0: a cut, or the first card)."""
    fade = round(CROSSFADE_S * fps)
    trans_in = [0] * len(drafts)
    for i in range(1, len(drafts)):
        if drafts[i].transition == "crossfade":
            # Never longer than half of either card, so each is seen on its own.
            trans_in[i] = max(0, min(fade, slots[i - 1] // 2, slots[i] // 2))
    return trans_in


# 4. Music and renditions.


def _music_plan(
    music_id: str | None, infos: Mapping[str, AssetInfo], duration_s: float
) -> MusicPlan | None:
    if music_id is None:
        return None
    info = infos.get(music_id)
    if info is None:
        raise StoryboardError(f"music asset {music_id!r} is not among the job's assets")
    if info.kind != "audio":
        raise StoryboardError(f"music asset {music_id!r} is a {info.kind}, not audio")
    return MusicPlan(
        asset_id=music_id,
        fade_in_s=min(1.0, duration_s / 4),
        fade_out_s=min(2.0, duration_s / 4),
    )


def _renditions(quality: str, aspect: str, wanted: Sequence[str] | None) -> tuple[Rendition, ...]:
    ladder = (
        list(wanted)
        if wanted is not None
        else [q for q in QUALITIES if QUALITIES.index(q) <= QUALITIES.index(quality)][::-1]
    )
    if quality not in ladder:
        ladder.insert(0, quality)
    return tuple(Rendition(q, *resolution(q, aspect)) for q in dict.fromkeys(ladder))


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


__all__ = [
    "CROSSFADE_S",
    "MAX_AUTO_S",
    "MAX_DURATION_S",
    "MIN_AUTO_S",
    "build_storyboard",
]
