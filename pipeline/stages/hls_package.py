"""Package encoded renditions as HLS with fMP4 (CMAF) segments, by stream copy.

Each rendition is cut by ffmpeg's HLS muxer without re-encoding: segments
start on keyframes, and every rendition of a video shares the same fixed GOP,
so the ~4 s cuts fall on the same instants in every variant and a player can
switch between them at any segment boundary.

The master playlist is written here rather than by the muxer
(``master_pl_name``) because its attributes are measured from the finished
segments: ``BANDWIDTH`` is the peak segment bitrate and ``AVERAGE-BANDWIDTH``
the mean over the whole variant (RFC 8216 §4.3.4.2), and ``CODECS`` comes
from the init segment's ``avcC`` box, which names the exact profile and level.

Layout under the output directory (and under ``hls/{file_id}/`` in storage)::

    master.m3u8
    {quality}/index.m3u8, {quality}/init.mp4, {quality}/seg_00000.m4s …
    subs/index.m3u8, subs/subtitles.vtt          (when the video has captions)
"""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from pipeline.stages.ffmpeg_runner import CancelCheck, run_ffmpeg

SEGMENT_SECONDS = 4
MASTER = "master.m3u8"
VARIANT = "index.m3u8"
SUBTITLES_DIR = "subs"
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
CONTENT_TYPES = {
    ".m3u8": PLAYLIST_TYPE,
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".vtt": "text/vtt; charset=utf-8",
    ".jpg": "image/jpeg",
}
_QUALITY_DIR = re.compile(r"[0-9]{3,4}p|original", re.ASCII)


class PackageError(Exception):
    """A rendition could not be packaged (unreadable or not H.264/AAC)."""


@dataclass(frozen=True)
class Variant:
    quality: str
    width: int
    height: int
    frame_rate: float
    codecs: str
    bandwidth: int
    average_bandwidth: int
    segments: int


@dataclass(frozen=True)
class PackageResult:
    out_dir: Path
    variants: tuple[Variant, ...]
    has_subtitles: bool
    duration_s: float

    def files(self) -> list[Path]:
        """Every file written, playlists last (master at the very end), so a
        copy made in this order never exposes a playlist naming a missing file."""
        media = sorted(p for p in self.out_dir.rglob("*") if p.is_file() and p.suffix != ".m3u8")
        variants = sorted(p for p in self.out_dir.rglob("*.m3u8") if p.name != MASTER)
        return [*media, *variants, self.out_dir / MASTER]


def content_type(name: str) -> str:
    return CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")


def package_hls(
    renditions: Mapping[str, Path],
    out_dir: Path,
    *,
    subtitles_vtt: Path | None = None,
    subtitles_language: str | None = None,
    should_cancel: CancelCheck | None = None,
    timeout_s: float | None = None,
) -> PackageResult:
    """Write the HLS tree of ``renditions`` (quality -> MP4 file) into ``out_dir``."""
    if not renditions:
        raise PackageError("no renditions to package")
    if out_dir.exists():
        shutil.rmtree(out_dir)  # a previous attempt's leftovers are not this output
    out_dir.mkdir(parents=True)
    variants: list[Variant] = []
    duration = 0.0
    for quality, source in renditions.items():
        if not _QUALITY_DIR.fullmatch(quality):
            raise PackageError(f"unexpected rendition name {quality!r}")
        info = _stream_info(source)
        duration = max(duration, info.duration_s)
        target = out_dir / quality
        target.mkdir()
        run_ffmpeg(
            [
                *("-y", "-i", str(source.resolve())),
                # The first video stream and the first audio one if there is
                # one, both copied: the renditions are already encoded.
                *("-map", "0:v:0", "-map", "0:a:0?", "-c", "copy"),
                *("-f", "hls", "-hls_time", str(SEGMENT_SECONDS), "-hls_playlist_type", "vod"),
                *("-hls_segment_type", "fmp4", "-hls_flags", "independent_segments"),
                *("-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename", "seg_%05d.m4s"),
                VARIANT,
            ],
            cwd=target,
            total_duration_s=max(info.duration_s, 0.1),
            log_path=out_dir.parent / f"{out_dir.name}-{quality}.log",
            should_cancel=should_cancel,
            timeout_s=timeout_s,
        )
        variants.append(_measure(quality, target, info))
    has_subtitles = subtitles_vtt is not None and subtitles_vtt.is_file()
    if has_subtitles and subtitles_vtt is not None:
        subs = out_dir / SUBTITLES_DIR
        subs.mkdir()
        shutil.copyfile(subtitles_vtt, subs / "subtitles.vtt")
        (subs / VARIANT).write_text(subtitles_playlist(duration), encoding="ascii")
    variants.sort(key=lambda v: v.bandwidth)
    (out_dir / MASTER).write_text(
        master_playlist(variants, has_subtitles, subtitles_language), encoding="ascii"
    )
    return PackageResult(out_dir, tuple(variants), has_subtitles, duration)


