"""``pneumobench report``: one self-contained HTML (or Markdown) file of an experiment."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from pneumobench.commands.options import add_metric_option, add_store_options
from pneumobench.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``report`` and its options."""
    report = sub.add_parser(
        "report", help="one self-contained HTML (or Markdown) report of an experiment"
    )
    report.add_argument(
        "--out", type=Path, default=Path("report.html"), help="report.html, or a .md file"
    )
    add_metric_option(report)
    add_store_options(report, storage=True, resample=True)
    report.add_argument(
        "--no-log", action="store_true", help="do not attach the report to MLflow's summary run"
    )
    return report


def main(args: argparse.Namespace, console: Console) -> int:
    """Write the report (and attach it to MLflow); 1 when no model is evaluated."""
    from pneumobench.commands.leaderboard import nothing_evaluated
    from pneumobench.commands.store import resolve_store
    from pneumobench.report.document import build_report, log_to_mlflow
    from pneumobench.report.leaderboard import normalize_metric
    from pneumobench.report.writers import write_report

    normalize_metric(args.metric)
    if args.out.suffix.lower() not in (".html", ".htm", ".md"):
        raise ConfigError(f"--out {args.out}: name an .html or a .md file")
    store = resolve_store(args, needs_storage=True)
    subgroups = store.config.subgroups_path() if store.config else None
    report = build_report(
        store.name, store.uri, store.storage, args.metric, store.evaluation, subgroups
    )
    if not report.models:
        nothing_evaluated(store.name or "", [])
        return 1
    paths = write_report(report, args.out)
    console.print(
        f"report: [bold]{args.out}[/] ({report.n_figures} figures, {len(report.models)} models)"
    )
    for note in report.notes:
        console.print(f"  [dim]{note}[/]")
    if not args.no_log:
        run_id = log_to_mlflow(report, paths)
        console.print(f"  attached to MLflow run 'summary' ({run_id}) of experiment {store.name}")
    return 0
