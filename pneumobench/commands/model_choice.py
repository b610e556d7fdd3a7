"""Which final model a command uses (``predict``, ``export``): the options and their resolution.

Default: the experiment's registered champion (``models:/pneumobench-<experiment>@champion``);
``--model LABEL``, ``--run-id ID`` or ``--registered NAME@ALIAS`` choose another. The model is
rebuilt from the registry (plugins from ``--config`` or ``--plugin``) and its state dict is read
with ``weights_only=True``: nothing from the tracking server is executed.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pneumobench.commands.options import add_store_options
from pneumobench.errors import ModelError

if TYPE_CHECKING:  # torch is imported when a model is chosen, not for `pneumobench --help`
    import torch

    from pneumobench.serving.bundle import ModelSpec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The model-choice and store options shared by predict and export."""
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--model", help="the final model of this label in the experiment")
    choice.add_argument("--run-id", help="the MLflow run of a final model")
    choice.add_argument(
        "--registered",
        metavar="NAME@ALIAS",
        help="a registered version: NAME@ALIAS or NAME/VERSION (default: the experiment's champion)",
    )
    add_store_options(parser)
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="FILE_OR_MODULE",
        help="a model plugin to load (repeatable; the config's plugins load with --config)",
    )


@dataclass
class ChosenModel:
    """A final model rebuilt on CPU, its spec, its run, and how it was chosen."""

    model: torch.nn.Module
    spec: ModelSpec
    run_id: str
    chosen: str
    parity_images: object  # (N, S, S) uint8 real test images stored with the bundle


def choose(args: argparse.Namespace) -> ChosenModel:
    """Resolve the options to a model run and rebuild its final model."""
    from pneumobench.commands.store import resolve_store
    from pneumobench.registry.plugins import load_plugins
    from pneumobench.serving.bundle import load_bundle, parity_images
    from pneumobench.tracking import models as tracked
    from pneumobench.tracking.store import require_local_store

    store = resolve_store(args, needs_name=not (args.run_id or args.registered))
    name, uri = store.name, store.uri
    if store.config is not None:  # the experiment's own models rebuild from the same registry
        load_plugins(store.config.plugins, store.config.base_dir)
    load_plugins(list(args.plugin))
    require_local_store(uri)
    tracked.connect(uri)
    run_id, chosen = tracked.resolve_model_run(
        name or "", label=args.model, run_id=args.run_id, registered=args.registered
    )
    with tempfile.TemporaryDirectory(prefix="pneumobench-model-") as tmp:
        folder = tracked.download_serving(run_id, Path(tmp))
        try:
            model, spec = load_bundle(folder)
        except ModelError as exc:
            if "unknown model" in str(exc):
                raise ModelError(
                    f"{exc}\nThis model was registered by a plugin; load it with --config (its "
                    "plugins: key) or --plugin FILE"
                ) from None
            raise
        images = parity_images(folder)
    return ChosenModel(model, spec, run_id, chosen, images)
