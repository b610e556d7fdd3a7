"""``pneumobench export --format onnx|torchscript --out FILE``: a final model for deployment."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from pneumobench.commands import model_choice


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``export`` and its options."""
    from pneumobench.serving.formats import FORMATS

    parser = sub.add_parser(
        "export", help="a final model as ONNX or TorchScript, checked against PyTorch"
    )
    parser.add_argument("--format", choices=FORMATS, required=True)
    parser.add_argument("--out", type=Path, required=True, help="e.g. champion.onnx")
    parser.add_argument(
        "--no-log", action="store_true", help="do not attach the file to the model's MLflow run"
    )
    model_choice.add_arguments(parser)


def main(args: argparse.Namespace, console: Console) -> int:
    """Export, check parity on the real test images stored with the model, log the file."""
    from pneumobench.serving.export import PARITY_TOLERANCE, export
    from pneumobench.tracking.models import log_export

    chosen = model_choice.choose(args)
    spec = chosen.spec
    difference = export(chosen.model, chosen.parity_images, args.format, args.out, spec)
    console.print(
        f"[bold]{args.out}[/]: {spec.label} ({chosen.chosen}) as {args.format}; input 'images' "
        f"(N, 1, {spec.image_size}, {spec.image_size}) float32 in [0, 1], output class logits "
        f"({', '.join(spec.class_names)}); pneumonia when 1 - P(normal) >= "
        f"{spec.threshold:.4f} (the '{spec.decision_point}' operating point, chosen on validation)"
        + ("; the file's metadata says how to preprocess" if args.format == "onnx" else "")
    )
    console.print(
        f"parity on {len(chosen.parity_images)} real test images: largest absolute probability "
        f"difference {difference:.2e} (< {PARITY_TOLERANCE:g})"
    )
    if not args.no_log:
        log_export(chosen.run_id, args.out, args.format, difference)
        console.print(f"logged to run {chosen.run_id} (export/{args.out.name})")
    return 0
