"""The ``optuna-enas`` command: search, resume, compare, derive, retrain, export, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch

from optuna_enas import RNNCellSpace
from optuna_enas import import_architecture
from optuna_enas.cli import main
from optuna_enas.cli._storage import CONFIG_ATTR
from optuna_enas.data import load_corpus


_REPO = Path(__file__).resolve().parents[1]
# Three RNN nodes, 8 hidden units, 8x8 minibatches: about 0.1 s per trial on a laptop CPU.
_TINY = ["--n-nodes", "3", "--hidden-size", "8", "--batch-size", "8", "--bptt", "8"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _search(db: Path, *extra: str) -> int:
    return main(["search", "--storage", f"sqlite:///{db}", *_TINY, *extra])


def _study(db: Path, name: str = "enas-rnn-enas") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{db}")


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 4-trial ENAS search (read-only for the tests that use it)."""
    db = tmp_path_factory.mktemp("searched") / "s.db"
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert _search(db, "--trials", "4") == 0
    finally:
        torch.set_num_threads(n)
    return db


def test_search_resume_continues_the_same_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "s.db"
    assert _search(db, "--trials", "3") == 0
    out = capsys.readouterr().out
    assert "best architecture:" in out and "fixed_arc:" in out
    assert f"dashboard: optuna-enas dashboard --storage sqlite:///{db}" in out
    ckpt = tmp_path / "s.enas-rnn-enas.supernet.pt"  # <storage stem>.<study>
    assert ckpt.is_file()
    assert torch.load(ckpt, weights_only=True)["n_calls"] == 3

    assert _search(db, "--trials", "5") == 0  # the same command with a larger target
    err = capsys.readouterr().err
    assert "resuming at 3 trials" in err
    summaries = optuna.get_all_study_summaries(f"sqlite:///{db}")
    assert [s.study_name for s in summaries] == ["enas-rnn-enas"]
    study = _study(db)
    trials = study.get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert study.metric_names == ["valid ppl"]  # the dashboard's axis, not "Objective 0"
    assert all("architecture" in t.user_attrs for t in trials)
    # The resumed ENASSampler replayed trials 0-2 and learned from 3-4.
    assert all("enas:stats" in t.system_attrs for t in trials)
    assert torch.load(ckpt, weights_only=True)["n_calls"] == 5
    assert study.user_attrs[CONFIG_ATTR]["space"] == RNNCellSpace(n_nodes=3).to_dict()

    assert _search(db, "--trials", "5") == 0  # target reached: nothing to do
    assert len(_study(db).get_trials()) == 5


