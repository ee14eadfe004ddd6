"""The shared argument checks: what each accepts, what it refuses, and the message."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from optuna_enas._validation import SEED_MAX
from optuna_enas._validation import check_fraction
from optuna_enas._validation import check_int
from optuna_enas._validation import check_non_negative
from optuna_enas._validation import check_positive
from optuna_enas._validation import check_seed
from optuna_enas._validation import fresh_seed


@pytest.mark.parametrize(
    ("value", "minimum", "maximum", "expected"),
    [(1, 1, None, 1), (np.int64(7), 0, 10, 7), (10, 0, 10, 10), (0, 0, None, 0)],
)
def test_check_int_accepts(value: Any, minimum: int, maximum: int | None, expected: int) -> None:
    out = check_int("n", value, minimum, maximum)
    assert out == expected and type(out) is int


@pytest.mark.parametrize(
    ("value", "minimum", "maximum", "match"),
    [
        (0, 1, None, r"n must be an integer >= 1, but got 0\."),
        (11, 0, 10, r"n must be an integer in \[0, 10\], but got 11\."),
        (True, 0, None, r"but got True"),
        (np.bool_(True), 0, None, r"but got "),
        (1.0, 0, None, r"but got 1\.0"),
        ("3", 0, None, r"but got '3'"),
    ],
)
def test_check_int_refuses(value: Any, minimum: int, maximum: int | None, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_int("n", value, minimum, maximum)


def test_check_seed_range_and_numpy_integers() -> None:
    assert check_seed("seed", None) is None
    assert check_seed("seed", np.uint32(SEED_MAX)) == 2**32 - 1
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 4294967295\]"):
        check_seed("seed", 2**32)
    with pytest.raises(ValueError, match="seed"):
        check_seed("seed", -1)
    np.random.RandomState(check_seed("seed", SEED_MAX))  # the bound is numpy's own


@pytest.mark.parametrize("value", [0, -1.0, math.nan, math.inf, True, "1"])
def test_check_positive_refuses(value: Any) -> None:
    with pytest.raises(ValueError, match="lr must be a positive float"):
        check_positive("lr", value)


def test_check_positive_inf_only_when_allowed() -> None:
    assert check_positive("clip", math.inf, allow_inf=True) == math.inf
    assert check_positive("lr", np.float32(0.5)) == 0.5


@pytest.mark.parametrize("value", [-1e-9, math.inf, math.nan, None])
def test_check_non_negative_refuses(value: Any) -> None:
    with pytest.raises(ValueError, match="wd must be a finite float >= 0"):
        check_non_negative("wd", value)


def test_check_fraction_open_and_closed() -> None:
    assert check_fraction("p", 0.0) == 0.0
    with pytest.raises(ValueError, match=r"p must be a float in \[0, 1\), but got 1\.0"):
        check_fraction("p", 1.0)
    assert check_fraction("d", 1.0, closed=True) == 1.0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        check_fraction("d", 1.5, closed=True)


def test_fresh_seed_is_a_valid_seed_and_varies() -> None:
    seeds = {fresh_seed() for _ in range(20)}
    assert len(seeds) > 1
    assert all(0 <= s <= 2**31 - 1 for s in seeds)
