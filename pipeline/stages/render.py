"""Render a storyboard to MP4 renditions (and subtitle files).

``render_video`` is the stage's entry point.  It draws one card image per
storyboard scene (never per frame), prepares image backgrounds once, lets
ffmpeg compose and encode everything in one filter graph (render_graph),
and checks the results with PyAV before reporting them.

Everything is written under ``out_dir``: temporary files in a private
subdirectory that is removed afterwards, outputs moved into place only when
complete.  A failure or a cancel leaves no partial output behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import gc
import logging
import math
import os
import re
import shutil
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pipeline.stages.captions import Cue, subtitle_cues, to_srt, to_webvtt
from pipeline.stages.ffmpeg_runner import MonotonicProgress, run_ffmpeg
from pipeline.stages.fonts import FontNotFound, check_text_engine, resolve_chain
from pipeline.stages.narration_mix import mix_narration
from pipeline.stages.render_errors import RenderCancelled, RenderError, RenderTimeout
from pipeline.stages.render_graph import (
    MIX,
    TARGET_LUFS,
    EncodeSettings,
    FfmpegJob,
    GraphInputs,
    build_ffmpeg_job,
    clamp_gain,
    measure_job,
    mix_job,
    prepared_image_size,
)
from pipeline.stages.storyboard import Rendition, Storyboard, StoryboardScene
from pipeline.stages.text_cards import (
    CardColors,
    CardText,
    draw_card,
    draw_karaoke_band,
    gradient,
)

__all__ = [
    "Cue",
    "RenderCancelled",
    "RenderError",
    "RenderResult",
    "RenderTimeout",
    "render_video",
    "subtitle_cues",
    "to_srt",
    "to_webvtt",
]

log = logging.getLogger(__name__)

STRATEGIES = ("split", "separate")
CARD_SHARE = 0.05  # progress fraction given to drawing cards
DURATION_TOLERANCE_S = 0.1
LOUDNESS_PASSES = 3  # measurements after gain + limiter, at most
LOUDNESS_TOLERANCE_LU = 0.3


@dataclass(frozen=True)
class RenderResult:
    renditions: dict[str, Path]  # quality → MP4, best first
    sizes: dict[str, tuple[int, int]]  # quality → (width, height)
    subtitle_files: dict[str, Path]  # "vtt"/"srt" → file (sidecar mode, or narrated)
    duration_s: float
    poster_time_s: float
    elapsed_s: float = 0.0
    strategy: str = "split"
    warnings: tuple[str, ...] = field(default=())

    @property
    def primary(self) -> Path:
        return next(iter(self.renditions.values()))


def render_video(
    storyboard: Storyboard,
    out_dir: Path,
    *,
    asset_paths: Mapping[str, Path],
    narration_paths: Mapping[str, Path] | None = None,
    on_progress: Callable[[float], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    strategy: str = "split",
    encode: EncodeSettings | None = None,
    timeout_s: float | None = None,
    memory_limit_bytes: int | None = None,
) -> RenderResult:
    """Render all renditions of ``storyboard`` into ``out_dir``.

    ``asset_paths`` maps the storyboard's asset ids to local files,
    ``narration_paths`` the narration clips' ``audio_key``s to local WAVs.
    ``on_progress(fraction)`` is monotonic and ends with 1.0;
    ``should_cancel()`` is polled at least every 0.25 s while ffmpeg runs
    (and between cards); a cancel kills ffmpeg, removes partial outputs and
    raises RenderCancelled.  Failures raise RenderError with ``permanent``
    set; ``timeout_s`` bounds ffmpeg's wall time (RenderTimeout, transient),
    ``memory_limit_bytes`` its address space.
    ``strategy`` "split" encodes every rendition in one ffmpeg run from one
    composition; "separate" runs ffmpeg once per rendition.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}")
    started = time.monotonic()
    progress = MonotonicProgress(on_progress)
    cancelled = should_cancel or (lambda: False)
    out_dir = Path(out_dir)
    with render_workspace(out_dir, ".render-") as (work, finals):
        inputs = _prepare_inputs(
            storyboard, work, asset_paths, narration_paths or {}, progress, cancelled
        )
        _release_memory()
        inputs, gain_db = _mix_sound(storyboard, inputs, work, cancelled)
        outputs = [(r, f"out_{r.quality}.mp4") for r in storyboard.renditions]
        runs = [outputs] if strategy == "split" else [[o] for o in outputs]
        weights = [sum(r.width * r.height for r, _ in run) for run in runs]
        done = 0.0
        for run, weight in zip(runs, weights, strict=True):
            job = build_ffmpeg_job(storyboard, inputs, run, encode=encode, gain_db=gain_db)
            for name, content in job.files.items():
                (work / name).write_text(content, encoding="utf-8")
            share = (1 - CARD_SHARE - 0.01) * weight / sum(weights)
            base = CARD_SHARE + (1 - CARD_SHARE - 0.01) * done
            run_ffmpeg(
                job.args,
                cwd=work,
                total_duration_s=storyboard.duration_s,
                log_path=work / "ffmpeg.log",
                on_progress=_scaled(progress, base, share),
                should_cancel=cancelled,
                timeout_s=None
                if timeout_s is None
                else max(1.0, timeout_s - (time.monotonic() - started)),
                memory_limit_bytes=memory_limit_bytes,
            )
            done += weight / sum(weights)
        result = _collect(storyboard, work, out_dir, outputs, finals)
        if cancelled():
            raise RenderCancelled()
        progress(1.0)
        return finished_render(
            storyboard, out_dir, result, finals, started=started, strategy=strategy
        )


