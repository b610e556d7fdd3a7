"""``pneumobench run | leaderboard | report | models``, and from ``commands/``: ``data``,
``predict``, ``export``, ``promote``. User errors exit with code 2 and no traceback; Ctrl-C exits
130 with the command that resumes; a run with a failed model exits 1."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NamedTuple

from rich.console import Console

from pneumobench import interrupts
from pneumobench.commands import data as data_command
from pneumobench.commands import export as export_command
from pneumobench.commands import predict as predict_command
from pneumobench.commands import promote as promote_command
from pneumobench.errors import ConfigError, PneumobenchError
from pneumobench.tracking.store import absolute_sqlite

DEFAULT_CONFIG = "experiments.yaml"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pneumobench",
        description="Benchmark pneumonia classifiers on chest X-rays: registry -> one protocol -> "
        "Optuna -> MLflow -> leaderboard.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run(sub)
    _add_leaderboard(sub)
    _add_report(sub)
    data_command.add_parser(sub)
    predict_command.add_parser(sub)
    export_command.add_parser(sub)
    promote_command.add_parser(sub)
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
    return parser


def _resamples(text: str) -> int:
    """A bootstrap resample count: an integer of at least 100."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 100:
        raise argparse.ArgumentTypeError(f"{value}: use at least 100 resamples")
    return value


def _add_run(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="search and evaluate every model of a config")
    run.add_argument("config", type=Path, help="experiment YAML, e.g. experiments.yaml")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set protocol.max_epochs=3 (repeatable)",
    )
    run.add_argument("--models", help="comma-separated labels or names to run (default: all)")
    run.add_argument("--tracking-uri", help="MLflow tracking URI (overrides tracking.uri)")
    run.add_argument("--storage", help="Optuna storage URL (overrides search.storage)")
    run.add_argument("--device", help="auto | cpu | cuda | cuda:N (overrides device)")
    run.add_argument(
        "--force",
        action="store_true",
        help="evaluate on test again even if a final evaluation is logged",
    )


def _add_leaderboard(sub: argparse._SubParsersAction) -> None:
    from pneumobench.benchmark.leaderboard import FORMATS

    board = sub.add_parser("leaderboard", help="rank the evaluated models of an experiment")
    board.add_argument("--experiment", help="MLflow experiment (default: name in experiments.yaml)")
    board.add_argument(
        "--metric",
        default="recall",
        help="recall (at the validation-chosen specificity), specificity or precision (at the "
        "validation-chosen sensitivity), f1 or accuracy (at their best validation threshold), "
        "roc_auc, pr_auc (with or without test_)",
    )
    board.add_argument("--format", default="table", choices=FORMATS)
    board.add_argument("--tracking-uri", help="MLflow tracking URI (default: the config's)")
    board.add_argument(
        "--resamples",
        type=_resamples,
        default=None,
        help="bootstrap resamples of the intervals and paired comparisons (default: the "
        "config's evaluation.bootstrap_resamples, else 2000; at least 100)",
    )
    board.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"read experiment name and tracking URI from it (default: {DEFAULT_CONFIG})",
    )


