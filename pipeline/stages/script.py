"""Parse a user's text script into scenes.

A script is UTF-8 plain text.  Scenes are separated by one or more blank
lines; every paragraph becomes a scene, so a script written without any
markup works as is.  Line breaks inside a paragraph are kept: the text card
honours them as hard breaks and wraps long lines itself.

Optional markup (all of it degrades to plain text when absent):

``# Title``
    The *first* line of a scene, when it starts with ``#`` followed by a
    space, is the scene's title (drawn larger, above the text).  ``#hashtag``
    without a space is ordinary text.

``[name: value]``
    A line consisting of exactly one bracketed ``name: value`` pair is a
    directive.  Directives may appear anywhere in a scene, one per line:

    ``[duration: 4s]``            the scene's own duration (``4``, ``4.5s``,
                                   ``1500ms``); otherwise it comes from the
                                   reading speed.
    ``[background: #112233]``      a solid colour, or ``#112233 #445566`` for
                                   a two-colour gradient.
    ``[background: asset:ID]``     an uploaded image or video (by file id).
    ``[transition: crossfade]``    how this scene enters: ``crossfade``
                                   (default) or ``cut``.
    ``[music: asset:ID]``          background music for the whole video;
                                   script-wide, may appear once, in any scene.
    ``[voice: ID]``                the voice that speaks this scene (see
                                   ``GET /api/v1/voices``).
    ``[narration: text]``          what the voice says instead of the text.
    ``[narration: asset:ID]``      an uploaded audio file (or a video's sound)
                                   is the scene's narration; the scene's text
                                   is what it says (captions show it).
    ``[silent]``                   this scene is not spoken (also written
                                   ``[silent: yes]``).

    Directive names are case-insensitive.  An unknown name, a bad value or a
    repeated directive in one scene is an error with its line number, so a
    typo never silently turns into on-screen text.  A line that merely looks
    like a directive but should be shown (``[Note: ...]``) is escaped with a
    backslash: ``\\[Note: ...]``; likewise ``\\# not a title``.

Errors raise :class:`ScriptError`; they are permanent (retrying cannot fix
the input).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from t2m.errors import ValidationFailed

DEFAULT_MAX_BYTES = 100 * 1024
DEFAULT_MAX_SCENES = 200
# A scene may pin its own duration; beyond these bounds it is a typo, not a wish.
MIN_SCENE_DURATION_S = 0.5
MAX_SCENE_DURATION_S = 300.0

_DIRECTIVE = re.compile(r"^\[\s*([A-Za-z][\w-]*)\s*:\s*(.*?)\s*\]$")
_FLAG = re.compile(r"^\[\s*(silent)\s*\]$", re.IGNORECASE)
_VOICE_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MAX_NARRATION_CHARS = 5000
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|sec|secs|seconds?)?$", re.IGNORECASE)
_HEX_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_ASSET_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
# Everything Unicode calls a line break becomes "\n" so line numbers agree
# with what an editor shows.
_NEWLINES = re.compile(r"\r\n|[\r\v\f\x85\u2028\u2029]")
_INLINE_SPACE = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
TRANSITIONS = ("crossfade", "cut")


class ScriptError(ValidationFailed):
    """The script cannot be used as given.  Never worth a retry."""

    permanent = True

    def __init__(self, message: str, *, line_no: int | None = None) -> None:
        self.line_no = line_no
        text = f"line {line_no}: {message}" if line_no is not None else message
        super().__init__(text, details={"line": line_no} if line_no is not None else None)


@dataclass(frozen=True)
class Background:
    """A scene's explicit background: ``colors`` (1-2 hex) or an ``asset`` id."""

    kind: str  # "color" | "asset"
    colors: tuple[str, ...] = ()
    asset_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "colors": list(self.colors), "asset_id": self.asset_id}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Background:
        return cls(
            kind=str(data["kind"]),
            colors=tuple(data.get("colors") or ()),
            asset_id=data.get("asset_id"),
        )


@dataclass(frozen=True)
class Scene:
    text: str
    title: str | None = None
    duration_s: float | None = None
    background: Background | None = None
    line_no: int = 1
    transition: str | None = None
    narration: str | None = None  # spoken instead of the text
    silent: bool = False
    voice: str | None = None
    narration_asset: str | None = None  # an uploaded recording speaks the scene

    @property
    def caption_text(self) -> str:
        """The scene's title and text on one line (what a recording of it says)."""
        parts = [self.title] if self.title else []
        if self.text:
            parts.append(self.text)
        return " ".join(" ".join(parts).split())

    @property
    def spoken_text(self) -> str:
        """What the voice synthesizes for this scene ("" when silent or recorded)."""
        if self.silent or self.narration_asset is not None:
            return ""
        if self.narration is not None:
            return self.narration
        return self.caption_text

    @property
    def narrated(self) -> bool:
        return bool(self.spoken_text) or self.recording is not None

    @property
    def recording(self) -> str | None:
        """The file id of the upload speaking this scene, unless it is [silent]."""
        return None if self.silent else self.narration_asset

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "title": self.title,
            "duration_s": self.duration_s,
            "background": self.background.to_dict() if self.background else None,
            "line_no": self.line_no,
            "transition": self.transition,
            "narration": self.narration,
            "silent": self.silent,
            "voice": self.voice,
            "narration_asset": self.narration_asset,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scene:
        bg = data.get("background")
        return cls(
            text=str(data["text"]),
            title=data.get("title"),
            duration_s=data.get("duration_s"),
            background=Background.from_dict(bg) if bg else None,
            line_no=int(data.get("line_no", 1)),
            transition=data.get("transition"),
            narration=data.get("narration"),
            silent=bool(data.get("silent", False)),
            voice=data.get("voice"),
            narration_asset=data.get("narration_asset"),
        )


