"""``pneumobench data fetch pneumoniamnist|kermany`` and ``pneumobench data check CONFIG|PATH``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich.console import Console

from pneumobench.errors import ConfigError

EXIT_CLEAN, EXIT_PROBLEMS = 0, 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``data`` and its two actions."""
    data = sub.add_parser("data", help="fetch a published dataset, or check a dataset")
    actions = data.add_subparsers(dest="data_command", required=True)
    fetch = actions.add_parser(
        "fetch", help="download (resumable, checksum verified) and unpack a published dataset"
    )
    fetch.add_argument("dataset", choices=("pneumoniamnist", "kermany"))
    fetch.add_argument(
        "--size",
        type=int,
        default=28,
        choices=(28, 64, 128, 224),
        help="pneumoniamnist: the MedMNIST+ image size (default 28)",
    )
    fetch.add_argument(
        "--root",
        type=Path,
        default=None,
        help="folder to fetch into (default: $PNEUMOBENCH_DATA_ROOT, else the current folder)",
    )
    fetch.add_argument(
        "--mirror",
        default=None,
        help="base URL serving the same file names (default: $PNEUMOBENCH_MIRROR, else the "
        "publisher's URL)",
    )
    check = actions.add_parser(
        "check", help="counts, patients, sizes, unreadable files and leaks; trains nothing"
    )
    check.add_argument(
        "target", type=Path, help="an experiment YAML, a Kermany-layout folder, or a MedMNIST .npz"
    )
    check.add_argument("--format", choices=("table", "json"), default="table")


LEAKS_CSV = "data-check-leaks.csv"  # written to the current folder when leaks are found


def main(args: argparse.Namespace, console: Console) -> int:
    """Run ``data fetch`` or ``data check``; the exit code."""
    if args.data_command == "fetch":
        return _fetch(args, console)
    return _check(args, console)


def _fetch(args: argparse.Namespace, console: Console) -> int:
    from pneumobench.config import DATA_ROOT_ENV
    from pneumobench.data.fetch.kermany import fetch_kermany
    from pneumobench.data.fetch.medmnist import fetch_pneumoniamnist

    root = args.root or Path(os.environ.get(DATA_ROOT_ENV) or ".")
    root = root.expanduser().resolve()
    if args.dataset == "pneumoniamnist":
        path = fetch_pneumoniamnist(root, args.size, mirror=args.mirror)
        point = f"data.path: {path.name}" + (
            f" (or data.medmnist_size: {args.size})" if args.size != 28 else ""
        )
    else:
        path = fetch_kermany(root, mirror=args.mirror)
        point = f"source: folder, data.path: {path.name}"
    console.print(f"[bold]{path}[/] ready. Configs find it with {DATA_ROOT_ENV}={root} and {point}")
    return 0


def _check(args: argparse.Namespace, console: Console) -> int:
    from pneumobench.data.check import check_path, render

    target: Path = args.target
    source = None
    if target.suffix.lower() in (".yaml", ".yml"):
        from pneumobench.config import load_config

        config = load_config(target)
        target, source = config.data_path(), config.data.source
        if source == "medmnist":  # what a run reads, fetched as a run would fetch it
            from pneumobench.data.sources.medmnist import fetch_missing, medmnist_file

            target = medmnist_file(target, config.data.medmnist_size)
            if not target.is_file() and config.data.download == "auto":
                fetch_missing(target)
    elif not target.exists():
        raise ConfigError(f"{target}: no such file or folder (give a config, a folder or an .npz)")
    check = check_path(target, source)
    if args.format == "json":
        print(check.to_json())
    else:
        leaks_csv = None
        if check.leaks.found:
            leaks_csv = Path(LEAKS_CSV).resolve()
            leaks_csv.write_text(check.leaks.to_csv())
        for line in render(check, leaks_csv):
            console.print(line)
    return EXIT_PROBLEMS if check.problems else EXIT_CLEAN