def _add_report(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser(
        "report", help="one self-contained HTML (or Markdown) report of an experiment"
    )
    report.add_argument(
        "--experiment", help="MLflow experiment (default: name in experiments.yaml)"
    )
    report.add_argument(
        "--out", type=Path, default=Path("report.html"), help="report.html, or a .md file"
    )
    report.add_argument("--metric", default="recall", help="ranking metric (as for leaderboard)")
    report.add_argument("--tracking-uri", help="MLflow tracking URI (default: the config's)")
    report.add_argument("--storage", help="Optuna storage URL (default: the config's)")
    report.add_argument("--config", type=Path, default=None, help="read names and URIs from it")
    report.add_argument(
        "--resamples",
        type=_resamples,
        default=None,
        help="bootstrap resamples (default: as for leaderboard; at least 100)",
    )
    report.add_argument(
        "--no-log", action="store_true", help="do not attach the report to MLflow's summary run"
    )


def main(argv: list[str] | None = None) -> int:
    """The ``pneumobench`` command; its exit code."""
    args = _parser().parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # runs must work with no network
    # An unreachable tracking server is reported in seconds, not after minutes of retries.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # we say where to look
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    _quiet_libraries()
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
    err = Console(stderr=True, highlight=False)
    try:
        if args.command == "run":
            interrupts.install()
            return _run(args, console)
        if args.command == "leaderboard":
            return _leaderboard(args, console)
        if args.command == "report":
            return _report(args, console)
        if args.command == "data":
            return data_command.main(args, console)
        if args.command == "predict":
            return predict_command.main(args, console)
        if args.command == "export":
            return export_command.main(args, console)
        if args.command == "promote":
            return promote_command.main(args, console)
        return _models(args, console)
    except PneumobenchError as exc:
        if args.debug:
            raise
        err.print(f"[bold red]error:[/] {exc}", markup=True, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        again = " ".join(["pneumobench", *(argv if argv is not None else sys.argv[1:])])
        err.print(
            "\n[bold yellow]interrupted.[/] Finished trials and runs are kept, the interrupted "
            f"trial is marked failed. Resume with the same command:\n  {again}"
        )
        return 130


def _quiet_libraries() -> None:
    """Library chatter that says nothing to a pneumobench user (pickle format, pip version)."""
    import logging
    import warnings

    for name in (
        "mlflow.pytorch",
        "mlflow.utils.environment",
        "mlflow.models.model",
        "mlflow.system_metrics",
        "mlflow.utils.uv_utils",
    ):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*experimental.*", module="optuna")


def _run(args: argparse.Namespace, console: Console) -> int:
    from pneumobench.config import load_config

    overrides = list(args.overrides)
    if args.tracking_uri:
        overrides.append(f"tracking.uri={args.tracking_uri}")
    if args.storage:
        overrides.append(f"search.storage={args.storage}")
    if args.device:
        overrides.append(f"device={args.device}")
    config = load_config(args.config, overrides)
    config.tracking.uri = absolute_sqlite(config.tracking.uri)
    config.search.storage = absolute_sqlite(config.search.storage)
    if args.models:
        wanted = [m.strip() for m in args.models.split(",") if m.strip()]
        known = {m.key for m in config.models} | {m.name for m in config.models}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise ConfigError(
                f"--models: {', '.join(unknown)} not in {args.config}; "
                f"configured: {', '.join(m.key for m in config.models)}"
            )
        config.models = [m for m in config.models if m.key in wanted or m.name in wanted]

    from pneumobench.benchmark.leaderboard import load_leaderboard, rich_table
    from pneumobench.benchmark.run import run_experiment

    outcomes = run_experiment(config, force=args.force, console=console)
    rows = load_leaderboard(
        config.name,
        "recall",
        config.tracking.uri,
        n_resamples=config.evaluation.bootstrap_resamples,
        alpha=config.evaluation.alpha,
    )
    console.print(rich_table(rows, "recall", f"{config.name} leaderboard"))
    promote_command.promote_champion(config.name, config.tracking.uri, rows, "recall", console)
    console.print(
        _next_steps(args.config, config.name, config.tracking.uri, config.search.storage, outcomes)
    )
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def mlflow_experiment_id(name: str, uri: str) -> str:
    """The id of experiment ``name`` in ``uri``."""
    from pneumobench.tracking.store import client, find_experiment

    return str(find_experiment(client(uri), name, uri).experiment_id)


def _next_steps(config_path: Path, name: str, uri: str, storage: str, outcomes: list) -> object:
    """What happened to each model, and where to look next."""
    from rich.table import Table

    table = Table(title="done", show_header=False, box=None, padding=(0, 2))
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")  # links are printed whole, never cut with an ellipsis
    for o in outcomes:
        text = {
            "evaluated": "searched, evaluated once on test",
            "skipped": "already evaluated (skipped; --force evaluates again)",
            "delegated": "searched; another worker runs its test evaluation",
            "failed": f"[red]failed[/]: {o.message}",
        }.get(o.status, o.status)
        table.add_row(f"[bold]{o.label}[/]", text)
    from pneumobench.tracking.models import registered_name
    from pneumobench.tracking.ui import LOCAL_UI, model_url, runs_url

    experiment_id = mlflow_experiment_id(name, uri)
    base = uri.rstrip("/") if uri.startswith("http") else LOCAL_UI
    table.add_row("", "")
    if not uri.startswith("http"):
        table.add_row("MLflow UI", f"[bold]mlflow ui --backend-store-uri {uri}[/], then open:")
    table.add_row("compare runs", runs_url(experiment_id, base))
    table.add_row("champion", model_url(registered_name(name), base))
    table.add_row("predict", "[bold]pneumobench predict FOLDER --out predictions.csv[/]")
    table.add_row("rank", f"[bold]pneumobench leaderboard --config {config_path} --metric f1[/]")
    table.add_row("report", f"[bold]pneumobench report --config {config_path} --out report.html[/]")
    table.add_row("studies", f"[bold]optuna-dashboard {storage}[/] (pip install optuna-dashboard)")
    return table


class ResolvedStore(NamedTuple):
    """Where an experiment's results live and how they are judged, resolved once for the
    commands that read them (leaderboard, report, promote)."""

    name: str
    uri: str
    storage: str | None  # Optuna storage URL
    alpha: float  # significance level of the paired comparisons
    resamples: int  # bootstrap resamples of the intervals and paired comparisons


def resolve_store(args: argparse.Namespace) -> ResolvedStore:
    """Flags first, then the config (``--config``, else ``experiments.yaml`` here), then the
    config schema's defaults. The leaderboard and the report take alpha and the resample count
    from the same place as ``pneumobench run``'s own leaderboard, so the three never disagree on
    a group for lack of a flag."""
    from pneumobench.config import EvaluationConfig

    name, uri = args.experiment, args.tracking_uri
    storage = getattr(args, "storage", None)
    resamples = getattr(args, "resamples", None)
    defaults = EvaluationConfig()
    alpha, config_resamples = defaults.alpha, defaults.bootstrap_resamples
    config_path = args.config or (Path(DEFAULT_CONFIG) if Path(DEFAULT_CONFIG).is_file() else None)
    wants_storage = args.command == "report" and storage is None
    if config_path is not None and (args.config or not (name and uri) or wants_storage):
        from pneumobench.config import load_config

        config = load_config(config_path)
        name = name or config.name
        uri = uri or config.tracking.uri
        storage = storage or config.search.storage
        alpha, config_resamples = config.evaluation.alpha, config.evaluation.bootstrap_resamples
    if name is None:
        raise ConfigError(
            f"no --experiment given and no {DEFAULT_CONFIG} here to read its name from"
        )
    uri = absolute_sqlite(uri or "sqlite:///mlflow.db")
    return ResolvedStore(
        name,
        uri,
        absolute_sqlite(storage) if storage else None,
        alpha,
        resamples or config_resamples,
    )


def _leaderboard(args: argparse.Namespace, console: Console) -> int:
    from pneumobench.benchmark.leaderboard import (
        load_leaderboard,
        normalize_metric,
        render,
        rich_table,
    )

    normalize_metric(args.metric)  # a bad metric fails before anything is opened
    store = resolve_store(args)
    name = store.name
    rows = load_leaderboard(
        name, args.metric, store.uri, n_resamples=store.resamples, alpha=store.alpha
    )
    if not any(r["status"] == "evaluated" for r in rows):
        _nothing_evaluated(name, rows)
        if not rows:
            return 1
    if args.format == "table":
        console.print(rich_table(rows, args.metric, f"{name} leaderboard"))
    else:
        print(render(rows, args.format, args.metric))
    return 0 if any(r["status"] == "evaluated" for r in rows) else 1


def _nothing_evaluated(name: str, rows: list) -> None:
    err = Console(stderr=True, highlight=False)
    failed = ", ".join(r["model"] for r in rows)
    err.print(
        f"[yellow]no model of experiment '{name}' has a final evaluation[/]"
        + (f" (failed: {failed}; see their pneumobench.fail_reason tags)" if rows else "")
        + ". Run `pneumobench run CONFIG` first; `mlflow ui` shows what was logged."
    )


def _report(args: argparse.Namespace, console: Console) -> int:
    from pneumobench.benchmark.leaderboard import normalize_metric
    from pneumobench.benchmark.report import build_report, log_to_mlflow, write_report

    normalize_metric(args.metric)
    if args.out.suffix.lower() not in (".html", ".htm", ".md"):
        raise ConfigError(f"--out {args.out}: name an .html or a .md file")
    store = resolve_store(args)
    name, uri = store.name, store.uri
    report = build_report(
        name, uri, store.storage, args.metric, n_resamples=store.resamples, alpha=store.alpha
    )
    if not report.models:
        _nothing_evaluated(name, [])
        return 1
    paths = write_report(report, args.out)
    console.print(
        f"report: [bold]{args.out}[/] ({len(report.figures)} figures, {len(report.models)} models)"
    )
    for note in report.notes:
        console.print(f"  [dim]{note}[/]")
    if not args.no_log:
        run_id = log_to_mlflow(report, paths)
        console.print(f"  attached to MLflow run 'summary' ({run_id}) of experiment {name}")
    return 0


def _models(args: argparse.Namespace, console: Console) -> int:
    from rich.table import Table

    from pneumobench.registry import create_model, get_architecture, list_models

    if args.config:
        from pneumobench.config import load_config

        load_config(args.config).load_plugins()
    names = list_models(args.pattern)
    if args.pattern.startswith("xrv:"):
        import fnmatch

        from pneumobench.registry.xrv_models import weight_names

        names += [f"xrv:{w}" for w in weight_names() if fnmatch.fnmatch(f"xrv:{w}", args.pattern)]
    if not names:
        from pneumobench.text import close_matches

        close = close_matches(args.pattern.strip("*"), list_models(), cutoff=0.5)
        Console(stderr=True, highlight=False).print(
            f"[yellow]no registry entry matches '{args.pattern}'[/]"
            + (f"; close: {', '.join(close)}" if close else "")
            + ". `pneumobench models` lists them all; any timm model is 'timm:<name>', any "
            "torchvision model 'tv:<name>'."
        )
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


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
