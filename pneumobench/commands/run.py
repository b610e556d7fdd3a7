"""``pneumobench run CONFIG``: search and evaluate every model, then the leaderboard, the
champion alias, and where to look next."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from pneumobench import interrupts
from pneumobench.commands.options import DEFAULT_METRIC
from pneumobench.errors import ConfigError, PneumobenchError
from pneumobench.text import command, redact


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``run`` and its options."""
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
    run.add_argument(
        "--workers",
        default=None,
        metavar="N|auto",
        help="N worker processes on the same studies (auto: one per GPU, else per 4 cores); "
        "the cores or GPUs are split between them",
    )
    run.add_argument(
        "--workers-per-gpu", type=int, default=1, help="with --workers: workers sharing each GPU"
    )
    run.add_argument(
        "--profile-out",
        type=Path,
        metavar="FILE.json",
        help="also write the stage profile (where the time went) to this JSON file",
    )
    return run


def resolved_config(args: argparse.Namespace) -> Any:
    """The config as this run uses it: file, ``--set`` and the flags, SQLite paths made
    absolute, ``--models`` applied; validated once and never changed afterwards."""
    from pneumobench.config.loading import load_config
    from pneumobench.tracking.urls import absolute_sqlite

    overrides = list(args.overrides)
    if args.tracking_uri:
        overrides.append(f"tracking.uri={args.tracking_uri}")
    if args.storage:
        overrides.append(f"search.storage={args.storage}")
    if args.device:
        overrides.append(f"device={args.device}")
    config = load_config(args.config, overrides)
    models = config.models
    if args.models:
        wanted = [m.strip() for m in args.models.split(",") if m.strip()]
        known = {m.key for m in config.models} | {m.name for m in config.models}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise ConfigError(
                f"--models: {', '.join(unknown)} not in {args.config}; "
                f"configured: {', '.join(m.key for m in config.models)}"
            )
        models = [m for m in config.models if m.key in wanted or m.name in wanted]
    return config.with_changes(
        tracking=config.tracking.model_copy(update={"uri": absolute_sqlite(config.tracking.uri)}),
        search=config.search.model_copy(update={"storage": absolute_sqlite(config.search.storage)}),
        models=models,
    )


def main(args: argparse.Namespace, console: Console) -> int:
    """Run the benchmark; 1 when a model failed."""
    from pneumobench import profile
    from pneumobench.tracking.urls import probe

    started = time.perf_counter()
    profile.reset()
    interrupts.install()
    with profile.stage("start-up"):
        config = resolved_config(args)  # a bad config, and an unreachable tracking store,
        probe(config.tracking.uri)  #      fail in seconds, before torch and mlflow are imported
        if args.profile_out:
            _require_writable_file(args.profile_out)
    if args.workers is not None:
        import os

        if args.profile_out:
            raise ConfigError(
                "--profile-out profiles one process: drop --workers (each worker prints its "
                "own profile) or --profile-out"
            )

        from pneumobench.commands.workers import plan_workers, run_workers, visible_gpus

        gpus = visible_gpus() if config.device != "cpu" else []
        shares = plan_workers(args.workers, args.workers_per_gpu, gpus, os.cpu_count() or 1)
        return run_workers(shares, _run_argv(args), console)
    with profile.stage("start-up"):
        _limit_threads()
        from pneumobench.benchmark.experiment import run_experiment
        from pneumobench.benchmark.model_run import Outcome
        from pneumobench.commands.promote import promote_champion
        from pneumobench.tracking.store import storage_failure
        from pneumobench.tracking.writer import close_active_runs
    try:
        outcomes = run_experiment(config, force=args.force, console=console)
    except PneumobenchError:
        raise
    except Exception as exc:  # a locked store or a full disk: one clear error, runs closed
        failure = storage_failure(exc, config.tracking.uri)
        if failure is None:
            raise
        close_active_runs("FAILED")
        raise type(failure)(f"{failure}\n  Resume with: {_same_command(args)}") from None
    with profile.stage("report"):
        rows = _print_leaderboard(config, console)
    with profile.stage("logging and registry"):
        promote_champion(
            config.name, config.tracking.uri, rows, DEFAULT_METRIC, console, config.evaluation
        )
    wall = time.perf_counter() - started
    console.print(_profile_table(wall))
    if args.profile_out:
        _write_profile(args.profile_out, wall)
    console.print(
        _next_steps(args.config, config.name, config.tracking.uri, config.search.storage, outcomes)
    )
    return 1 if any(o.status == Outcome.FAILED for o in outcomes) else 0


def _limit_threads() -> None:
    """A worker started by --workers uses its share of the cores only."""
    import os

    from pneumobench.commands.workers import THREADS_ENV

    threads = os.environ.get(THREADS_ENV)
    if threads and threads.isdigit():
        import torch

        torch.set_num_threads(int(threads))


