"""Caption cues and the WebVTT/SRT files made from them.

A narrated video's cues come from its speech (``Storyboard.narration``),
not from reading speed: one cue per spoken sentence, shown exactly while it
is spoken (from its clip's start to its end, never before or after).  A
sentence is laid out at the frame's width with the same fonts and text
metrics as burned-in subtitles (text_cards, caption layout); when it needs
more than two lines it becomes several cues of at most two lines, each
switching in at the first word it shows, so the reader never sees text
that is not being said yet.  WebVTT carries every word's start as an inline
``<hh:mm:ss.mmm>`` timestamp (players highlight or reveal words with it);
SRT, which has no such thing, stays sentence-level.

Silent videos keep their one cue per card, switching in the middle of each
crossfade.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline.stages.fonts import guess_cjk_locale, resolve_chain
from pipeline.stages.narration_plan import SpeechClip, SpokenWord
from pipeline.stages.storyboard import Storyboard
from pipeline.stages.text_cards import CAPTION_MAX_LINES, CardMetrics, TextMeasurer, clusters


@dataclass(frozen=True)
class CueWord:
    start_s: float  # absolute, on the video's timeline
    text: str
    space_before: bool = True  # False inside CJK text, where words are not spaced


@dataclass(frozen=True)
class Cue:
    start_s: float
    end_s: float
    text: str  # lines joined by "\n"
    # Per line, the words with their start times (narrated videos only).
    lines: tuple[tuple[CueWord, ...], ...] = field(default=())


def subtitle_cues(sb: Storyboard) -> list[Cue]:
    """The video's cues: from the narration when there is one."""
    return speech_cues(sb) if sb.narration else card_cues(sb)


def card_cues(sb: Storyboard) -> list[Cue]:
    """One cue per card, switching in the middle of each crossfade."""
    cues: list[Cue] = []
    scenes = sb.scenes
    for i, scene in enumerate(scenes):
        start = scene.start_frame + scene.transition_in_frames / 2
        nxt = scenes[i + 1] if i + 1 < len(scenes) else None
        end = nxt.start_frame + nxt.transition_in_frames / 2 if nxt is not None else sb.total_frames
        parts = [" ".join(scene.title_lines), " ".join(scene.lines)]
        text = "\n".join(p for p in parts if p)
        if text:
            cues.append(Cue(start / sb.fps, end / sb.fps, text))
    return cues


def caption_metrics(sb: Storyboard) -> CardMetrics:
    """The burned-in subtitle layout for this frame (text size and width)."""
    return CardMetrics.for_frame(sb.width, sb.height, family=sb.card.family, caption=True)


def speech_cues(sb: Storyboard, *, max_lines: int = CAPTION_MAX_LINES) -> list[Cue]:
    metrics = caption_metrics(sb)
    measurers: dict[str, TextMeasurer] = {}
    cues: list[Cue] = []
    for clip in sorted(sb.narration, key=lambda c: c.start_s):
        end = min(clip.end_s, sb.duration_s)
        if end <= clip.start_s or not clip.sentence.strip():
            continue
        locale = guess_cjk_locale(clip.sentence)
        if locale not in measurers:
            chain = resolve_chain(metrics.family, cjk_locale=locale)
            measurers[locale] = TextMeasurer(chain, metrics.body_px)
        lines = _layout(clip, measurers[locale], metrics.box_width)
        chunks = [lines[i : i + max_lines] for i in range(0, len(lines), max_lines)]
        for n, chunk in enumerate(chunks):
            start = clip.start_s if n == 0 else chunk[0][0].start_s
            stop = chunks[n + 1][0][0].start_s if n + 1 < len(chunks) else end
            if stop <= start:  # words timed past the clip's end: keep the cue inside it
                continue
            cues.append(
                Cue(
                    start_s=start,
                    end_s=stop,
                    text="\n".join(_line_text(line) for line in chunk),
                    lines=tuple(tuple(line) for line in chunk),
                )
            )
    return cues


def _layout(clip: SpeechClip, measurer: TextMeasurer, max_width: float) -> list[list[CueWord]]:
    """The sentence's words in lines no wider than the caption box."""
    words = _timed_words(clip)
    lines: list[list[CueWord]] = []
    current: list[CueWord] = []
    for word in words:
        candidate = [*current, word]
        if current and measurer.width(_line_text(candidate)) > max_width:
            lines.append(current)
            current = [CueWord(word.start_s, word.text, space_before=True)]
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines


def _timed_words(clip: SpeechClip) -> list[CueWord]:
    """Words with absolute times; spread by length when the engine gave none.

    The engine's words are what was spoken; a word's separator is taken from
    the sentence itself (``"a b"`` in it → spaced), so CJK words stay joined.
    """
    spoken: Sequence[SpokenWord] = clip.words
    if not spoken:
        # No timings: words (or, unspaced CJK, characters) timed by their
        # share of the characters.
        units = clip.sentence.split() if " " in clip.sentence.strip() else clusters(clip.sentence)
        total = sum(len(u) for u in units) or 1
        at = 0.0
        made: list[SpokenWord] = []
        for unit in units:
            made.append(SpokenWord(unit, at, at + clip.duration_s * len(unit) / total))
            at = made[-1].end_s
        spoken = made
    out: list[CueWord] = []
    previous = ""
    for word in spoken:
        text = word.text.strip()
        if not text:
            continue
        if f"{previous} {text}" in clip.sentence:
            spaced = True
        elif f"{previous}{text}" in clip.sentence:
            spaced = False
        else:
            spaced = " " in clip.sentence
        start = clip.start_s + min(max(0.0, word.start_s), clip.duration_s)
        if out and start < out[-1].start_s:
            start = out[-1].start_s  # inline timestamps must not go backwards
        out.append(CueWord(start, text, space_before=spaced and bool(out)))
        previous = text
    return out


def _line_text(words: Sequence[CueWord]) -> str:
    return "".join((" " if w.space_before and i else "") + w.text for i, w in enumerate(words))


# --------------------------------------------------------------------------
# Files


def _timestamp(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _vtt_payload(cue: Cue) -> str:
    if not cue.lines:
        return _vtt_escape(cue.text).replace("-->", "--&gt;")
    out: list[str] = []
    first = True
    for line in cue.lines:
        parts: list[str] = []
        for i, word in enumerate(line):
            sep = " " if word.space_before and i else ""
            # The first word starts with the cue; a timestamp must lie
            # strictly inside the cue, so later ones are clamped into it.
            if first:
                stamp, first = "", False
            else:
                at = min(max(word.start_s, cue.start_s + 0.001), cue.end_s - 0.001)
                stamp = f"<{_timestamp(at, '.')}>"
            parts.append(f"{sep}{stamp}{_vtt_escape(word.text)}")
        out.append("".join(parts))
    return "\n".join(out)


def to_webvtt(cues: Sequence[Cue]) -> str:
    out = ["WEBVTT", ""]
    for n, cue in enumerate(cues, start=1):
        out += [
            str(n),
            f"{_timestamp(cue.start_s, '.')} --> {_timestamp(cue.end_s, '.')}",
            _vtt_payload(cue),
            "",
        ]
    return "\n".join(out)


def to_srt(cues: Sequence[Cue]) -> str:
    out: list[str] = []
    for n, cue in enumerate(cues, start=1):
        out += [
            str(n),
            f"{_timestamp(cue.start_s, ',')} --> {_timestamp(cue.end_s, ',')}",
            cue.text.replace("-->", "->"),
            "",
        ]
    return "\n".join(out)
