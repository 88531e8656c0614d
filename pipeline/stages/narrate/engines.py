"""One engine instance per kind in a worker process, started lazily."""

from __future__ import annotations

import threading

from pipeline.stages.narrate import MAX_RATE, MIN_RATE, Engine, Synthesis, SynthesisError
from pipeline.stages.narrate.voices import Voice, get_voice

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def engine_for(voice: Voice) -> Engine:
    key = f"{voice.engine}:{voice.engine_voice}" if voice.engine == "piper" else voice.engine
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            if voice.engine == "piper":
                from pipeline.stages.narrate.piper_engine import PiperEngine

                engine = PiperEngine(voice.engine_voice)
            elif voice.engine == "espeak-ng":
                from pipeline.stages.narrate.espeak_engine import EspeakEngine

                engine = EspeakEngine()
            else:
                raise SynthesisError(f"no engine {voice.engine!r}")
            _engines[key] = engine
        return engine


def synthesize(text: str, voice: str, rate: float = 1.0) -> Synthesis:
    """The engine interface: ``text`` spoken by voice id ``voice`` at ``rate``."""
    if not MIN_RATE <= rate <= MAX_RATE:
        raise SynthesisError(f"speech rate {rate:g} is outside {MIN_RATE:g}-{MAX_RATE:g}")
    chosen = get_voice(voice)
    return engine_for(chosen).synthesize(text, chosen.engine_voice, rate)


def stop_all() -> None:
    """Kill every engine child now (cancel); the next job starts them again."""
    with _lock:
        engines = list(_engines.values())
    for engine in engines:
        engine.close()


def reopen_all() -> None:
    with _lock:
        engines = list(_engines.values())
    for engine in engines:
        reopen = getattr(engine, "reopen", None)
        if reopen is not None:
            reopen()
