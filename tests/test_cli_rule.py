"""``--rule``: the ENAS controller's learning rule is chosen once per study and kept on resume."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from optuna_enas.cli import main
from optuna_enas.cli._storage import CONFIG_ATTR


_TINY = ["--n-nodes", "3", "--hidden-size", "8", "--batch-size", "8", "--bptt", "8"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _search(db: Path, *extra: str) -> int:
    return main(["search", "--storage", f"sqlite:///{db}", *_TINY, *extra])


def _config(db: Path) -> dict:  # type: ignore[type-arg]
    study = optuna.load_study(study_name="enas-rnn-enas", storage=f"sqlite:///{db}")
    return dict(study.user_attrs[CONFIG_ATTR])


def test_rule_is_stored_kept_on_resume_and_a_different_one_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "r.db"
    assert _search(db, "--trials", "3", "--rule", "reinforce") == 0
    assert _config(db)["rule"] == "reinforce"
    assert _search(db, "--trials", "4") == 0  # no --rule: the study's own
    assert _config(db)["rule"] == "reinforce"
    capsys.readouterr()
    assert _search(db, "--trials", "5", "--rule", "elite") == 2
    err = capsys.readouterr().err
    assert "--rule elite disagrees with the study" in err and "--rule reinforce" in err


def test_default_rule_and_presets(tmp_path: Path) -> None:
    from optuna_enas.sampler._sampler import DEFAULT_RULE

    assert _search(tmp_path / "a.db", "--trials", "2") == 0
    assert _config(tmp_path / "a.db")["rule"] == DEFAULT_RULE
    assert _search(tmp_path / "b.db", "--trials", "2", "--preset", "enas-official-ptb") == 0
    assert _config(tmp_path / "b.db")["rule"] == "reinforce"  # the ENAS presets are REINFORCE's


def test_a_study_from_before_rule_resumes_with_reinforce(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    assert _search(db, "--trials", "2") == 0
    study = optuna.load_study(study_name="enas-rnn-enas", storage=f"sqlite:///{db}")
    old = dict(study.user_attrs[CONFIG_ATTR])
    del old["rule"]  # as written before --rule existed
    study.set_user_attr(CONFIG_ATTR, old)
    assert _search(db, "--trials", "3") == 0
    assert "rule" not in _config(db)
    from optuna_enas.cli._search import resolve_rule

    class _Args:
        rule = None

    assert resolve_rule(_Args(), "enas", None, old) == "reinforce"  # type: ignore[arg-type]
