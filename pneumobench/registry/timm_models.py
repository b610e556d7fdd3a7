"""timm backbones: a curated set by name, and any other timm model as ``timm:<name>``."""

from __future__ import annotations

import os
from functools import partial

from pneumobench.errors import ModelError
from pneumobench.registry.table import (
    Architecture,
    Backbone,
    library_architecture,
    register_model,
    register_prefix,
)
from pneumobench.registry.weights import weights_unavailable

CURATED = {
    "resnet18": "resnet",
    "resnet34": "resnet",
    "resnet50": "resnet",
    "densenet121": "densenet",
    "efficientnet_b0": "efficientnet",
    "mobilenetv3_large_100": "mobilenet",
    "convnext_tiny": "convnext",
    "vit_tiny_patch16_224": "vit",
}


def build_timm(timm_name: str, pretrained: bool | str, in_chans: int, image_size: int) -> Backbone:
    """A timm model without classifier (``num_classes=0``), ``in_chans`` adapted by timm."""
    import timm

    full_name = f"{timm_name}.{pretrained}" if isinstance(pretrained, str) else timm_name
    kwargs: dict = {"num_classes": 0, "in_chans": in_chans}
    if "vit" in timm_name or "deit" in timm_name:
        kwargs["img_size"] = image_size  # position embeddings are resampled to the image size
    if pretrained:
        _offline_unless_hub_reachable()
    try:
        module = timm.create_model(full_name, pretrained=bool(pretrained), **kwargs)
    except (OSError, RuntimeError, ValueError) as exc:
        if not pretrained or ("pretrained" in str(exc).lower() and "unknown" in str(exc).lower()):
            raise ModelError(f"timm cannot build '{full_name}': {exc}") from None
        hf_home = os.environ.get("HF_HOME", "~/.cache/huggingface")
        raise weights_unavailable(
            f"timm:{timm_name}",
            f"timm pretrained weights '{full_name}' from the Hugging Face Hub",
            exc,
            f"the Hugging Face cache (HF_HOME={hf_home}), e.g. with `huggingface-cli download "
            f"timm/<tag>` on a connected machine",
        ) from None
    cfg = getattr(module, "pretrained_cfg", {}) or {}
    source = "none"
    if pretrained:
        source = f"timm:{cfg.get('hf_hub_id') or cfg.get('architecture', timm_name)}"
        if cfg.get("tag"):
            source = f"timm:{cfg['architecture']}.{cfg['tag']}"
    return Backbone(
        module,
        num_features=module.num_features,
        mean=tuple(cfg.get("mean", (0.5,))),
        std=tuple(cfg.get("std", (0.5,))),
        pretrained_source=source,
    )


_hub_reachable: dict[tuple[str, int], bool] = {}  # probed once per endpoint and process


def _offline_unless_hub_reachable(timeout: float = 3.0) -> None:
    """An unreachable Hugging Face Hub costs about a minute of retries per model: probe it once
    (a TCP connect, seconds at most) and, if it cannot be reached, let huggingface_hub answer
    from its local cache alone, so missing weights fail at once with pneumobench's message."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or constants.ENDPOINT)
    where = (
        endpoint.hostname or "huggingface.co",
        endpoint.port or (443 if endpoint.scheme == "https" else 80),
    )
    if where not in _hub_reachable:
        try:
            socket.create_connection(where, timeout).close()
            _hub_reachable[where] = True
        except OSError:
            _hub_reachable[where] = False
    if not _hub_reachable[where]:
        constants.HF_HUB_OFFLINE = True


def _curated(name: str, family: str) -> None:
    register_model(name, family=family, source="timm", pretrained=True, description=f"timm {name}")(
        partial(build_timm, name)
    )


for _name, _family in CURATED.items():
    _curated(_name, _family)


def _resolve(name: str) -> Architecture:
    import timm

    return library_architecture(
        "timm",
        name,
        timm.is_model(name.split(".")[0]),
        timm.list_models,
        partial(build_timm, name),
    )


register_prefix("timm", _resolve)
