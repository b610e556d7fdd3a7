"""Each registry test sees the built-in registry only (plugins are per process otherwise)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    from pneumobench.registry import factory, plugins, table

    factory.ensure_builtins()
    monkeypatch.setattr(table, "_REGISTRY", dict(table._REGISTRY))
    monkeypatch.setattr(plugins, "_loaded", {})