@dataclass(frozen=True)
class Script:
    scenes: tuple[Scene, ...]
    music_asset_id: str | None = None
    asset_ids: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenes": [s.to_dict() for s in self.scenes],
            "music_asset_id": self.music_asset_id,
            "asset_ids": list(self.asset_ids),
        }

    @property
    def narration_assets(self) -> list[tuple[int, Scene]]:
        """(scene number from 1, scene) of every scene spoken by an upload."""
        return [(n, s) for n, s in enumerate(self.scenes, start=1) if s.recording]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Script:
        return cls(
            scenes=tuple(Scene.from_dict(s) for s in data["scenes"]),
            music_asset_id=data.get("music_asset_id"),
            asset_ids=tuple(data.get("asset_ids") or ()),
        )


def parse_script(
    raw: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_scenes: int = DEFAULT_MAX_SCENES,
) -> Script:
    """Decode, normalise, split and validate a script.  See the module docstring."""
    if len(raw) > max_bytes:
        raise ScriptError(f"script is {len(raw)} bytes; the limit is {max_bytes}")
    text = _decode(raw)
    lines = text.split("\n")
    blocks = _paragraphs(lines)
    scenes: list[Scene] = []
    music: str | None = None
    music_line = 0
    for start, block in blocks:
        scene, block_music = _parse_block(start, block)
        if block_music is not None:
            asset_id, line_no = block_music
            if music is not None:
                raise ScriptError(f"music is already set on line {music_line}", line_no=line_no)
            music, music_line = asset_id, line_no
        if scene is not None:
            scenes.append(scene)
            if len(scenes) > max_scenes:
                raise ScriptError(
                    f"script has more than {max_scenes} scenes", line_no=scene.line_no
                )
    if not scenes:
        raise ScriptError("script has no scenes (it is empty or only directives)")
    asset_ids = sorted(
        {s.background.asset_id for s in scenes if s.background and s.background.asset_id}
        | ({music} if music else set())
    )
    return Script(scenes=tuple(scenes), music_asset_id=music, asset_ids=tuple(asset_ids))


