"""JSON text as the API serves it: datetimes in ISO 8601 with ``Z``, text unescaped.

Shared by the responses and the cache engine, so a cached body is byte for
byte what a computed one would be.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any


def dumps_json(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
