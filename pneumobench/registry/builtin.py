"""pneumobench's own model families, registered once, before any plugin can take their names."""

from __future__ import annotations

_loaded = False


def ensure_builtins() -> None:
    """Import the built-in families (custom CNNs, timm, torchvision, torchxrayvision) once."""
    global _loaded
    if not _loaded:
        _loaded = True
        from pneumobench.registry import (  # noqa: F401 (registering is the point)
            custom,
            timm_models,
            torchvision_models,
            xrv_models,
        )
