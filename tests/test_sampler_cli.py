"""``--preset`` and ``--controller-lr`` of ``optuna-enas search`` and ``compare``."""

from __future__ import annotations

import pytest

from optuna_enas.cli._errors import UsageError
from optuna_enas.cli._parser import build_parser
from optuna_enas.cli._search import _controller_config
from optuna_enas.cli._search import _make_sampler
from optuna_enas.sampler import ControllerConfig
from optuna_enas.spaces import RNNCellSpace


@pytest.mark.parametrize("command", ["search", "compare"])
def test_preset_and_controller_lr_reach_the_sampler(command: str) -> None:
    parser = build_parser()
    args = parser.parse_args(
        [command, "--preset", "enas-official-ptb", "--controller-lr", "0.005"]
    )
    config = _controller_config(args)
    assert config == ControllerConfig.from_preset("enas-official-ptb", learning_rate=0.005)
    sampler = _make_sampler("enas", RNNCellSpace(n_nodes=3), 0, 0, controller=config)
    assert sampler.config == config
    assert _controller_config(parser.parse_args([command])) is None
    lr_only = _controller_config(parser.parse_args([command, "--controller-lr", "0.1"]))
    assert lr_only == ControllerConfig(learning_rate=0.1)


def test_bad_controller_flags_are_usage_errors() -> None:
    parser = build_parser()
    with pytest.raises(UsageError, match="--controller-lr"):
        _controller_config(parser.parse_args(["search", "--controller-lr", "-1"]))
    with pytest.raises(SystemExit):
        parser.parse_args(["search", "--preset", "enas-v9"])
