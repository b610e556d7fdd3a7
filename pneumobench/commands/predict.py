"""``pneumobench predict PATH...``: the champion (or any final model) on new images."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from pneumobench.commands import model_choice
from pneumobench.errors import ConfigError

POINTS = ("spec", "sens", "f1", "acc")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``predict`` and its options."""
    parser = sub.add_parser(
        "predict", help="predict images or folders (JPEG, PNG, DICOM) with a final model"
    )
    parser.add_argument("paths", nargs="+", type=Path, help="image files and folders")
    model_choice.add_arguments(parser)
    parser.add_argument("--out", type=Path, help="write here (default: standard output)")
    parser.add_argument("--format", choices=("csv", "json"), default=None, help="default: by --out")
    parser.add_argument(
        "--operating-point",
        choices=POINTS,
        default=None,
        help="the validation-chosen threshold to decide at: spec (reaches the specificity target; "
        "the default, as the leaderboard's recall), sens (the sensitivity target), f1, acc",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--explain",
        action="store_true",
        help="also write a Grad-CAM overlay per image (explaining its decision) into a folder "
        "beside --out (<out>-saliency/), or ./saliency/",
    )


def main(args: argparse.Namespace, console: Console) -> int:
    """Predict; 0 when every image was predicted, 1 when some could not be read."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from pneumobench.serving.predictor import image_files, predict_files, to_csv, to_json

    fmt = args.format or ("json" if args.out and args.out.suffix.lower() == ".json" else "csv")
    files, missing = image_files(args.paths)
    if not files:
        raise ConfigError(
            "nothing to predict: "
            + (", ".join(r.path for r in missing) + " not found" if missing else "no image files")
            + " (JPEG, PNG or DICOM files, or folders holding them)"
        )
    chosen = model_choice.choose(args)
    spec = chosen.spec
    if args.operating_point:
        spec.decision_point = args.operating_point
    err = Console(stderr=True, highlight=False)
    err.print(
        f"model: [bold]{spec.label}[/] ({chosen.chosen}), run {chosen.run_id}; decision at the "
        f"'{spec.decision_point}' operating point chosen on validation: P(pneumonia) >= "
        f"{spec.threshold:.4f}"
    )
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as progress:
        task = progress.add_task("predict", total=len(files))
        rows = predict_files(
            chosen.model,
            spec,
            files,
            batch_size=args.batch_size,
            advance=lambda n: progress.advance(task, n),
            explain=_explain_folder(args) if args.explain else None,
        )
    rows += missing
    meta = {"label": spec.label, "run_id": chosen.run_id, "chosen": chosen.chosen}
    text = to_csv(rows, spec) if fmt == "csv" else to_json(rows, spec, meta)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    failed = [r for r in rows if r.error]
    counts = {c: sum(r.prediction == c for r in rows) for c in spec.class_names}
    err.print(
        f"{len(rows) - len(failed)} image(s) predicted ("
        + ", ".join(f"{n} {c}" for c, n in counts.items())
        + ")"
        + (f" -> {args.out}" if args.out else "")
    )
    for row in failed:
        err.print(f"  [yellow]not predicted[/]: {row.path}: {row.error}")
    return 1 if failed else 0


def _explain_folder(args: argparse.Namespace) -> Path:
    """Where --explain writes its overlays: beside --out, else ./saliency."""
    if args.out:
        return args.out.with_name(f"{args.out.stem}-saliency")
    return Path("saliency")
