"""Tests of atomic checkpoints (``optuna_enas.training._checkpoint``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import torch

from optuna_enas.training import _checkpoint
from optuna_enas.training._checkpoint import load_checkpoint
from optuna_enas.training._checkpoint import save_checkpoint
from optuna_enas.training._checkpoint import upload_checkpoint


def _state() -> dict[str, Any]:
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    rng = np.random.default_rng(5)
    rng.random(3)
    return {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "position": 17,
        "numpy_rng": rng.bit_generator.state,
        "torch_rng": torch.Generator().manual_seed(3).get_state(),
        "nested": {"credit": (1, 5), "name": "x", "none": None},
    }


def test_save_load_round_trip(tmp_path: Path) -> None:
    state = _state()
    path = save_checkpoint(state, tmp_path / "sub" / "ck.pt")
    assert path == tmp_path / "sub" / "ck.pt"
    loaded = load_checkpoint(path)
    assert set(loaded) == set(state)
    for k, v in state["model"].items():
        assert torch.equal(loaded["model"][k], v)
    assert loaded["optimizer"]["param_groups"] == state["optimizer"]["param_groups"]
    for k, v in state["optimizer"]["state"].items():
        assert torch.equal(
            loaded["optimizer"]["state"][k]["momentum_buffer"], v["momentum_buffer"]
        )
    assert loaded["position"] == 17
    assert loaded["numpy_rng"] == state["numpy_rng"]
    assert torch.equal(loaded["torch_rng"], state["torch_rng"])
    assert loaded["nested"] == state["nested"]
    assert [p.name for p in path.parent.iterdir()] == ["ck.pt"]  # no temp file left


def test_save_checkpoint_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "ck.pt"
    save_checkpoint({"v": 1}, path)
    save_checkpoint({"v": 2}, path)
    assert load_checkpoint(path) == {"v": 2}


def test_save_checkpoint_reserved_key_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="format"):
        save_checkpoint({"format": 1}, tmp_path / "ck.pt")


def test_load_checkpoint_missing_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")


@pytest.mark.parametrize("kind", ["garbage", "truncated", "foreign", "future"])
def test_load_checkpoint_corrupt_raises_value_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "ck.pt"
    if kind == "garbage":
        path.write_bytes(b"\x00garbage" * 10)
    elif kind == "truncated":
        save_checkpoint(_state(), path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "foreign":
        torch.save({"weights": torch.zeros(2)}, path)
    else:
        torch.save({"format": _checkpoint.FORMAT, "version": _checkpoint.VERSION + 1}, path)
    with pytest.raises(ValueError, match=r"path=.*ck\.pt"):
        load_checkpoint(path)


def test_load_checkpoint_refuses_arbitrary_objects(tmp_path: Path) -> None:
    path = tmp_path / "ck.pt"
    torch.save({"format": _checkpoint.FORMAT, "version": 1, "obj": _Opaque()}, path)
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(path)


class _Opaque:
    pass


def test_exception_during_write_keeps_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ck.pt"
    save_checkpoint({"v": torch.ones(4)}, path)

    real_save = torch.save

    def crashing_save(obj: object, f: Any) -> None:
        real_save(obj, f)
        f.truncate(10)  # a torn write ...
        raise OSError("disk full")  # ... then the crash

    monkeypatch.setattr(torch, "save", crashing_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"v": torch.zeros(4)}, path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["v"], torch.ones(4))
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]


_WRITER = textwrap.dedent(
    """
    import sys
    import torch
    from optuna_enas.training._checkpoint import save_checkpoint

    path = sys.argv[1]
    i = 0
    while True:
        save_checkpoint({"i": i, "w": torch.full((2_000_000,), float(i))}, path)
        print(i, flush=True)
        i += 1
    """
)


def test_kill_mid_write_leaves_a_loadable_checkpoint(tmp_path: Path) -> None:
    # The writer saves 8 MB checkpoints in a loop, so a kill lands inside a write almost always.
    path = tmp_path / "ck.pt"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    with subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, env=env, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            for _ in range(3):
                proc.stdout.readline()  # complete checkpoints
            time.sleep(0.011)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
    state = load_checkpoint(path)
    assert state["i"] >= 2
    assert torch.all(state["w"] == float(state["i"]))


def test_upload_checkpoint_to_artifact_store(tmp_path: Path) -> None:
    from optuna.artifacts import FileSystemArtifactStore
    from optuna.artifacts import download_artifact

    path = save_checkpoint({"v": torch.arange(3)}, tmp_path / "ck.pt")
    store_dir = tmp_path / "artifacts"
    store_dir.mkdir()
    store = FileSystemArtifactStore(str(store_dir))
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/s.db")
    artifact_id = upload_checkpoint(path, artifact_store=store, study_or_trial=study)
    out = tmp_path / "downloaded.pt"
    download_artifact(artifact_store=store, artifact_id=artifact_id, file_path=str(out))
    assert torch.equal(load_checkpoint(out)["v"], torch.arange(3))
    with pytest.raises(FileNotFoundError, match="missing"):
        upload_checkpoint(tmp_path / "missing.pt", artifact_store=store, study_or_trial=study)
