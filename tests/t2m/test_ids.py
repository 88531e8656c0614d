"""Id shape checks: exactly ``prefix_`` and 24 hex digits, nothing around them."""

from __future__ import annotations

import pytest

from t2m.ids import is_id, new_id


def test_new_ids_have_the_shape() -> None:
    value = new_id("file")
    assert is_id(value)
    assert is_id(value, "file")
    assert not is_id(value, "job")


@pytest.mark.parametrize("suffix", ["\n", "\r\n", "\r", " ", "\t", "\x00", "0", "/..", "\u2028"])
def test_anything_after_the_id_is_refused(suffix: str) -> None:
    assert not is_id(new_id("file") + suffix)
    assert not is_id(new_id("file") + suffix, "file")


@pytest.mark.parametrize("prefix", ["\n", " ", "_", "0"])
def test_anything_before_the_id_is_refused(prefix: str) -> None:
    assert not is_id(prefix + new_id("file"))


@pytest.mark.parametrize(
    "value",
    ["", "file_", "FILE_" + "a" * 24, "file_" + "A" * 24, "file_" + "a" * 23, "file_" + "g" * 24],
)
def test_wrong_shapes_are_refused(value: str) -> None:
    assert not is_id(value)
