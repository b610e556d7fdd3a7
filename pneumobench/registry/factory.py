"""The thin door to the registry, as timm's ``_factory.create_model``: find an entry (loading
pneumobench's own families and installed plugin packages first), build it, put the shared head on.
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any

from pneumobench.errors import ModelError
from pneumobench.registry.table import PREFIXES, Architecture, entries, resolver
from pneumobench.text import close_matches

if TYPE_CHECKING:
    from torch import nn


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style wildcard, like ``timm.list_models('resnet*')``."""
    ensure_builtins()
    return sorted(n for n in entries() if fnmatch.fnmatch(n, pattern))


def get_architecture(name: str) -> Architecture:
    """The entry called ``name`` (or ``timm:<name>`` / ``tv:<name>``); unknown names get close
    matches in the error."""
    ensure_builtins()
    if name in entries():
        return entries()[name]
    prefix, sep, rest = name.partition(":")
    resolve = resolver(prefix) if sep else None
    if resolve is not None:
        if not rest:
            raise ModelError(f"'{name}': name the {PREFIXES[prefix]} model after '{prefix}:'")
        return resolve(rest)
    close = close_matches(name, entries(), cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ModelError(
        f"unknown model '{name}'.{hint} Registered: {', '.join(sorted(entries()))}; any timm model "
        "as 'timm:<name>', any torchvision model as 'tv:<name>', torchxrayvision's chest X-ray "
        "models as 'xrv:<weights>' (`pneumobench models` lists them). A model of your own: put "
        "its file under `plugins:` in the config (README, 'Add your own model')."
    )


def check_model_name(name: str) -> None:
    """Fail early (before any training) on names that cannot resolve."""
    get_architecture(name)


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


def ensure_builtins() -> None:
    """pneumobench's own entries first (so a plugin cannot take their names), then every
    installed plugin package (entry-point group ``pneumobench.models``)."""
    from pneumobench.registry.plugins import load_entry_points

    load_entry_points()  # loads the built-in families first (``builtin.ensure_builtins``)
