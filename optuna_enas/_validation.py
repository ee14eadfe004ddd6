"""Argument checks shared by the whole package: one function per rule, one message per rule.

Every check names the argument and the value it got, raises :class:`ValueError`, and returns
the value converted to its canonical type. numpy scalars count as the Python numbers they
hold; ``bool`` never counts as a number. Torch-free, so the spaces and configs can use it.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np


SEED_MAX = 2**32 - 1
"""The largest seed numpy's ``RandomState`` accepts (and ours: seeds are checked against it)."""


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_int(name: str, value: Any, minimum: int = 1, maximum: int | None = None) -> int:
    """An integer in ``[minimum, maximum]`` (``maximum=None``: no upper bound)."""
    if not _is_int(value) or value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be an integer {bound}, but got {value!r}.")
    return int(value)


def check_positive(name: str, value: Any, *, allow_inf: bool = False) -> float:
    """A float ``> 0``; finite unless ``allow_inf``."""
    if (
        not _is_real(value)
        or math.isnan(value)
        or value <= 0
        or (math.isinf(value) and not allow_inf)
    ):
        raise ValueError(f"{name} must be a positive float, but got {value!r}.")
    return float(value)


def check_non_negative(name: str, value: Any) -> float:
    """A finite float ``>= 0``."""
    if not _is_real(value) or not 0 <= value < math.inf:
        raise ValueError(f"{name} must be a finite float >= 0, but got {value!r}.")
    return float(value)


def check_fraction(name: str, value: Any, *, closed: bool = False) -> float:
    """A float in ``[0, 1)``, or ``[0, 1]`` with ``closed=True`` (dropout, decay, ...)."""
    ok = _is_real(value) and (0.0 <= value <= 1.0 if closed else 0.0 <= value < 1.0)
    if not ok:
        interval = "[0, 1]" if closed else "[0, 1)"
        raise ValueError(f"{name} must be a float in {interval}, but got {value!r}.")
    return float(value)


def check_seed(name: str, value: Any) -> int | None:
    """``None`` or an integer in ``[0, 2**32 - 1]`` (numpy integers accepted)."""
    if value is None:
        return None
    return check_int(name, value, 0, SEED_MAX)


def fresh_seed() -> int:
    """A seed from the OS entropy pool, in ``[0, 2**31 - 1]`` (fits every seed argument)."""
    return int(np.random.SeedSequence().generate_state(1)[0] & 0x7FFFFFFF)


__all__ = [
    "SEED_MAX",
    "check_fraction",
    "check_int",
    "check_non_negative",
    "check_positive",
    "check_seed",
    "fresh_seed",
]
