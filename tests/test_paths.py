from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from optuna_enas import MicroSpace
from optuna_enas import RNNCellSpace
from optuna_enas.spaces._search_space import Decision
from optuna_enas.spaces._search_space import SearchSpace
from optuna_enas.training._paths import PathSampler
from optuna_enas.training._paths import check_train_paths


def test_check_train_paths_accepts_each_mode() -> None:
    for mode in ("controller", "uniform", "fair", "mixture"):
        assert check_train_paths(mode) == mode


@pytest.mark.parametrize("bad", ["spos", "", None, 1, "Fair"])
def test_check_train_paths_names_argument_and_value(bad: object) -> None:
    with pytest.raises(ValueError, match=rf"train_paths.*{bad!r}"):
        check_train_paths(bad)


def test_path_sampler_rejects_bad_arguments() -> None:
    space = RNNCellSpace(n_nodes=3)
    with pytest.raises(ValueError, match="train_paths.*'spos'"):
        PathSampler(space, "spos")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"mixture.*1\.5"):
        PathSampler(space, "mixture", mixture=1.5)
    with pytest.raises(ValueError, match="space"):
        PathSampler("rnn", "uniform")  # type: ignore[arg-type]
    other = MicroSpace(n_nodes=2).sample_uniform(np.random.default_rng(0))
    with pytest.raises(ValueError, match="arch must be an Architecture of space 'rnn'"):
        PathSampler(space, "controller").paths(other, np.random.default_rng(0))


def test_paths_controller_returns_the_trial_arch_and_uniform_without_one() -> None:
    space = RNNCellSpace(n_nodes=4)
    arch = space.sample_uniform(np.random.default_rng(1))
    sampler = PathSampler(space)
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    assert sampler.paths(arch, rng) == [arch]
    assert rng.bit_generator.state == state  # ENAS's path draws nothing: bitwise as before
    expected = space.sample_uniform(np.random.default_rng(5))
    assert sampler.paths(None, np.random.default_rng(5)) == [expected]


def test_paths_uniform_ignores_the_trial_arch_and_covers_the_space() -> None:
    space = RNNCellSpace(n_nodes=2)  # 4 * 1 * 4 = 16 architectures
    arch = space.sample_uniform(np.random.default_rng(1))
    sampler = PathSampler(space, "uniform")
    rng = np.random.default_rng(0)
    seen = Counter(p for _ in range(1600) for p in sampler.paths(arch, rng))
    assert len(seen) == space.n_architectures
    assert max(seen.values()) < 2 * min(seen.values())


def test_paths_fair_trains_every_candidate_of_every_decision_once_per_step() -> None:
    space = RNNCellSpace(n_nodes=6)  # op decisions: 4 choices; node5_in: 5 choices (the max)
    sampler = PathSampler(space, "fair")
    assert sampler.paths_per_step == 5
    rng = np.random.default_rng(0)
    for _ in range(20):
        paths = sampler.paths(None, rng)
        assert len(paths) == 5
        for d in space.decisions:
            counts = Counter(p[d.name] for p in paths)
            assert set(counts) == set(d.choices)  # every candidate at least once
            if len(d.choices) == 5:
                assert all(c == 1 for c in counts.values())  # exactly once
            # the rest are uniform fillers: len(choices) + (m - len(choices)) draws in all
            assert sum(counts.values()) == 5


def test_paths_fair_fillers_are_uniform_and_the_permutation_varies() -> None:
    space = SearchSpace([Decision("a", (0, 1, 2, 3)), Decision("b", ("x", "y"))])
    sampler = PathSampler(space, "fair")
    rng = np.random.default_rng(3)
    firsts: Counter[object] = Counter()
    extra: Counter[int] = Counter()
    for _ in range(2000):
        paths = sampler.paths(None, rng)
        firsts[paths[0]["a"]] += 1
        counts = Counter(p["b"] for p in paths)
        assert counts["x"] >= 1 and counts["y"] >= 1
        extra[counts["x"]] += 1
    assert set(firsts) == {0, 1, 2, 3}
    assert min(firsts.values()) > 400  # each choice leads about 500 times in 2000
    # the 2 fillers of "b" are uniform: 1, 2 or 3 x's with probability 1/4, 1/2, 1/4
    assert 400 < extra[1] < 600 and 850 < extra[2] < 1150 and 400 < extra[3] < 600


def test_paths_mixture_takes_the_trial_arch_with_the_given_probability() -> None:
    space = RNNCellSpace(n_nodes=8)  # 4**8 * 7! architectures: a uniform draw never repeats
    arch = space.sample_uniform(np.random.default_rng(1))
    rng = np.random.default_rng(0)
    hits = sum(
        PathSampler(space, "mixture", mixture=0.3).paths(arch, rng) == [arch] for _ in range(2000)
    )
    assert 500 < hits < 700
    assert PathSampler(space, "mixture", mixture=1.0).paths(arch, rng) == [arch]
    assert PathSampler(space, "mixture", mixture=0.0).paths(arch, rng) != [arch]
    assert PathSampler(space, "mixture", mixture=1.0).paths(None, rng)[0] != arch


@pytest.mark.parametrize("mode", ["controller", "uniform", "fair", "mixture"])
def test_paths_are_deterministic_under_a_seeded_rng(mode: str) -> None:
    space = RNNCellSpace(n_nodes=5)
    arch = space.sample_uniform(np.random.default_rng(1))
    sampler = PathSampler(space, mode)  # type: ignore[arg-type]
    runs = []
    for seed in (7, 7, 8):
        rng = np.random.default_rng(seed)
        runs.append([sampler.paths(arch if i % 2 else None, rng) for i in range(30)])
    assert runs[0] == runs[1]
    if mode != "controller":
        assert runs[0] != runs[2]