@dataclass(frozen=True)
class _StreamInfo:
    width: int
    height: int
    frame_rate: float
    duration_s: float
    video_codec: str
    audio_codec: str | None


def _stream_info(path: Path) -> _StreamInfo:
    try:
        with av.open(str(path)) as container:
            video = container.streams.video[0]
            audio = container.streams.audio[0] if container.streams.audio else None
            rate = video.average_rate or video.guessed_rate or Fraction(30)
            duration = (
                float(container.duration) / av.time_base if container.duration is not None else 0
            )
            return _StreamInfo(
                width=video.codec_context.width,
                height=video.codec_context.height,
                frame_rate=float(rate),
                duration_s=duration,
                video_codec=video.codec_context.name,
                audio_codec=audio.codec_context.name if audio is not None else None,
            )
    except (av.FFmpegError, IndexError) as exc:
        raise PackageError(f"cannot read rendition {path.name}: {exc}") from exc


def can_stream_copy(path: Path) -> bool:
    """Whether ``path`` is H.264 (with AAC or no sound): packaged as it is."""
    try:
        info = _stream_info(path)
    except PackageError:
        return False
    return info.video_codec == "h264" and info.audio_codec in (None, "aac")


def _avc_codec(init: bytes) -> str:
    """``avc1.PPCCLL`` from the avcC box (profile, constraint flags, level)."""
    at = init.find(b"avcC")
    if at < 0 or len(init) < at + 8:
        raise PackageError("the init segment has no H.264 configuration (avcC)")
    profile, constraints, level = init[at + 5], init[at + 6], init[at + 7]
    return f"avc1.{profile:02x}{constraints:02x}{level:02x}"


def _segment_durations(playlist: str) -> list[tuple[float, str]]:
    durations: list[tuple[float, str]] = []
    pending: float | None = None
    for line in playlist.splitlines():
        if line.startswith("#EXTINF:"):
            pending = float(line[len("#EXTINF:") :].split(",", 1)[0])
        elif line and not line.startswith("#") and pending is not None:
            durations.append((pending, line))
            pending = None
    return durations


def _measure(quality: str, directory: Path, info: _StreamInfo) -> Variant:
    if info.video_codec != "h264" or info.audio_codec not in (None, "aac"):
        raise PackageError(f"{quality} is {info.video_codec}/{info.audio_codec}, not H.264/AAC")
    segments = _segment_durations((directory / VARIANT).read_text(encoding="ascii"))
    if not segments:
        raise PackageError(f"{quality}: the muxer wrote no segments")
    init_size = (directory / "init.mp4").stat().st_size
    sizes = [(directory / name).stat().st_size for _, name in segments]
    # The init segment is fetched once per switch: counted in the first segment.
    sizes[0] += init_size
    peak = max(
        size * 8 / max(seconds, 0.5) for (seconds, _), size in zip(segments, sizes, strict=True)
    )
    total_seconds = sum(seconds for seconds, _ in segments)
    average = sum(sizes) * 8 / max(total_seconds, 0.5)
    codecs = _avc_codec((directory / "init.mp4").read_bytes())
    if info.audio_codec == "aac":
        codecs += ",mp4a.40.2"  # AAC-LC: what the renders and the upload ladder encode
    return Variant(
        quality=quality,
        width=info.width,
        height=info.height,
        frame_rate=info.frame_rate,
        codecs=codecs,
        bandwidth=math.ceil(peak),
        average_bandwidth=math.ceil(average),
        segments=len(segments),
    )


def subtitles_playlist(duration_s: float) -> str:
    """One WebVTT file as the single segment of a VOD subtitle playlist."""
    return (
        "#EXTM3U\n#EXT-X-VERSION:7\n"
        f"#EXT-X-TARGETDURATION:{max(1, math.ceil(duration_s))}\n"
        "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n"
        f"#EXTINF:{duration_s:.3f},\nsubtitles.vtt\n#EXT-X-ENDLIST\n"
    )


def master_playlist(
    variants: list[Variant], has_subtitles: bool, language: str | None = None
) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if has_subtitles:
        lang = (
            f',LANGUAGE="{language}"' if language and re.fullmatch(r"[a-z]{2,3}", language) else ""
        )
        lines.append(
            '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="Captions"'
            f'{lang},DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,URI="{SUBTITLES_DIR}/{VARIANT}"'
        )
    for v in variants:
        attributes = (
            f"BANDWIDTH={v.bandwidth},AVERAGE-BANDWIDTH={v.average_bandwidth},"
            f'RESOLUTION={v.width}x{v.height},CODECS="{v.codecs}",FRAME-RATE={v.frame_rate:.3f}'
        )
        if has_subtitles:
            attributes += ',SUBTITLES="subs"'
        lines += [f"#EXT-X-STREAM-INF:{attributes}", f"{v.quality}/{VARIANT}"]
    return "\n".join(lines) + "\n"
