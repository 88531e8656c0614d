"""The pagination block of list answers, on both API surfaces and in cached reads."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def pagination(page: int, items_per_page: int, total_items: int) -> dict[str, Any]:
    total_pages = max(1, math.ceil(total_items / items_per_page)) if total_items else 0
    has_next = page < total_pages
    has_previous = page > 1
    return {
        "page": page,
        "items_per_page": items_per_page,
        "total_items": total_items,
        "total_pages": total_pages,
        "has_next": has_next,
        "has_previous": has_previous,
        "next_page": page + 1 if has_next else None,
        "previous_page": page - 1 if has_previous else None,
    }


def page_window(query: Mapping[str, Any]) -> dict[str, int]:
    """The ``limit`` and ``offset`` of the page a validated page query asks for."""
    per_page = int(query["items_per_page"])
    return {"limit": per_page, "offset": (int(query["page"]) - 1) * per_page}


def page_of(items: list[Any], query: Mapping[str, Any], total: int) -> dict[str, Any]:
    """A list answer: the items of the page a page query asked for, and its pagination."""
    return {"items": items, "pagination": pagination(query["page"], query["items_per_page"], total)}
