"""Issue #21, the command line: checkpoints that never collide, bounded inputs, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from optuna_enas.cli._storage import default_checkpoint


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_default_checkpoints_of_names_a_file_name_cannot_tell_apart_differ(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    names = ["a b", "a_b", "a/b", "ü", "é", ".hidden", "_hidden"]
    paths = [default_checkpoint(url, n) for n in names]
    assert len(set(paths)) == len(names)
    assert all(p.parent == tmp_path and not p.name.startswith(".") for p in paths)
    assert paths[1].name == "s.a_b.supernet.pt"  # a name kept as it is: the name it had
    # The storage file's own name too.
    assert default_checkpoint(f"sqlite:///{tmp_path}/x y.db", "s") != default_checkpoint(
        f"sqlite:///{tmp_path}/x_y.db", "s"
    )


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--eval-batches", "1000000000"),
        ("--batch-size", "1000000000"),
        ("--bptt", "1000000000"),
        ("--train-steps", "1e12"),
    ],
)
def test_sizes_that_reach_an_allocation_are_bounded(
    flag: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from optuna_enas.cli import main

    args = ["search", "--storage", f"sqlite:///{tmp_path}/b.db", "--n-nodes", "3"]
    assert main([*args, "--hidden-size", "8", flag, value]) == 2
    err = capsys.readouterr().err
    assert flag in err and value.replace("1e12", "1000000000000.0") in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("kind", "key"), [("rnn", "n_nodes"), ("macro", "n_layers")])
def test_an_architecture_file_with_a_huge_space_is_refused_before_it_is_built(
    kind: str, key: str, tmp_path: Path
) -> None:
    import json

    from optuna_enas import MacroSpace
    from optuna_enas import RNNCellSpace
    from optuna_enas import export_architecture
    from optuna_enas import import_architecture

    space = RNNCellSpace(n_nodes=3) if kind == "rnn" else MacroSpace(n_layers=3)
    arch = space.sample_uniform(np.random.default_rng(0))
    path = export_architecture(arch, space, tmp_path / "a.json")
    data = json.loads(path.read_text())
    data["space"][key] = 10**7
    del data["architecture"]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=rf"data\['{key}'\].*10000000"):
        import_architecture(path)


def test_a_tiny_cifar_batch_of_shared_references_is_refused_without_expanding_it(
    tmp_path: Path,
) -> None:
    import pickle
    import tracemalloc

    from optuna_enas.data._images import _read_cifar_batch

    n = 5000  # np.asarray would build 5000 x 3072 int64 (123 MB) from a ~12 kB file
    row = [0] * 3072
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": [row] * n, b"labels": [0] * n}, protocol=2))
    assert path.stat().st_size < 50_000
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="'data' must be a uint8 array"):
            _read_cifar_batch(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000


def test_derive_and_rank_check_never_write_into_a_search_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import optuna

    from optuna_enas.cli import main

    url = f"sqlite:///{tmp_path}/s.db"
    tiny = ["--n-nodes", "3", "--hidden-size", "8", "--batch-size", "8", "--bptt", "8"]
    for name in ("a", "a-derive"):
        assert (
            main(["search", "--storage", url, *tiny, "--trials", "2", "--study-name", name]) == 0
        )
    capsys.readouterr()
    assert main(["derive", "--storage", url, "--study-name", "a", "--n-samples", "2"]) == 2
    assert "'a-derive' is a search study" in capsys.readouterr().err
    args = ["rank-check", "--storage", url, "--study-name", "a", "--n-archs", "2"]
    assert main([*args, "--run-name", "a-derive", "--epochs", "1"]) == 2
    assert "--run-name 'a-derive' is a search study" in capsys.readouterr().err
    for name in ("a", "a-derive"):
        assert len(optuna.load_study(study_name=name, storage=url).trials) == 2


def test_a_journal_damaged_before_its_last_line_and_a_checkpoint_missing_a_key_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from optuna_enas.cli import main
    from optuna_enas.cli._storage import default_checkpoint

    tiny = ["--n-nodes", "3", "--hidden-size", "8", "--batch-size", "8", "--bptt", "8"]
    log = tmp_path / "s.log"
    assert main(["search", "--storage", str(log), *tiny, "--trials", "2"]) == 0
    lines = log.read_bytes().split(b"\n")
    damaged = lines[:3] + [lines[3][:-5]] + lines[4:]  # line 4 of many: not the last
    log.write_bytes(b"\n".join(damaged))
    capsys.readouterr()
    assert main(["search", "--storage", str(log), *tiny, "--trials", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "line 4 of the journal" in err and str(log) in err

    db = tmp_path / "c.db"
    url = f"sqlite:///{db}"
    assert main(["search", "--storage", url, *tiny, "--trials", "2"]) == 0
    checkpoint = default_checkpoint(url, "enas-rnn-enas")
    state = torch.load(checkpoint, weights_only=True)
    key = sorted(state)[0]
    del state[key]
    torch.save(state, checkpoint)
    capsys.readouterr()
    assert main(["search", "--storage", url, *tiny, "--trials", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(checkpoint) in err and "cannot be resumed" in err


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"n_eval_batches": 10**9}, "n_eval_batches"), ({"batch_size": 10**9}, "batch_size")],
)
def test_the_python_api_bounds_the_same_sizes(kwargs: dict[str, int], name: str) -> None:
    from optuna_enas import RNNCellSpace
    from optuna_enas import SupernetEvaluator

    with pytest.raises(ValueError, match=rf"{name} must be an integer in \[1, "):
        SupernetEvaluator(RNNCellSpace(n_nodes=3), seed=0, **kwargs)