@contextlib.contextmanager
def render_workspace(out_dir: Path, prefix: str) -> Iterator[tuple[Path, list[Path]]]:
    """A scratch directory under ``out_dir``, and a list for the finished outputs.

    The scratch directory goes whatever happens; the outputs in the list go
    too unless the block succeeds, so a failed or cancelled render leaves
    nothing half-made in ``out_dir``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=out_dir))
    finals: list[Path] = []
    try:
        yield work, finals
    except BaseException:
        for path in finals:
            path.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def finished_render(
    storyboard: Storyboard,
    out_dir: Path,
    renditions: dict[str, Path],
    finals: list[Path],
    *,
    started: float,
    strategy: str,
) -> RenderResult:
    """The result of a render whose renditions are in ``out_dir``: their
    sizes, the caption files written beside them, and what it took."""
    return RenderResult(
        renditions=renditions,
        sizes={r.quality: (r.width, r.height) for r in storyboard.renditions},
        subtitle_files=_write_subtitles(storyboard, out_dir, finals),
        duration_s=storyboard.duration_s,
        poster_time_s=storyboard.poster_time_s,
        elapsed_s=time.monotonic() - started,
        strategy=strategy,
        warnings=storyboard.warnings,
    )


def _mix_sound(
    sb: Storyboard, inputs: GraphInputs, work: Path, cancelled: Callable[[], bool]
) -> tuple[GraphInputs, float | None]:
    """Mix a narrated video's sound once and find the gain that brings it to
    -16 LUFS integrated: (inputs with the mix, gain in dB or None if silent).

    The limiter after the gain takes some loudness off the loudest syllables
    (measured -17.2 LUFS for a gain meant to give -16), and takes more the
    more gain there is, so the gain is corrected from measurements after
    gain and limiter (secant steps) until within LOUDNESS_TOLERANCE_LU.
    Each measurement reads only the mixed WAV: ~0.3 s for 60 s here.
    Silent and music-only videos are not normalised (as before).
    """
    if inputs.narration is None:
        return inputs, None
    raw = _loudness(mix_job(sb, inputs), sb, work, cancelled)
    inputs = dataclasses.replace(inputs, mix=MIX)
    if raw is None:  # silence measures -inf: nothing to scale
        return inputs, None
    points = [(0.0, raw)]
    gain = clamp_gain(TARGET_LUFS - raw)
    for _ in range(LOUDNESS_PASSES):
        measured = _loudness(measure_job(gain), sb, work, cancelled)
        if measured is None or abs(measured - TARGET_LUFS) <= LOUDNESS_TOLERANCE_LU:
            break
        (g0, l0), points = points[-1], [*points, (gain, measured)]
        slope = (measured - l0) / (gain - g0) if gain != g0 else 1.0
        gain = clamp_gain(gain + (TARGET_LUFS - measured) / min(1.0, max(0.3, slope)))
    return inputs, gain


def _loudness(
    job: FfmpegJob, sb: Storyboard, work: Path, cancelled: Callable[[], bool]
) -> float | None:
    """Run ``job`` (ending in ``ebur128``) and read its integrated loudness."""
    for name, content in job.files.items():
        (work / name).write_text(content, encoding="utf-8")
    log_path = work / "loudness.log"
    run_ffmpeg(
        job.args,
        cwd=work,
        total_duration_s=sb.duration_s,
        log_path=log_path,
        should_cancel=cancelled,
    )
    text = log_path.read_text(encoding="utf-8", errors="replace")
    summary = text[text.rfind("Summary:") :] if "Summary:" in text else ""
    found = re.search(r"\bI:\s*(-?[0-9.]+|-inf|inf|nan) LUFS", summary)
    value = found.group(1) if found else ""
    return float(value) if _finite(value) else None


def _finite(value: object) -> bool:
    try:
        return math.isfinite(float(str(value)))
    except ValueError:
        return False


def _release_memory() -> None:
    """Hand the card-drawing memory back to the OS before the long ffmpeg run.

    CPython frees into glibc's arenas, which keep it: without a trim the
    worker would sit on ~100 MB it no longer uses while ffmpeg works.
    """
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _scaled(progress: MonotonicProgress, base: float, share: float) -> Callable[[float], None]:
    def report(fraction: float) -> None:
        progress(base + share * fraction)

    return report


# --------------------------------------------------------------------------
# Inputs: cards, prepared images, links to assets


def _prepare_inputs(
    sb: Storyboard,
    work: Path,
    asset_paths: Mapping[str, Path],
    narration_paths: Mapping[str, Path],
    progress: MonotonicProgress,
    cancelled: Callable[[], bool],
) -> GraphInputs:
    _check_assets(sb, asset_paths)
    _check_fonts(sb)
    cards: dict[int, str] = {}
    backgrounds: dict[int, str] = {}
    prepared: dict[str, str] = {}
    colors = CardColors(text=sb.style.text_color, shadow=sb.style.shadow_color)
    for scene in sb.scenes:
        if cancelled():
            raise RenderCancelled()
        name = f"card_{scene.index:04d}.png"
        _draw_scene_card(sb, scene, colors).save(work / name, compress_level=1)
        cards[scene.index] = name
        bg = scene.background
        if bg.asset_id is not None:
            if bg.asset_id not in prepared:
                prepared[bg.asset_id] = _prepare_asset(
                    sb, bg.kind, asset_paths[bg.asset_id], work, len(prepared)
                )
            backgrounds[scene.index] = prepared[bg.asset_id]
        progress(CARD_SHARE * (scene.index + 1) / len(sb.scenes))
    music = None
    if sb.music is not None:
        source = Path(asset_paths[sb.music.asset_id])
        music = f"music{_safe_suffix(source)}"
        os.symlink(source.resolve(), work / music)
    overrides = _karaoke_cards(sb, work, colors, cancelled)
    narration = None
    if sb.narration:
        narration = "narration.wav"
        mix_narration(
            sb.narration, narration_paths, work / narration, sb.duration_s, cancelled=cancelled
        )
    return GraphInputs(
        cards=cards,
        backgrounds=backgrounds,
        music=music,
        narration=narration,
        overrides=overrides,
    )


def _karaoke_cards(
    sb: Storyboard, work: Path, colors: CardColors, cancelled: Callable[[], bool]
) -> tuple[tuple[int, int, str], ...]:
    """``subtitles: karaoke``: one card per spoken word, shown while it is
    spoken: the scene's card without its body text, the cue burned in the
    subtitle band, the word highlighted.  Returned as (first frame, end
    frame, card) ranges that replace the scene's card on the static track,
    so a word costs one PNG, never per-frame work (see render_graph).

    Only the solo part of static (gradient) scenes is covered: during a
    crossfade, and over image/video backgrounds, the scene's own burned
    text shows, as in ``burned`` mode.
    """
    if sb.subtitles != "karaoke" or not sb.narration:
        return ()
    fps = sb.fps
    solo = [
        (s, s.start_frame + s.transition_in_frames, s.start_frame + s.slot_frames)
        for s in sb.scenes
        if s.background.kind == "gradient"
    ]
    bases: dict[int, Image.Image] = {}
    overrides: list[tuple[int, int, str]] = []
    for cue in subtitle_cues(sb):
        words = [(row, i, w) for row, line in enumerate(cue.lines) for i, w in enumerate(line)]
        spaced = any(w.space_before for _, _, w in words)
        texts = [[w.text for w in line] for line in cue.lines]
        for n, (row, i, word) in enumerate(words):
            if cancelled():
                raise RenderCancelled()
            start = word.start_s if n else cue.start_s
            end = words[n + 1][2].start_s if n + 1 < len(words) else cue.end_s
            a, b = round(start * fps), round(end * fps)
            for scene, lo, hi in solo:
                first, last = max(a, lo), min(b, hi)
                if first >= last:
                    continue
                if scene.index not in bases:
                    bare = dataclasses.replace(scene, lines=())
                    bases[scene.index] = _draw_scene_card(sb, bare, colors)
                name = f"karaoke_{len(overrides):05d}.png"
                image = draw_karaoke_band(
                    bases[scene.index],
                    texts,
                    (row, i),
                    sb.card,
                    colors=colors,
                    cjk_locale=scene.cjk_locale,
                    spaced=spaced,
                )
                image.save(work / name, compress_level=1)
                overrides.append((first, last, name))
    return tuple(overrides)


def _draw_scene_card(sb: Storyboard, scene: StoryboardScene, colors: CardColors) -> Image.Image:
    card = CardText(lines=scene.lines, title_lines=scene.title_lines, cjk_locale=scene.cjk_locale)
    bg = scene.background
    if bg.kind == "gradient":
        background = gradient(sb.width, sb.height, bg.colors, bg.angle_deg)
        return draw_card(card, sb.card, colors=colors, background=background)
    # Over photos and video a translucent panel keeps text legible.
    panel = CardColors(text=colors.text, shadow=colors.shadow, panel_alpha=110)
    return draw_card(card, sb.card, colors=panel if scene.lines or scene.title_lines else colors)


def _check_assets(sb: Storyboard, asset_paths: Mapping[str, Path]) -> None:
    needed = {s.background.asset_id for s in sb.scenes if s.background.asset_id}
    if sb.music is not None:
        needed.add(sb.music.asset_id)
    for asset_id in sorted(a for a in needed if a is not None):
        path = asset_paths.get(asset_id)
        if path is None or not Path(path).is_file():
            raise RenderError(f"asset {asset_id!r} has no local file", permanent=True)


def _check_fonts(sb: Storyboard) -> None:
    try:
        resolve_chain(sb.card.family)
        text = "".join(line for s in sb.scenes for line in (*s.title_lines, *s.lines))
        if any(unicodedata.bidirectional(ch) in ("R", "AL") for ch in text):
            check_text_engine()
    except FontNotFound as exc:
        # A deployment problem: another worker (or this one, fixed) can do it.
        raise RenderError(str(exc), permanent=False) from exc


def _safe_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    return suffix if suffix.isascii() and suffix[1:].isalnum() and len(suffix) <= 6 else ""


def _prepare_asset(sb: Storyboard, kind: str, source: Path, work: Path, number: int) -> str:
    if kind == "video":
        name = f"asset_{number:03d}{_safe_suffix(Path(source))}"
        os.symlink(Path(source).resolve(), work / name)
        return name
    # Images: orient, flatten and crop to the frame aspect once, at the size
    # pan/zoom needs, stored as raw BT.709 YUV so ffmpeg repeats it cheaply.
    width, height = prepared_image_size(sb.width, sb.height)
    try:
        with Image.open(source) as img:
            img.draft("RGB", (width, height))  # JPEG: decode at a reduced size when possible
            oriented = ImageOps.exif_transpose(img)
            rgb = _flatten(oriented)
            fitted = ImageOps.fit(rgb, (width, height), Image.Resampling.LANCZOS)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError) as exc:
        raise RenderError(
            f"image asset {source.name!r} cannot be read: {exc}", permanent=True
        ) from exc
    name = f"bg_{number:03d}.yuv"
    (work / name).write_bytes(rgb_to_yuv420(fitted))
    return name


def rgb_to_yuv420(image: Image.Image) -> bytes:
    """Planar yuv420p, BT.709 limited range (what the graph declares)."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 16 + 219 / 255 * (0.2126 * r + 0.7152 * g + 0.0722 * b)
    cb = 128 + 224 / 255 * (-0.1146 * r - 0.3854 * g + 0.5 * b)
    cr = 128 + 224 / 255 * (0.5 * r - 0.4542 * g - 0.0458 * b)

    def half(plane: np.ndarray) -> np.ndarray:
        return (plane[0::2, 0::2] + plane[1::2, 0::2] + plane[0::2, 1::2] + plane[1::2, 1::2]) / 4

    planes = (y, half(cb), half(cr))
    return b"".join(np.clip(np.rint(p), 0, 255).astype(np.uint8).tobytes() for p in planes)


