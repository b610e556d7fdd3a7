"""The ``pneumobench`` command: one parser, a dispatch table of sub-commands, one error policy.

User errors exit with code 2 and no traceback; Ctrl-C exits 130 with the command that resumes;
a run with a failed model exits 1. Each sub-command is one module of this package with
``add_parser(sub)`` and ``main(args, console)``; nothing heavy is imported before it runs.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import sys
from types import ModuleType

from rich.console import Console
from rich.markup import escape

from pneumobench.commands import (
    data,
    evaluate,
    export,
    leaderboard,
    models,
    predict,
    promote,
    report,
    run,
    ui,
)
from pneumobench.commands.workers import WORKER_ENV
from pneumobench.errors import PneumobenchError
from pneumobench.text import command, redact

# sub-command -> its module, in the order `pneumobench --help` lists them
COMMANDS: dict[str, ModuleType] = {
    "run": run,
    "leaderboard": leaderboard,
    "report": report,
    "ui": ui,
    "evaluate": evaluate,
    "data": data,
    "predict": predict,
    "export": export,
    "promote": promote,
    "models": models,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pneumobench",
        description="Benchmark pneumonia classifiers on chest X-rays: registry -> one protocol -> "
        "Optuna -> MLflow -> leaderboard.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS.values():
        module.add_parser(sub)
    return parser


_exit_code: int | None = None  # what the program returns, for ``_exit_without_teardown``


def main(argv: list[str] | None = None) -> int:
    """The ``pneumobench`` command; its exit code.

    Run as the program (``argv`` None: the console script, ``python -m pneumobench``), it exits
    without the interpreter's teardown once every library's exit handler has run
    (``_exit_without_teardown``)."""
    global _exit_code
    if argv is None:
        atexit.register(_exit_without_teardown)  # registered first, so it runs last
    _exit_code = _main(argv)
    return _exit_code


def _exit_without_teardown() -> None:
    """The last exit handler: MLflow's, Optuna's, logging's and the temporary folders' handlers
    have run; what is left is Python freeing torch, MLflow and pandas module by module, which
    takes seconds and changes nothing on disk (docs/performance.md). Output is flushed first.
    An exception that escaped ``main`` leaves the normal exit alone."""
    if _exit_code is None:
        return
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    os._exit(_exit_code)


def _main(argv: list[str] | None) -> int:
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
        return COMMANDS[args.command].main(args, console)
    except PneumobenchError as exc:
        if args.debug:
            raise
        message = escape(redact(str(exc)))  # no password of a URL reaches the console
        err.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        worker = os.environ.get(WORKER_ENV)
        if worker:  # started by --workers: the command that started it says how to resume
            err.print(f"[bold yellow]worker {worker} interrupted[/]: its finished trials are kept")
            return 130
        again = " ".join([command(), *(argv if argv is not None else sys.argv[1:])])
        err.print(
            "\n[bold yellow]interrupted.[/] Finished trials and runs are kept, the interrupted "
            f"trial is marked failed. Resume with the same command:\n  {again}"
        )
        return 130


def _quiet_libraries() -> None:
    """Library chatter that says nothing to a pneumobench user (pickle format, pip version)."""
    import logging
    import warnings

    # mlflow.store.db.utils logs every database error with its traceback before raising it; the
    # error reaches pneumobench, which names it in one line (tracking.store.storage_failure)
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    for name in (
        "mlflow.pyfunc",  # "Validating input example against model signature" at every version
        "mlflow.pytorch",
        "mlflow.utils.environment",
        "mlflow.models.model",
        "mlflow.system_metrics",
        "mlflow.utils.uv_utils",
    ):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*experimental.*", module="optuna")
    # the TorchScript parity check and the pyfunc model load a file torch itself wrote
    warnings.filterwarnings(
        "ignore", message=".*torch.jit.load.* is deprecated", category=FutureWarning
    )
