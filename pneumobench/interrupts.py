"""Ctrl-C and SIGTERM stop a run, even when the first KeyboardInterrupt is lost.

Python raises KeyboardInterrupt wherever the main thread happens to be; raised inside a finalizer
(a garbage collection between trials, say) it is printed and dropped, and the run would go on.
The handler therefore also records the request, and the runner checks it at every epoch and
before every trial.
"""

from __future__ import annotations

import signal
import threading

_requested = threading.Event()


def _handler(signum: int, frame: object) -> None:
    _requested.set()
    raise KeyboardInterrupt


def install() -> None:
    """SIGINT and SIGTERM (a pre-empted job) both stop like Ctrl-C: runs closed, trials kept."""
    _requested.clear()
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)


def check() -> None:
    """Raise KeyboardInterrupt again if a stop was asked for and the first one got lost."""
    if _requested.is_set():
        raise KeyboardInterrupt
