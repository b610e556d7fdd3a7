"""Chest X-ray-pretrained backbones from torchxrayvision as ``xrv:<weights>``.

``xrv:densenet121-res224-all`` is torchxrayvision's DenseNet-121 trained on eight public chest
X-ray sets, ``xrv:resnet50-res512-all`` its ResNet-50 at 512 px; every weight name of
``torchxrayvision.models.model_urls`` works. Weights load through torchxrayvision's own API
(``DenseNet(weights=...)`` / ``ResNet(weights=...)``): its cache is
``~/.torchxrayvision/models_data/`` (``$PNEUMOBENCH_XRV_CACHE`` chooses another), a missing file
is downloaded from its GitHub release, and offline that fails within seconds (no retries) and
becomes an error naming the model, the cache file and the ways out.

Input scaling is torchxrayvision's own: one grey channel in [-1024, 1024]. The classifier wrapper
normalizes ``(x - mean) / std`` from images in [0, 1], so ``mean = 0.5, std = 1 / 2048`` gives
exactly ``(2x - 1) * 1024``. The backbone is the network up to its pooled features (1024 for the
DenseNet, 2048 for the ResNet); its 18-pathology head is replaced by pneumobench's head. The
images are used at ``data.image_size`` (as for every other backbone); these weights were trained
at 224 px (DenseNets) and 512 px (the ResNet).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING

from pneumobench.errors import ModelError
from pneumobench.registry.table import Architecture, Backbone, register_prefix
from pneumobench.registry.weights import weights_unavailable

if TYPE_CHECKING:  # torch is imported when a model is built, not when the registry is listed
    from torch import nn

CACHE_ENV = "PNEUMOBENCH_XRV_CACHE"
XRV_MEAN, XRV_STD = (0.5,), (1.0 / 2048.0,)


@contextlib.contextmanager
def _quiet_import() -> Iterator[None]:
    """``import torchxrayvision`` switches off every warning of the process; undo that."""
    saved = list(warnings.filters)
    try:
        yield
    finally:
        warnings.filters[:] = saved


def xrv_module():
    """torchxrayvision, imported without its side effect on warnings."""
    with _quiet_import():
        import torchxrayvision

    return torchxrayvision


def cache_dir() -> str:
    """Where torchxrayvision keeps (and looks for) its weight files."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return os.path.join(os.path.expanduser(configured), "")
    return xrv_module().utils.get_cache_dir()


def weight_names() -> list[str]:
    """Every weight name torchxrayvision publishes (DenseNet and ResNet)."""
    urls = xrv_module().models.model_urls
    return sorted(n for n in urls if n.startswith(("densenet", "resnet")))


def weights_file(weights: str) -> str:
    """The cache file torchxrayvision reads for ``weights``."""
    url = xrv_module().models.model_urls[weights]["weights_url"]
    return os.path.join(cache_dir(), os.path.basename(url))


def build_xrv(weights: str, pretrained: bool | str, in_chans: int, image_size: int) -> Backbone:
    """The torchxrayvision network for ``weights`` (pretrained, or the same shape from scratch)."""
    if in_chans != 1:
        raise ModelError(f"xrv:{weights} takes one grey channel (in_chans 1), not {in_chans}")
    if isinstance(pretrained, str):
        raise ModelError(
            f"xrv:{weights}: the weights are named by the model ('xrv:<weights>'); set "
            "`pretrained: true` or `false`"
        )
    from torch import nn

    from pneumobench.registry.xrv_features import DenseNetFeatures

    xrv = xrv_module()
    if pretrained:
        try:
            with _quiet_import():
                if weights.startswith("densenet"):
                    net = xrv.models.DenseNet(weights=weights, cache_dir=cache_dir())
                else:
                    net = xrv.models.ResNet(weights=weights, cache_dir=cache_dir())
        except Exception as exc:  # requests' ConnectionError, a broken file, ...
            raise weights_unavailable(
                f"xrv:{weights}",
                f"torchxrayvision weights '{weights}'",
                exc,
                f"{weights_file(weights)} (${CACHE_ENV} chooses the folder)",
            ) from None
        source = f"torchxrayvision:{weights}"
    else:
        net = _untrained(xrv, weights)
        source = "none"
    if weights.startswith("densenet"):
        module: nn.Module = DenseNetFeatures(net.features)
    else:
        trunk = net.model
        trunk.fc = nn.Identity()
        module = trunk
    return Backbone(module, mean=XRV_MEAN, std=XRV_STD, pretrained_source=source)


def _untrained(xrv, weights: str) -> nn.Module:
    """The same network with random weights (torchxrayvision's ResNet always loads weights)."""
    if weights.startswith("densenet"):
        return xrv.models.DenseNet(weights=None, num_classes=18)
    import torchvision
    from torch import nn

    holder = nn.Module()
    holder.model = torchvision.models.resnet50(weights=None, num_classes=18)
    holder.model.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return holder


def _resolve(weights: str) -> Architecture:
    known = weight_names()
    if weights not in known:
        from pneumobench.text import close_matches

        close = close_matches(weights, known)
        hint = f" Did you mean: {', '.join(f'xrv:{c}' for c in close)}?" if close else ""
        raise ModelError(
            f"torchxrayvision has no weights '{weights}'.{hint} Known: {', '.join(known)}"
        )
    return Architecture(
        name=f"xrv:{weights}",
        family=weights.split("-")[0],
        source="torchxrayvision",
        builder=partial(build_xrv, weights),
        default_pretrained=True,
        description=f"torchxrayvision {weights} (pretrained on chest X-rays)",
    )


register_prefix("xrv", _resolve)
