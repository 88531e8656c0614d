"""The sample scripts the tests render and parse (copies of the product's samples)."""

from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent / "data" / "scripts"