def _print_leaderboard(config: Any, console: Console) -> list[Any]:
    """The leaderboard by the default metric, as ``pneumobench leaderboard`` prints it."""
    from pneumobench.report.leaderboard import (
        champion_note,
        load_leaderboard,
        normalize_metric,
        targets_of,
        test_looks,
    )
    from pneumobench.report.render import rich_table, store_notes

    rows = load_leaderboard(config.name, DEFAULT_METRIC, config.tracking.uri, config.evaluation)
    targets = targets_of(rows, config.evaluation.operating_points)
    notes = store_notes(rows, test_looks(config.tracking.uri, rows))
    key = normalize_metric(DEFAULT_METRIC)
    chosen = champion_note(config.tracking.uri, rows, key, config.evaluation)
    notes += [chosen] if chosen else []
    console.print(rich_table(rows, DEFAULT_METRIC, f"{config.name} leaderboard", targets, notes))
    return rows


def _require_writable_file(path: Path) -> None:
    """``--profile-out``'s folder, checked before the run rather than after it."""
    import os

    folder = path.expanduser().resolve().parent
    if path.is_dir() or not folder.is_dir() or not os.access(folder, os.W_OK):
        raise ConfigError(
            f"--profile-out {path}: not a writable file path (its folder {folder} must exist "
            "and be writable)"
        )


def _write_profile(path: Path, wall: float) -> None:
    """``--profile-out``: the stage profile as JSON (``benchmarks/stage_profile.py`` reads it)."""
    import json

    from pneumobench import profile

    try:
        path.write_text(json.dumps(profile.as_json(wall), indent=2) + "\n")
    except OSError as exc:
        raise ConfigError(
            f"--profile-out {path}: cannot write it ({exc.strerror or exc})"
        ) from None


def _profile_table(wall: float) -> object:
    """Where this run's time went, stage by stage (``pneumobench.profile``)."""
    from rich.table import Table

    from pneumobench import profile

    table = Table(title=f"where the time went ({wall:.0f} s)", box=None, padding=(0, 2))
    for column in ("stage", "seconds", "share"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for name, seconds, share in profile.report(wall):
        table.add_row(name, f"{seconds:.1f}", f"{share:.1%}")
    return table


def _run_argv(args: argparse.Namespace) -> list[str]:
    """This ``run``'s arguments (not ``--workers``): what each worker of --workers runs."""
    parts = ["run", str(args.config)]
    for override in args.overrides:
        parts += ["--set", override]
    for flag in ("models", "tracking_uri", "storage", "device"):
        value = getattr(args, flag)
        if value:
            parts += [f"--{flag.replace('_', '-')}", value]
    return parts + (["--force"] if args.force else [])


def _same_command(args: argparse.Namespace) -> str:
    """This ``pneumobench run`` as a user types it again (passwords masked)."""
    return " ".join([command(), *(redact(a) for a in _run_argv(args))])


def _next_steps(config_path: Path, name: str, uri: str, storage: str, outcomes: list) -> object:
    """What happened to each model, and where to look next."""
    from rich.table import Table

    from pneumobench.benchmark.model_run import Outcome
    from pneumobench.tracking.models import registered_name
    from pneumobench.tracking.store import client, find_experiment
    from pneumobench.tracking.ui import LOCAL_UI, model_url, refresh_display_tags, runs_url

    table = Table(title="done", show_header=False, box=None, padding=(0, 2))
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")  # links are printed whole, never cut with an ellipsis
    for o in outcomes:
        text = {
            Outcome.EVALUATED: "searched, evaluated on test"
            + (" once" if o.looks <= 1 else f" (its test set's look number {o.looks})"),
            Outcome.SKIPPED: "already evaluated (skipped; --force evaluates again)",
            Outcome.DELEGATED: "searched; another worker runs its test evaluation",
            Outcome.FAILED: f"[red]failed[/]: {o.message}",
        }.get(o.status, str(o.status))
        table.add_row(f"[bold]{o.label}[/]", text)
    experiment_id = str(find_experiment(client(uri), name, uri).experiment_id)
    refresh_display_tags(experiment_id)  # the runs view's "value [interval]" columns
    base = redact(uri.rstrip("/")) if uri.startswith("http") else LOCAL_UI
    table.add_row("", "")
    if not uri.startswith("http"):
        table.add_row("MLflow UI", f"[bold]{command()} ui --config {config_path}[/] opens:")
    table.add_row("compare runs", runs_url(experiment_id, base))
    table.add_row("champion", model_url(registered_name(name), base))
    me = command()
    table.add_row("predict", f"[bold]{me} predict FOLDER --out predictions.csv[/]")
    table.add_row("rank", f"[bold]{me} leaderboard --config {config_path} --metric f1[/]")
    table.add_row("report", f"[bold]{me} report --config {config_path} --out report.html[/]")
    table.add_row(
        "external test", f"[bold]{me} evaluate {config_path} --test-data FOLDER_OR_NPZ[/]"
    )
    table.add_row(
        "studies",
        f"[bold]optuna-dashboard {_secret_from_env(storage)}[/] (pip install optuna-dashboard)",
    )
    if PASSWORD_ENV in _secret_from_env(uri) + _secret_from_env(storage):
        table.add_row("", f"(set {PASSWORD_ENV} to the database password first)")
    return table


PASSWORD_ENV = "PNEUMOBENCH_DB_PASSWORD"


def _secret_from_env(url: str) -> str:
    """A URL for a printed command: its password replaced by a shell variable, quoted."""
    masked = redact(url)
    if masked == url:
        return url
    return '"' + masked.replace(":***@", f":${{{PASSWORD_ENV}}}@", 1) + '"'