def _decode(raw: bytes) -> str:
    if b"\x00" in raw:
        raise ScriptError("script contains NUL bytes; it looks like a binary file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = raw[: exc.start].count(b"\n") + 1
        raise ScriptError(
            f"script is not valid UTF-8 (byte offset {exc.start})", line_no=bad_line
        ) from None
    text = text.removeprefix("\ufeff")
    text = _NEWLINES.sub("\n", text)
    for line_no, line in enumerate(text.split("\n"), start=1):
        for ch in line:
            # C0/C1 controls other than tab mean a binary or corrupted file;
            # rendering them would only produce tofu.
            if ch != "\t" and unicodedata.category(ch) == "Cc":
                raise ScriptError(
                    f"script contains control character U+{ord(ch):04X}; "
                    "it looks like a binary file",
                    line_no=line_no,
                )
    # NFC so that "e + combining acute" and "é" measure, wrap and compare alike.
    return unicodedata.normalize("NFC", text)


def _paragraphs(lines: list[str]) -> list[tuple[int, list[str]]]:
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = 0
    for line_no, line in enumerate(lines, start=1):
        if line.strip():
            if not current:
                start = line_no
            current.append(line)
        elif current:
            blocks.append((start, current))
            current = []
    if current:
        blocks.append((start, current))
    return blocks


def _parse_block(start: int, block: list[str]) -> tuple[Scene | None, tuple[str, int] | None]:
    title: str | None = None
    duration: float | None = None
    background: Background | None = None
    transition: str | None = None
    music: tuple[str, int] | None = None
    narration: str | None = None
    narration_asset: str | None = None
    silent = False
    voice: str | None = None
    seen: set[str] = set()
    text_lines: list[str] = []
    first_content = True
    for offset, raw_line in enumerate(block):
        line_no = start + offset
        line = _INLINE_SPACE.sub(" ", raw_line).strip()
        if _FLAG.match(line):
            if "silent" in seen:
                raise ScriptError("directive 'silent' is given twice in one scene", line_no=line_no)
            seen.add("silent")
            silent = True
            continue
        match = _DIRECTIVE.match(line)
        if match:
            name, value = match.group(1).lower(), match.group(2)
            if name in seen:
                raise ScriptError(
                    f"directive '{name}' is given twice in one scene", line_no=line_no
                )
            seen.add(name)
            if name == "duration":
                duration = _parse_duration(value, line_no)
            elif name == "background":
                background = _parse_background(value, line_no)
            elif name == "transition":
                transition = _parse_transition(value, line_no)
            elif name == "music":
                music = (_parse_asset_ref(value, line_no, "music"), line_no)
            elif name == "voice":
                voice = _parse_voice(value, line_no)
            elif name == "narration" and value.strip().lower().startswith("asset:"):
                narration_asset = _parse_asset_ref(value, line_no, "narration")
            elif name == "narration":
                narration = _parse_narration(value, line_no)
            elif name == "silent":
                silent = _parse_flag(value, line_no, "silent")
            else:
                raise ScriptError(
                    f"unknown directive '{name}' (known: duration, background, "
                    "transition, music, voice, narration, silent; write \\[ to show a "
                    "bracketed line as text)",
                    line_no=line_no,
                )
            continue
        if first_content and line.startswith("# "):
            title = line[2:].strip() or None
            first_content = False
            continue
        first_content = False
        if line.startswith(("\\[", "\\#")):
            line = line[1:]
        text_lines.append(line)
    text = "\n".join(text_lines).strip()
    if not text and title is None and background is None:
        if (
            duration is not None
            or transition is not None
            or seen & {"voice", "narration", "silent"}
        ):
            raise ScriptError(
                "scene has directives but no text, title or background", line_no=start
            )
        return None, music  # a block holding only script-wide directives
    scene = Scene(
        text=text,
        title=title,
        duration_s=duration,
        background=background,
        line_no=start,
        transition=transition,
        narration=narration,
        silent=silent,
        voice=voice,
        narration_asset=narration_asset,
    )
    return scene, music


def _parse_voice(value: str, line_no: int) -> str:
    voice = value.strip().lower()
    if not _VOICE_ID.match(voice):
        raise ScriptError(f"bad voice id {value!r}", line_no=line_no)
    return voice


def _parse_narration(value: str, line_no: int) -> str:
    text = value.strip()
    if not text:
        raise ScriptError(
            "narration is empty; use [silent] for a scene without voice", line_no=line_no
        )
    if len(text) > MAX_NARRATION_CHARS:
        raise ScriptError(f"narration is over {MAX_NARRATION_CHARS} characters", line_no=line_no)
    return text


def _parse_flag(value: str, line_no: int, name: str) -> bool:
    word = value.strip().lower()
    if word in ("yes", "true", "on", "1"):
        return True
    if word in ("no", "false", "off", "0"):
        return False
    raise ScriptError(
        f"bad {name} value {value!r}; write [{name}] or [{name}: no]", line_no=line_no
    )


def _parse_duration(value: str, line_no: int) -> float:
    match = _DURATION.match(value.strip())
    if not match:
        raise ScriptError(f"bad duration {value!r}; write e.g. 4s, 4.5s or 1500ms", line_no=line_no)
    seconds = float(match.group(1))
    if (match.group(2) or "").lower() == "ms":
        seconds /= 1000.0
    if not MIN_SCENE_DURATION_S <= seconds <= MAX_SCENE_DURATION_S:
        raise ScriptError(
            f"duration {seconds:g}s is outside {MIN_SCENE_DURATION_S:g}-{MAX_SCENE_DURATION_S:g}s",
            line_no=line_no,
        )
    return seconds


def _parse_background(value: str, line_no: int) -> Background:
    value = value.strip()
    if value.lower().startswith("asset:"):
        return Background(kind="asset", asset_id=_parse_asset_ref(value, line_no, "background"))
    colours = value.replace(",", " ").split()
    if not 1 <= len(colours) <= 2 or not all(_HEX_COLOUR.match(c) for c in colours):
        raise ScriptError(
            f"bad background {value!r}; write #RRGGBB, '#RRGGBB #RRGGBB' or asset:<file id>",
            line_no=line_no,
        )
    return Background(kind="color", colors=tuple(normalise_hex(c) for c in colours))


def _parse_transition(value: str, line_no: int) -> str:
    name = value.strip().lower()
    if name not in TRANSITIONS:
        raise ScriptError(
            f"bad transition {value!r}; use one of: {', '.join(TRANSITIONS)}", line_no=line_no
        )
    return name


def _parse_asset_ref(value: str, line_no: int, what: str) -> str:
    value = value.strip()
    if not value.lower().startswith("asset:"):
        raise ScriptError(f"{what} must be asset:<file id>, got {value!r}", line_no=line_no)
    asset_id = value[len("asset:") :].strip()
    if not _ASSET_ID.match(asset_id):
        raise ScriptError(f"bad asset id {asset_id!r}", line_no=line_no)
    return asset_id


def normalise_hex(colour: str) -> str:
    """``#abc`` → ``#AABBCC``; raises ValueError on anything else."""
    if not _HEX_COLOUR.match(colour):
        raise ValueError(f"not a hex colour: {colour!r}")
    digits = colour[1:]
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return "#" + digits.upper()
