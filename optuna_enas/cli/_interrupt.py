"""Ctrl-C and SIGTERM end a search the same way: the running trial is marked, the checkpoint saved.

Schedulers and ``kill`` send SIGTERM; Python's default for it ends the process at once, with
the trial left RUNNING and no checkpoint. While a search runs, :class:`SignalGuard` handles
SIGTERM and SIGINT (Ctrl-C) alike:

- inside the objective (training and scoring: almost all the time) the signal raises
  :class:`Terminated` or ``KeyboardInterrupt`` at once; Optuna records the trial FAIL and the
  guard tags it with the user attr ``enas:interrupted``;
- anywhere else (sampling, storage writes, callbacks) an exception could leave the trial
  RUNNING or half-written, so the signal is only noted: the trial finishes normally and the
  search stops after it (``study.stop()``); a second signal raises at once.

Interrupted trials do not count toward ``--trials`` (only COMPLETE and PRUNED trials do), and
Optuna's traceback for them is not printed.
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
    from optuna.trial import FrozenTrial


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
        message = record.getMessage()
        return "KeyboardInterrupt" not in message and "Terminated" not in message


def _interrupt(signum: int) -> KeyboardInterrupt:
    return Terminated(f"signal {signum}") if signum == signal.SIGTERM else KeyboardInterrupt()


class SignalGuard:
    """SIGTERM and SIGINT handling for one ``study.optimize`` (see the module docstring).

    Use :meth:`installed` around ``optimize``, wrap the objective with :meth:`objective` and
    pass :meth:`callback` among the callbacks. ``signal`` is the signal that stopped the
    search between trials (``None``: none did); ``received`` the last one handled anywhere (an
    interrupt that a storage write reported as its own error is still that signal).
    """

    def __init__(self) -> None:
        self.signal: int | None = None
        self.received: int | None = None  # the last signal handled, wherever it landed
        self._in_objective = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum
        if self._in_objective or self.signal is not None:
            raise _interrupt(signum)
        self.signal = signum  # between trials: stop after this one (callback)

    @contextmanager
    def installed(self) -> Iterator[None]:
        log = logging.getLogger("optuna.study._optimize")
        quiet = _DropInterruptTracebacks()
        log.addFilter(quiet)
        main = threading.current_thread() is threading.main_thread()
        previous: dict[int, Any] = {}
        if main:
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, self._handle)
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            log.removeFilter(quiet)

    def objective(self, objective: Callable[[optuna.Trial], Any]) -> Callable[[optuna.Trial], Any]:
        """``objective``, interruptible, tagging its trial ``enas:interrupted`` when stopped."""

        def wrapped(trial: optuna.Trial) -> Any:
            try:
                self._in_objective = True
                if self.signal is not None:  # a signal came while the trial was sampled
                    raise _interrupt(self.signal)
                return objective(trial)
            except KeyboardInterrupt:
                self._in_objective = False
                try:
                    trial.set_user_attr(INTERRUPTED_ATTR, True)
                except Exception:  # the storage is gone: the trial stays unmarked
                    pass
                raise
            finally:
                self._in_objective = False

        return wrapped

    def callback(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Stops the search after a trial that finished while a signal was pending."""
        if self.signal is not None:
            study.stop()


class PendingSignal:
    """The signal a :func:`sigterm_as_interrupt` block received (``None``: none)."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def raise_if_pending(self) -> None:
        """Raise the interrupt again: for a loop's checkpoint between steps, in case the
        exception the handler raised was swallowed where it landed (a ``__del__``, a retry
        loop that catches ``BaseException``)."""
        if self.signum is not None:
            raise _interrupt(self.signum)


@contextmanager
def sigterm_as_interrupt() -> Iterator[PendingSignal]:
    """SIGTERM raises :class:`Terminated` (a ``KeyboardInterrupt``) while the block runs.

    For loops that are not ``study.optimize`` (the one-shot searches): their ``except
    KeyboardInterrupt`` then saves and releases what Ctrl-C does, instead of the process
    dying at once. The yielded :class:`PendingSignal` remembers the signal; call its
    ``raise_if_pending()`` between steps, so that an interrupt swallowed where it landed still
    stops the loop. Only in the main thread (elsewhere a no-op).
    """
    pending = PendingSignal()

    def handle(signum: int, frame: FrameType | None) -> None:
        pending.signum = signum
        raise _interrupt(signum)

    if threading.current_thread() is not threading.main_thread():
        yield pending
        return
    previous = signal.signal(signal.SIGTERM, handle)
    try:
        yield pending
    finally:
        signal.signal(signal.SIGTERM, previous)
