"""Names at the package root that the docs use."""

from __future__ import annotations

import subprocess
import sys

from optuna.study import StudyDirection

import optuna_enas
from optuna_enas import sampler


def test_weighted_sum_reward_is_at_the_root_and_torch_free() -> None:
    assert optuna_enas.weighted_sum_reward is sampler.weighted_sum_reward
    assert "weighted_sum_reward" in dir(optuna_enas)
    reward = optuna_enas.weighted_sum_reward([1.0, 0.5])
    directions = [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE]
    assert reward((3.0, 4.0), directions) == 1.0 * 3.0 - 0.5 * 4.0
    code = (
        "import sys, optuna_enas; optuna_enas.weighted_sum_reward; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
