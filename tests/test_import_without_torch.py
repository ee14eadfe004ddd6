"""``import optuna_enas`` and the spaces work where torch cannot be imported.

Each check runs in a fresh interpreter whose import system refuses ``torch`` (a meta path
finder raises ``ModuleNotFoundError`` for it), which is what an environment without torch
sees. The torch-backed names still fail, with the ``ModuleNotFoundError`` that names torch.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


_BLOCK_TORCH = """
import importlib.abc, sys

class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoTorch())
"""


def _run(code: str) -> subprocess.CompletedProcess[str]:
    script = _BLOCK_TORCH + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )


def test_package_spaces_configs_and_cli_parser_import_without_torch() -> None:
    result = _run(
        """
        import optuna
        import optuna_enas
        from optuna_enas import (
            PRESETS, ControllerConfig, MacroSpace, MicroSpace, RNNCellSpace, TrialMirror,
            TrainingConfig, perplexity_reward, space_from_dict, suggest_architecture,
        )
        from optuna_enas.spaces._kinds import kind_of
        from optuna_enas.training._optim import OptimConfig
        from optuna_enas.cli._parser import build_parser

        space = RNNCellSpace(n_nodes=4)
        trial = optuna.trial.FixedTrial({d.name: d.choices[0] for d in space.decisions})
        arch = suggest_architecture(trial, space, record=False)
        assert space_from_dict(space.to_dict()) == space
        assert space.from_fixed_arc(space.to_fixed_arc(arch)) == arch
        assert len(MicroSpace(n_nodes=2)) == 16 and len(MacroSpace(n_layers=3)) > 0
        assert ControllerConfig.from_preset("enas-official-ptb").lstm_size == 100
        assert kind_of(space).direction == "minimize"
        assert OptimConfig.for_kind("rnn").grad_clip == 0.25
        assert TrainingConfig() == TrainingConfig()
        assert build_parser().parse_args(["search", "--space", "micro"]).space == "micro"
        assert "ENASSampler" in dir(optuna_enas)
        assert "torch" not in sys.modules, "torch was imported"
        print("ok", optuna_enas.__version__)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok ")


def test_torch_backed_names_fail_naming_torch() -> None:
    result = _run(
        """
        import optuna_enas
        try:
            optuna_enas.ENASSampler
        except ModuleNotFoundError as e:
            print("missing", e.name)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "missing torch"


def test_unknown_attribute_is_an_attribute_error() -> None:
    import optuna_enas

    try:
        optuna_enas.NoSuchThing  # noqa: B018
    except AttributeError as e:
        assert "NoSuchThing" in str(e)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")
