"""Narrate stage + storyboard timing with the real engines and a real local store."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.stages.narrate import timing
from pipeline.stages.narrate.stage import (
    NarrationError,
    NarrationOptions,
    Narrator,
    narrate_script,
)
from pipeline.stages.script import parse_script
from pipeline.stages.storyboard_planner import build_storyboard
from t2m.storage.local import LocalStorage

SCRIPT = b"""# Welcome
T2M turns your text into a video. Every scene is read aloud.

[silent]
This card is not spoken.

[narration: The voice says this instead.]
What the card shows.
"""


@pytest.fixture
def store(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "store", fsync=False)


async def _keys(store: LocalStorage) -> list[str]:
    return sorted([o.key async for o in store.list("tts/")])


async def test_spoken_scenes_last_their_speech_and_reuse_the_cache(store) -> None:
    script = parse_script(SCRIPT)
    plan = await narrate_script(script, NarrationOptions(), Narrator(store))
    assert [s.source_index for s in plan.scenes] == [0, 2]
    assert [c.sentence for c in plan.scenes[0].clips] == [
        "Welcome T2M turns your text into a video.",
        "Every scene is read aloud.",
    ]
    assert plan.synthesized == 3 and plan.reused == 0
    keys = await _keys(store)
    assert len(keys) == 6  # a WAV and its words per sentence

    again = await narrate_script(script, NarrationOptions(), Narrator(store))
    assert again.synthesized == 0 and again.reused == 3
    assert await _keys(store) == keys
    assert again.to_dict() == plan.to_dict()

    board = build_storyboard(script, quality="480p", speech=plan)
    first = [s for s in board.scenes if s.source_index == 0]
    first_s = sum(s.slot_frames for s in first) / board.fps
    durations = [c.duration_s for c in plan.scenes[0].clips]
    assert first_s == pytest.approx(timing.scene_seconds(durations), abs=0.05)
    clips = board.narration
    assert [c.source_index for c in clips] == [0, 0, 2]
    for clip in clips:  # every sentence inside its own scene's cards
        cards = [s for s in board.scenes if s.source_index == clip.source_index]
        start = cards[0].start_frame / board.fps
        end = (cards[-1].start_frame + cards[-1].slot_frames) / board.fps
        assert start < clip.start_s and clip.end_s <= end + 1e-6
    starts = [c.start_s for c in clips]
    assert starts == sorted(starts)
    silent = next(s for s in board.scenes if s.source_index == 1)
    assert silent.slot_frames / board.fps >= 2.5  # reading speed, as before


async def test_a_short_duration_speeds_the_voice_up(store) -> None:
    # piper's durations vary by a few per cent from one synthesis to the next
    # (its duration predictor is sampled): 3.9 s sits between this sentence at
    # 1.25x (about 3.7 s with its pauses) and at 1x (about 4.1 s).
    text = b"[duration: 3.9s]\nThe quick brown fox jumps over the lazy dog near the river."
    script = parse_script(text)
    normal = await narrate_script(
        parse_script(text.split(b"\n", 1)[1]), NarrationOptions(), Narrator(store)
    )
    fitted = await narrate_script(script, NarrationOptions(), Narrator(store))
    speech = fitted.scenes[0]
    assert 1.0 < speech.rate <= timing.MAX_SPEEDUP
    assert speech.speech_s < normal.scenes[0].speech_s
    board = build_storyboard(script, quality="480p", speech=fitted)
    assert board.duration_s == pytest.approx(3.9, abs=0.05)
    assert board.narration[-1].end_s <= board.duration_s


async def test_a_duration_too_short_for_the_speech_names_the_scene(store) -> None:
    script = parse_script(
        b"Fine.\n\n[duration: 1s]\nThis sentence is far too long to be spoken in one second."
    )
    with pytest.raises(NarrationError, match="scene 2"):
        await narrate_script(script, NarrationOptions(), Narrator(store))


async def test_a_target_duration_scales_the_pauses(store) -> None:
    script = parse_script(b"First scene speaks.\n\nSecond scene speaks too.")
    plan = await narrate_script(script, NarrationOptions(target_duration=9), Narrator(store))
    board = build_storyboard(script, quality="480p", target_duration=9, speech=plan)
    assert board.duration_s == pytest.approx(9, abs=0.1)
    assert not board.warnings
    short = await narrate_script(script, NarrationOptions(target_duration=1), Narrator(store))
    assert short.notes  # cannot: said so
    board = build_storyboard(script, quality="480p", target_duration=1, speech=short)
    assert board.warnings and board.duration_s > 1


async def test_narration_none_and_unknown_voices(store) -> None:
    script = parse_script(b"Hello there.")
    assert (
        await narrate_script(script, NarrationOptions(mode="none"), Narrator(store))
    ).scenes == ()
    with pytest.raises(NarrationError, match="en-us-joe"):
        await narrate_script(script, NarrationOptions(voice="nobody"), Narrator(store))
    other = parse_script(b"Bonjour tout le monde, ceci est un test.")
    plan = await narrate_script(other, NarrationOptions(), Narrator(store))
    assert plan.scenes[0].voice == "espeak-fr"
