"""The registry's table: name -> builder, in the spirit of timm's ``_registry.py`` (a leaf).

An entry's builder returns a :class:`Backbone` (a module mapping images to a feature vector, plus
what the protocol needs to know about it); ``factory.create_model`` puts the one shared head on
top. This module imports nothing of the families, the factory or the plugins: they import it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pneumobench.errors import ModelError
from pneumobench.text import close_matches

if TYPE_CHECKING:
    from torch import nn

# Builders get (pretrained, in_chans, image_size): pretrained is False, True (the entry's default
# weights) or a weights tag understood by the entry's source (timm tag, torchvision enum name).
Builder = Callable[[bool | str, int, int], "Backbone"]

PREFIXES = {"timm": "timm", "tv": "torchvision", "xrv": "torchxrayvision"}


@dataclass
class Backbone:
    """What a builder returns: the feature extractor and what the protocol must know about it."""

    module: nn.Module  # (B, in_chans, H, W) -> (B, num_features)
    num_features: int = 0  # measured by create_model with a dummy forward pass
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)
    pretrained_source: str = "none"


@dataclass(frozen=True)
class Architecture:
    """One registry entry: a name, its family, where it comes from, and its builder."""

    name: str
    family: str
    source: str  # custom | plugin | timm | torchvision | torchxrayvision
    builder: Builder = field(repr=False)
    default_pretrained: bool = False
    description: str = ""
    origin: str = "pneumobench"  # where the entry was registered: pneumobench, or the plugin


_REGISTRY: dict[str, Architecture] = {}
_dynamic: dict[str, Callable[[str], Architecture]] = {}
_origins: list[str] = []  # the plugin being imported right now (innermost last)


def current_origin() -> str | None:
    """Where the entries being registered right now come from (None: pneumobench itself)."""
    return _origins[-1] if _origins else None


@contextlib.contextmanager
def registering_from(origin: str) -> Iterator[list[str]]:
    """Entries registered inside are tagged with ``origin`` (the list's last item: a plugin may
    refine it once it knows its module's file)."""
    _origins.append(origin)
    try:
        yield _origins
    finally:
        _origins.pop()


def register_model(
    name: str | None = None,
    *,
    family: str,
    source: str = "custom",
    pretrained: bool = False,
    description: str = "",
) -> Callable[[Builder], Builder]:
    """Decorator: ``@register_model(family="cnn")`` registers the builder under its function name.

    The builder contract (README, "Add your own model"): ``builder(pretrained, in_chans,
    image_size) -> Backbone``; ``pretrained`` is False, True (the entry's default weights) or a
    weights tag. ``pretrained=True`` here declares that the builder can load weights (and does by
    default). Inside a plugin, entries are tagged with the plugin's origin and source "plugin".
    """

    def decorator(fn: Builder) -> Builder:
        key = name or fn.__name__
        origin = current_origin()
        if key in _REGISTRY or ":" in key:
            where = f"{fn.__code__.co_filename}:{fn.__code__.co_firstlineno}"
            problem = (
                f"the name is taken by {_REGISTRY[key].origin}"
                if key in _REGISTRY
                else "':' is reserved for library prefixes (timm:, tv:, xrv:)"
            )
            raise ValueError(
                f"model '{key}' (builder at {where}) cannot be registered: {problem}. Rename the "
                f"builder, or give it another name: @register_model('my_{key.split(':')[-1]}', ...)"
            )
        summary = description or next(iter((fn.__doc__ or "").strip().splitlines()), "")
        _REGISTRY[key] = Architecture(
            name=key,
            family=family,
            source="plugin" if origin and source == "custom" else source,
            builder=fn,
            default_pretrained=pretrained,
            description=summary,
            origin=origin or "pneumobench",
        )
        return fn

    return decorator


def registered_names() -> list[str]:
    """Every registered name, without loading anything."""
    return list(_REGISTRY)


def unregister(names: set[str]) -> None:
    """Remove entries (those of a plugin that failed half-way)."""
    for key in names:
        _REGISTRY.pop(key, None)


def entries() -> dict[str, Architecture]:
    """The table as it is (built-ins may not be loaded yet: ``factory`` loads them)."""
    return _REGISTRY


def resolver(prefix: str) -> Callable[[str], Architecture] | None:
    """The on-demand resolver of ``prefix:`` names (``timm``, ``tv``, ``xrv``), if registered."""
    return _dynamic.get(prefix)


def register_prefix(prefix: str, resolver: Callable[[str], Architecture]) -> None:
    """``timm:<name>`` and ``tv:<name>`` resolve any model of those libraries on demand."""
    _dynamic[prefix] = resolver


def library_architecture(
    prefix: str, name: str, known: bool, all_names: Callable[[], Iterable[str]], builder: Builder
) -> Architecture:
    """An entry for model ``name`` of a library (``timm:``, ``tv:``), or an error with close
    matches when the library has no such model (``known`` False)."""
    library = PREFIXES[prefix]
    base = name.split(".")[0]
    if not known:
        close = close_matches(base, all_names())
        hint = f" Did you mean: {', '.join(f'{prefix}:{c}' for c in close)}?" if close else ""
        raise ModelError(f"{library} has no model '{base}'.{hint}")
    family = re.match(r"[a-z]+", base)
    return Architecture(
        name=f"{prefix}:{name}",
        family=family.group(0) if family else base,
        source=library,
        builder=builder,
        default_pretrained=True,
        description=f"{library} {name}",
    )
