"""Ctrl-C and SIGTERM end a search the same way: the running trial is marked, the checkpoint saved.

Schedulers and ``kill`` send SIGTERM; Python's default for it ends the process at once, with
the trial left RUNNING and no checkpoint. While a search runs, SIGTERM raises
:class:`Terminated` (a ``KeyboardInterrupt``) instead, so the search stops exactly as after
Ctrl-C. The trial that was running is recorded FAIL with the user attr ``enas:interrupted``;
it does not count toward ``--trials`` (only COMPLETE and PRUNED trials do), and Optuna's
traceback for it is not printed.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING
from typing import Any


if TYPE_CHECKING:
    import optuna


INTERRUPTED_ATTR = "enas:interrupted"
"""Trial user attr: the trial was stopped by Ctrl-C or SIGTERM (its FAIL is not its fault)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the search runs, handled like Ctrl-C."""


class _DropInterruptTracebacks(logging.Filter):
    """Drops Optuna's "Trial N failed ... KeyboardInterrupt" warning and its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info
        if exc and exc[0] is not None and issubclass(exc[0], KeyboardInterrupt):
            return False
        return "KeyboardInterrupt" not in record.getMessage() and (
            "Terminated" not in record.getMessage()
        )


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(f"signal {signum}")


@contextmanager
def _interrupts_as_keyboard_interrupt() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` inside the block; interrupted trials log no traceback."""
    log = logging.getLogger("optuna.study._optimize")
    quiet = _DropInterruptTracebacks()
    log.addFilter(quiet)
    previous: Any = None
    main = threading.current_thread() is threading.main_thread()
    if main:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        log.removeFilter(quiet)


def _mark_interrupted(
    objective: Callable[[optuna.Trial], Any],
) -> Callable[[optuna.Trial], Any]:
    """``objective`` that tags its trial with ``enas:interrupted`` when interrupted."""

    def wrapped(trial: optuna.Trial) -> Any:
        try:
            return objective(trial)
        except KeyboardInterrupt:
            try:
                trial.set_user_attr(INTERRUPTED_ATTR, True)
            except Exception:  # the storage is gone: the trial stays unmarked
                pass
            raise

    return wrapped
