"""Ctrl-C and SIGTERM stop a run, even when the first KeyboardInterrupt is lost, and a burst of
signals never deadlocks it.

Python raises KeyboardInterrupt wherever the main thread happens to be; raised inside a finalizer
(a garbage collection between trials, say) it is printed and dropped, and the run would go on.
The handler therefore also records the request, and the runner checks it at every batch, epoch
and trial. The handler does nothing but set a plain flag and raise, once: it takes no lock (a
``threading.Event`` would, and a second signal arriving inside ``Event.set`` deadlocks the
process for good), and later signals of the same burst only set the flag again, so the cleanup
that the first KeyboardInterrupt started (runs closed as KILLED, the trial marked failed) is not
cut short by the next one.
"""

from __future__ import annotations

import signal
import sys

_requested = False


def _handler(signum: int, frame: object) -> None:
    global _requested
    first = not _requested
    _requested = True
    if first:
        raise KeyboardInterrupt


def install() -> None:
    """SIGINT and SIGTERM (a pre-empted job) both stop like Ctrl-C: runs closed, trials kept.

    A KeyboardInterrupt that Python drops inside a finalizer is not printed as "Exception
    ignored ... Traceback" either: the flag has it, and ``check`` raises it again."""
    global _requested
    _requested = False
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    if sys.unraisablehook is not _quiet_dropped_interrupt:
        _default_hook[0] = sys.unraisablehook
        sys.unraisablehook = _quiet_dropped_interrupt


_default_hook = [sys.__unraisablehook__]


def _quiet_dropped_interrupt(unraisable: sys.UnraisableHookArgs) -> None:
    if isinstance(unraisable.exc_value, KeyboardInterrupt) and _requested:
        return
    _default_hook[0](unraisable)


def requested() -> bool:
    """Whether a stop was asked for in this process."""
    return _requested


def check() -> None:
    """Raise KeyboardInterrupt again if a stop was asked for and the first one got lost."""
    if _requested:
        raise KeyboardInterrupt
