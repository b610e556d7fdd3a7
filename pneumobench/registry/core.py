"""The registry itself: a name -> builder table in the spirit of timm's ``register_model``.

An entry's builder returns a :class:`Backbone` (a module mapping images to a feature vector, plus
what the protocol needs to know about it); :func:`create_model` puts the one shared head on top.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
    from pneumobench.registry.plugins import current_origin

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


def register_prefix(prefix: str, resolver: Callable[[str], Architecture]) -> None:
    """``timm:<name>`` and ``tv:<name>`` resolve any model of those libraries on demand."""
    _dynamic[prefix] = resolver


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style wildcard, like ``timm.list_models('resnet*')``."""
    _load_builtin_entries()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def get_architecture(name: str) -> Architecture:
    """The entry called ``name`` (or ``timm:<name>`` / ``tv:<name>``); unknown names get close
    matches in the error."""
    _load_builtin_entries()
    if name in _REGISTRY:
        return _REGISTRY[name]
    prefix, sep, rest = name.partition(":")
    if sep and prefix in _dynamic:
        if not rest:
            raise ModelError(f"'{name}': name the {PREFIXES[prefix]} model after '{prefix}:'")
        return _dynamic[prefix](rest)
    close = close_matches(name, _REGISTRY, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ModelError(
        f"unknown model '{name}'.{hint} Registered: {', '.join(sorted(_REGISTRY))}; any timm model "
        "as 'timm:<name>', any torchvision model as 'tv:<name>', torchxrayvision's chest X-ray "
        "models as 'xrv:<weights>' (`pneumobench models` lists them). A model of your own: put "
        "its file under `plugins:` in the config (README, 'Add your own model')."
    )


def check_model_name(name: str) -> None:
    """Fail early (before any training) on names that cannot resolve."""
    get_architecture(name)


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


def create_model(
    name: str,
    num_classes: int,
    *,
    pretrained: bool | str | None = None,
    dropout: float = 0.0,
    in_chans: int = 1,
    image_size: int = 224,
) -> Any:
    """Build a registry entry with the shared head: ``Classifier(backbone, dropout + linear)``."""
    from pneumobench.registry.classifier import Classifier

    arch = get_architecture(name)
    if pretrained is None:
        pretrained = arch.default_pretrained
    if pretrained and arch.source in ("custom", "plugin") and not arch.default_pretrained:
        raise ModelError(
            f"'{name}' has no pretrained weights (a network trained from scratch, from "
            f"{arch.origin}): set `pretrained: false` for it, or leave `pretrained` out"
        )
    backbone = arch.builder(pretrained, in_chans, image_size)
    backbone.num_features = _probe_features(backbone.module, name, in_chans, image_size)
    return Classifier(
        backbone,
        num_classes=num_classes,
        dropout=dropout,
        registry_name=arch.name,
        family=arch.family,
        in_chans=in_chans,
    )


def _probe_features(module: nn.Module, name: str, in_chans: int, image_size: int) -> int:
    """One dummy forward: the true feature width, and an early, clear error on a too-small image."""
    import torch

    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = module(torch.zeros(1, in_chans, image_size, image_size))
    except RuntimeError as exc:
        raise ModelError(
            f"'{name}' cannot take {image_size}x{image_size} px images: {str(exc).splitlines()[0]}. "
            "Raise data.image_size, or leave this model out."
        ) from None
    finally:
        module.train(was_training)
    if out.ndim != 2:
        raise ModelError(
            f"'{name}' backbone returned shape {tuple(out.shape)}, expected (B, features)"
        )
    return int(out.shape[1])


_loaded = False


def ensure_builtins() -> None:
    """pneumobench's own entries first (so a plugin cannot take their names), then every
    installed plugin package (entry-point group ``pneumobench.models``)."""
    _load_builtin_entries()


def _load_builtin_entries() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        from pneumobench.registry import (  # noqa: F401
            custom,
            timm_models,
            torchvision_models,
            xrv_models,
        )
        from pneumobench.registry.plugins import load_entry_points

        load_entry_points()
