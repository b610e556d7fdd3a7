"""``pneumobench models [PATTERN]``: what the registry holds (plugins included)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``models`` and its options."""
    models = sub.add_parser("models", help="list the registry (plugins included)")
    models.add_argument(
        "pattern",
        nargs="?",
        default="*",
        help="wildcard, e.g. 'resnet*'; 'xrv:*' for torchxrayvision",
    )
    models.add_argument("--params", action="store_true", help="build each to count parameters")
    models.add_argument(
        "--config", type=Path, default=None, help="also load this config's plugins: entries"
    )
    return models


def main(args: argparse.Namespace, console: Console) -> int:
    """Print the matching entries; 1 when none matches."""
    from rich.table import Table

    from pneumobench.registry import create_model, get_architecture, list_models

    if args.config:
        from pneumobench.config.loading import load_config
        from pneumobench.registry.plugins import load_plugins

        config = load_config(args.config)
        load_plugins(config.plugins, config.base_dir)
    names = list_models(args.pattern)
    if args.pattern.startswith("xrv:"):
        import fnmatch

        from pneumobench.registry.xrv_models import weight_names

        names += [f"xrv:{w}" for w in weight_names() if fnmatch.fnmatch(f"xrv:{w}", args.pattern)]
    if not names:
        _nothing_matches(args.pattern, list_models())
        return 1
    table = Table(
        title="pneumobench registry",
        caption="plus any timm model as timm:<name>, any torchvision model as tv:<name>, "
        "torchxrayvision's chest X-ray models as xrv:<weights> (`pneumobench models 'xrv:*'`)",
    )
    for column in ("name", "family", "source", "pretrained by default", "description", "origin"):
        table.add_column(column)
    if args.params:
        table.add_column("params (M)", justify="right")
    for name in names:
        arch = get_architecture(name)
        cells = [
            name,
            arch.family,
            arch.source,
            "yes" if arch.default_pretrained else "no",
            arch.description,
            arch.origin,
        ]
        if args.params:
            model = create_model(name, 2, pretrained=False, image_size=224)
            cells.append(f"{model.num_params / 1e6:.2f}")
        table.add_row(*cells)
    console.print(table)
    return 0


def _nothing_matches(pattern: str, known: list[str]) -> None:
    from pneumobench.text import close_matches

    close = close_matches(pattern.strip("*"), known, cutoff=0.5)
    Console(stderr=True, highlight=False).print(
        f"[yellow]no registry entry matches '{pattern}'[/]"
        + (f"; close: {', '.join(close)}" if close else "")
        + ". `pneumobench models` lists them all; any timm model is 'timm:<name>', any "
        "torchvision model 'tv:<name>'."
    )
