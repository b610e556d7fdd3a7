"""timm backbones: a curated set by name, and any other timm model as ``timm:<name>``."""

from __future__ import annotations

import os
import re
from functools import partial

from pneumobench.errors import ModelError
from pneumobench.registry.core import Architecture, Backbone, register_model, register_prefix
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
    import timm

    full_name = f"{timm_name}.{pretrained}" if isinstance(pretrained, str) else timm_name
    kwargs: dict = {"num_classes": 0, "in_chans": in_chans}
    if "vit" in timm_name or "deit" in timm_name:
        kwargs["img_size"] = image_size  # position embeddings are resampled to the image size
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


def _curated(name: str, family: str) -> None:
    register_model(name, family=family, source="timm", pretrained=True, description=f"timm {name}")(
        partial(build_timm, name)
    )


for _name, _family in CURATED.items():
    _curated(_name, _family)


def _resolve(name: str) -> Architecture:
    import timm

    base = name.split(".")[0]
    if not timm.is_model(base):
        import difflib

        close = difflib.get_close_matches(base, timm.list_models(), n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join('timm:' + c for c in close)}?" if close else ""
        raise ModelError(
            f"timm has no model '{base}'.{hint} `timm.list_models('*pattern*')` lists them."
        )
    family = re.match(r"[a-z]+", base)
    return Architecture(
        name=f"timm:{name}",
        family=family.group(0) if family else base,
        source="timm",
        builder=partial(build_timm, name),
        default_pretrained=True,
        description=f"timm {name}",
    )


register_prefix("timm", _resolve)