def test_search_resume_with_other_options_is_refused(
    searched: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _search(searched, "--trials", "6", "--seed", "1") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--seed" in err and "enas-rnn-enas" in err
    assert len(_study(searched).get_trials()) == 4
    assert _search(searched, "--trials", "6", "--hidden-size", "16") == 2
    err = capsys.readouterr().err
    # The option is named, with its old and new value (not two dicts).
    assert "was created with --hidden-size 8 (now 16);" in err and "{" not in err
    assert len(_study(searched).get_trials()) == 4


def test_export_writes_json_and_fixed_arc(
    searched: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "best.json"
    assert main(["export", "--storage", f"sqlite:///{searched}", "--output", str(out)]) == 0
    stdout = capsys.readouterr().out
    data = json.loads(out.read_text())
    fixed_arc = (tmp_path / "best.fixed_arc").read_text().strip()
    assert data["fixed_arc"] == fixed_arc
    assert f"fixed_arc: {fixed_arc}" in stdout
    arch, space = import_architecture(out)
    best = _study(searched).best_trial
    assert space == RNNCellSpace(n_nodes=3)
    assert arch.to_params() == best.params
    assert space.to_fixed_arc(arch) == fixed_arc


def test_derive_and_retrain(
    searched: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{searched}"
    assert (
        main(["derive", "--storage", url, "--n-samples", "3", "--top-k", "2", "--no-record"]) == 0
    )
    out = capsys.readouterr().out
    assert "| rank | ppl | trial |" in out and "fixed_arc (rank 0):" in out
    assert len(_study(searched).get_trials()) == 4  # --no-record

    model = tmp_path / "model.pt"
    args = ["retrain", "--storage", url, "--epochs", "1", "--steps-per-epoch", "2"]
    assert main([*args, "--save-model", str(model)]) == 0
    out = capsys.readouterr().out
    assert "test ppl" in out
    summary = _study(searched).user_attrs["enas:retrain"]
    vocab = load_corpus(None).vocab_size  # the embedded corpus the search used
    assert summary["epochs"] == 1 and 0.3 * vocab < summary["test"] < 1.5 * vocab
    assert "state_dict" in torch.load(model, weights_only=True)
    # A second retrain keeps the first result: enas:retrain:0, :1; enas:retrain is the latest.
    assert main([*args, "--seed", "1"]) == 0
    attrs = _study(searched).user_attrs
    assert attrs["enas:retrain:0"] == summary
    assert (
        attrs["enas:retrain:1"]["seed"] == 1 and attrs["enas:retrain"] == attrs["enas:retrain:1"]
    )


def test_compare_writes_plot_table_and_dashboard_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/c.db"
    out_dir = tmp_path / "cmp"
    args = ["compare", "--storage", url, *_TINY, "--trials", "2", "--seeds", "0", "1"]
    assert main([*args, "--samplers", "enas", "random", "--output-dir", str(out_dir)]) == 0
    stdout = capsys.readouterr().out
    assert "| enas | 2 |" in stdout and "| random (weight sharing) | 2 |" in stdout
    assert (out_dir / "results.md").read_text().startswith("Space `rnn`")
    assert (out_dir / "best_so_far.svg").read_text().startswith("<svg")
    assert (out_dir / "best_so_far.html").is_file()
    rows = json.loads((out_dir / "results.json").read_text())
    assert sorted((r["sampler"], r["seed"]) for r in rows) == [
        ("enas", 0),
        ("enas", 1),
        ("random", 0),
        ("random", 1),
    ]
    study = optuna.load_study(study_name="compare-rnn-random-seed1", storage=url)
    attrs = study._storage.get_study_system_attrs(study._study_id)
    assert any(k.startswith("dashboard:plot_data:enas-compare:") for k in attrs)
    assert any(k.startswith("artifacts:") for k in attrs)  # the SVG, a study artifact


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["search", "--space", "foo"], "--space"),
        (["search", "--data", "/no/such/corpus"], "--data '/no/such/corpus'"),
        (["search", "--storage", "sqlite:////no/such/dir/x.db"], "--storage"),
        (["search", "--storage", "not-a-url.txt"], "--storage 'not-a-url.txt'"),
        (["search", "--trials", "0"], "--trials"),
        (["search", "--n-layers", "3"], "--n-layers"),
        (["dashboard", "--storage", "sqlite:////no/such/dir/x.db"], "--storage"),
        (["export", "--storage", "{db}", "--study-name", "nope"], "--study-name 'nope'"),
        (["export", "--storage", "{db}", "--trial", "99"], "--trial 99"),
        (["search", "--checkpoint", "/dev/null/ckpt.pt"], "--checkpoint '/dev/null/ckpt.pt'"),
        (["search", "--artifact-dir", "/dev/null/art"], "--artifact-dir '/dev/null/art'"),
        (["search", "--seed", "4294967296"], "--seed must be an integer in [0, 4294967295]"),
        (["search", "--trials", str(10**20)], "--trials must be an integer in [1, 10000000]"),
        (["search", "--n-nodes", "100000000"], "--n-nodes 100000000"),
        (["search", "--hidden-size", "10000000"], "--hidden-size 10000000"),
        (["search", "--study-name", "x" * 600], "--study-name must be 1 to 128"),
        (["search", "--study-name", "a\nb"], "--study-name must be 1 to 128"),
        (["compare", "--seeds", "4294967296"], "--seeds"),
        (["compare", "--output-dir", "/dev/null/cmp"], "--output-dir '/dev/null/cmp'"),
        (["derive", "--storage", "{db}", "--n-samples", "100000000"], "--n-samples"),
        (["retrain", "--storage", "{db}", "--seed", "-1"], "--seed"),
        (["search", "--storage", "postgresql://u@127.0.0.1:1/x"], "127.0.0.1"),
        (["search", "--controller-lr", "-1"], "--controller-lr"),
    ],
    ids=[
        "unknown-space",
        "missing-data",
        "unreachable-storage",
        "storage-not-url",
        "zero-trials",
        "n-layers-for-rnn",
        "dashboard-missing-db",
        "unknown-study",
        "unknown-trial",
        "checkpoint-not-writable",
        "artifact-dir-not-writable",
        "seed-above-numpy-range",
        "trials-unbounded",
        "n-nodes-out-of-memory",
        "hidden-size-out-of-memory",
        "study-name-600-chars",
        "study-name-newline",
        "compare-seed-above-range",
        "compare-output-dir-not-writable",
        "derive-n-samples-unbounded",
        "retrain-negative-seed",
        "plain-postgresql-url-uses-installed-driver",
        "controller-lr-negative",
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str],
    needle: str,
    searched: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("{db}", f"sqlite:///{searched}") for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("optuna-enas")
    assert needle in err and "Traceback" not in err
    assert "No module named" not in err  # postgresql:// goes to the installed driver
    assert list(tmp_path.iterdir()) == []  # no database or checkpoint was created
    assert [s.study_name for s in optuna.get_all_study_summaries(f"sqlite:///{searched}")] == [
        "enas-rnn-enas"
    ]


def test_cli_runs_as_a_subprocess(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(_REPO), "OMP_NUM_THREADS": "1"}
    db = tmp_path / "p.db"
    cmd = [sys.executable, "-m", "optuna_enas.cli", "--threads", "1", "search"]
    cmd += ["--storage", f"sqlite:///{db}"]
    run = subprocess.run(
        [*cmd, *_TINY, "--trials", "2", "--sampler", "random"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "fixed_arc:" in run.stdout
    assert len(_study(db, "enas-rnn-random").get_trials()) == 2

    bad = subprocess.run(
        [sys.executable, "-m", "optuna_enas", "search", "--data", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "--data" in bad.stderr
    assert not (tmp_path / "optuna-enas.db").exists()  # nothing was created