def _flatten(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        base = Image.new("RGB", rgba.size, (0, 0, 0))
        base.paste(rgba, mask=rgba.getchannel("A"))
        return base
    return img.convert("RGB")


# --------------------------------------------------------------------------
# Outputs


def _collect(
    sb: Storyboard,
    work: Path,
    out_dir: Path,
    outputs: Sequence[tuple[Rendition, str]],
    finals: list[Path],
) -> dict[str, Path]:
    result: dict[str, Path] = {}
    for rendition, name in outputs:
        produced = work / name
        _verify(produced, rendition, sb.duration_s)
        final = out_dir / f"video_{rendition.quality}.mp4"
        os.replace(produced, final)
        finals.append(final)
        result[rendition.quality] = final
    return result


def _verify(path: Path, rendition: Rendition, expected_s: float) -> None:
    """The output is only reported if it is what the storyboard promised."""
    if not path.is_file() or path.stat().st_size == 0:
        raise RenderError(f"ffmpeg produced no {rendition.quality} output", permanent=False)
    try:
        with av.open(str(path)) as container:
            video = container.streams.video[0]
            size = (video.codec_context.width, video.codec_context.height)
            duration = (container.duration or 0) / 1_000_000
    except (av.error.FFmpegError, IndexError) as exc:
        raise RenderError(
            f"{rendition.quality} output is unreadable: {exc}", permanent=False
        ) from exc
    if size != (rendition.width, rendition.height):
        raise RenderError(
            f"{rendition.quality} output is {size}, expected {(rendition.width, rendition.height)}",
            permanent=True,
        )
    if abs(duration - expected_s) > DURATION_TOLERANCE_S:
        raise RenderError(
            f"{rendition.quality} output lasts {duration:.3f} s, expected {expected_s:.3f} s",
            permanent=True,
        )


def _write_subtitles(sb: Storyboard, out_dir: Path, finals: list[Path]) -> dict[str, Path]:
    # A narrated video always has captions (``subtitles`` only decides what
    # is burned in); a silent one only when asked for sidecar files.
    if sb.subtitles != "sidecar" and not sb.narration:
        return {}
    cues = subtitle_cues(sb)
    vtt = out_dir / "subtitles.vtt"
    srt = out_dir / "subtitles.srt"
    vtt.write_text(to_webvtt(cues), encoding="utf-8")
    finals.append(vtt)
    srt.write_text(to_srt(cues), encoding="utf-8")
    finals.append(srt)
    return {"vtt": vtt, "srt": srt}
