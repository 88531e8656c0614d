"""Scripts given as data (``"scenes": [...]``) and the narration checks at submission.

A scenes list is turned into the same text script the parser reads, so it
is validated by the same rules with the same messages (each prefixed with
its scene number).  The narration checks use the voice registry and an
estimate of speech length only: the web process loads no speech engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from db import files as file_rows
from pipeline.stages.narrate import timing
from pipeline.stages.narrate.recording import recording_problem
from pipeline.stages.narrate.voices import voice_ids
from pipeline.stages.script import Script, ScriptError, parse_script
from t2m.errors import ValidationFailed
from t2m.ids import is_id


def _escape(line: str) -> str:
    stripped = line.strip()
    return "\\" + stripped if stripped.startswith(("[", "#")) else stripped


def scene_block(scene: Mapping[str, Any]) -> str:
    lines: list[str] = []
    if scene.get("duration") is not None:
        lines.append(f"[duration: {float(scene['duration']):g}s]")
    if scene.get("background"):
        lines.append(f"[background: {scene['background']}]")
    if scene.get("transition"):
        lines.append(f"[transition: {scene['transition']}]")
    if scene.get("voice"):
        lines.append(f"[voice: {scene['voice']}]")
    narration = scene.get("narration")
    if narration is not None:
        text = " ".join(str(narration).split())
        lines.append(f"[narration: {text}]" if text else "[silent]")
    # Blank lines would start a new scene: inside one scene they are line breaks.
    lines.extend(_escape(line) for line in str(scene.get("text", "")).splitlines() if line.strip())
    return "\n".join(lines)


def scenes_to_script(scenes: Sequence[Mapping[str, Any]]) -> str:
    blocks = []
    for number, scene in enumerate(scenes, start=1):
        block = scene_block(scene)
        try:
            parse_script(block.encode("utf-8"))
        except ScriptError as exc:
            raise ValidationFailed(
                "Request validation failed", {"scenes": {str(number): [str(exc.message)]}}
            ) from None
        blocks.append(block)
    return "\n\n".join(blocks)


def check_narration(script: Script, params: Mapping[str, Any]) -> None:
    """Unknown voices, and [duration]s that even 1.25x speech cannot meet."""
    if params.get("narration", "auto") == "none":
        return
    known = voice_ids()
    wanted = [("voice", params["voice"])] if params.get("voice") else []
    wanted += [(f"line {s.line_no}", s.voice) for s in script.scenes if s.voice]
    for where, voice in wanted:
        if voice not in known:
            raise ValidationFailed(
                "Request validation failed",
                {"voice": [f"{where}: unknown voice {voice!r}; known: {', '.join(known)}"]},
            )
    rate = float(params.get("speech_rate") or 1.0) * timing.MAX_SPEEDUP
    for number, scene in enumerate(script.scenes, start=1):
        text = scene.spoken_text
        if scene.duration_s is None or not text:
            continue
        # A generous estimate (the fastest allowed speech, the shortest
        # pauses): only a clear misfit is refused here; the narrate stage
        # measures the real speech.
        need = timing.estimate_speech_s(text, rate) * 0.8
        if need > scene.duration_s:
            raise ValidationFailed(
                "Request validation failed",
                {
                    "script": [
                        f"line {scene.line_no}: scene {number} needs about {need:.1f} s of "
                        f"speech even at {timing.MAX_SPEEDUP:g}x, but its duration is "
                        f"{scene.duration_s:g} s"
                    ]
                },
            )


async def check_recordings(conn: asyncpg.Connection, owner_id: str, script: Script) -> None:
    """Every ``[narration: asset:<id>]`` must be the submitter's own audio file
    (or video with sound) within the recording limits, naming the scene."""
    problems: list[str] = []
    for number, scene in script.narration_assets:
        assert scene.recording is not None
        row = (
            await file_rows.visible_file(conn, scene.recording, viewer_id=owner_id, is_admin=False)
            if is_id(scene.recording, "file")
            else None
        )
        problem = (
            "is not one of your files"
            if row is None
            else recording_problem(row["file_type"], row["processing_status"], row["metadata"])
        )
        if problem is None and row is not None and scene.duration_s is not None:
            duration = (row["metadata"] or {}).get("duration")
            need = float(duration or 0) + timing.pauses_s(1, timing.MIN_PAUSE_SCALE)
            if duration is not None and need > scene.duration_s:
                problem = (
                    f"needs {need:.1f} s but the scene's duration is {scene.duration_s:g} s "
                    "(a recording is never sped up)"
                )
        if problem is not None:
            problems.append(
                f"line {scene.line_no}: scene {number}: narration file {scene.recording} {problem}"
            )
    if problems:
        raise ValidationFailed("Request validation failed", {"script": problems})
