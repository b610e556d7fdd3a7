"""Tests of pneumobench/text.py."""

from __future__ import annotations

import pytest

from pneumobench.text import command


def test_printed_commands_start_as_the_user_types_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UV_RUN_RECURSION_DEPTH", "1")
    assert command() == "uv run pneumobench"  # a fresh clone: pneumobench is not on the PATH
    monkeypatch.delenv("UV_RUN_RECURSION_DEPTH")
    assert command() == "pneumobench"
