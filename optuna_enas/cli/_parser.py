"""The argument parser of ``optuna-enas``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING
from typing import NoReturn

from optuna_enas.cli._compare import _cmd_compare
from optuna_enas.cli._dashboard_cmd import _cmd_dashboard
from optuna_enas.cli._errors import PROG
from optuna_enas.cli._final import _cmd_derive
from optuna_enas.cli._final import _cmd_export
from optuna_enas.cli._final import _cmd_retrain
from optuna_enas.cli._options import METHODS
from optuna_enas.cli._options import SPACES
from optuna_enas.cli._rank_check import add_rank_check_parser
from optuna_enas.cli._search import _cmd_search
from optuna_enas.cli._storage import DEFAULT_STORAGE
from optuna_enas.sampler._config import PRESETS


if TYPE_CHECKING:
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, no usage block
        self.exit(2, f"{self.prog}: error: {message}\n")


def _search_handler(args: argparse.Namespace) -> int:
    """``search``: a built-in space, or your own model with ``--model`` (optuna_enas.nn)."""
    if getattr(args, "model", None) is not None:
        from optuna_enas.cli._user_model import cmd_search_model

        return cmd_search_model(args)
    return _cmd_search(args)


def _compare_handler(args: argparse.Namespace) -> int:
    """``compare``: a built-in space, or your own model with ``--model``."""
    if getattr(args, "model", None) is not None:
        from optuna_enas.cli._user_model import cmd_compare_model

        return cmd_compare_model(args)
    return _cmd_compare(args)


def _add_storage(p: argparse.ArgumentParser, *, study: bool = True) -> None:
    p.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        help=f"Optuna storage URL, or a journal file path *.log (default: {DEFAULT_STORAGE})",
    )
    if study:
        p.add_argument("--study-name", default=None, help="study name")


def _add_search_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--space", choices=SPACES, default="rnn", help="ENAS search space (default rnn)"
    )
    p.add_argument(
        "--data",
        default=None,
        help="rnn: a directory with train/valid/test.txt (PTB format); macro/micro: a "
        "cifar-10-batches-py directory (default: embedded synthetic corpus / digits)",
    )
    p.add_argument(
        "--model",
        default=None,
        help="your own model instead of --space: MODULE:FACTORY returning an nn.Module with "
        "optuna_enas.nn choices or a Supernet; --data is then MODULE:FACTORY returning "
        "(train_loader, valid_loader) or a dict of ModelEvaluator arguments",
    )
    p.add_argument("--n-nodes", type=int, default=None, help="rnn/micro: nodes per cell (6/3)")
    p.add_argument("--n-layers", type=int, default=None, help="macro: layers (default 6)")
    c = p.add_argument_group("controller (enas sampler)")
    c.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="controller preset: 'default' (ours, tuned for Optuna budgets) or an ENAS one "
        "with the paper's exact math (default: default)",
    )
    c.add_argument(
        "--controller-lr", type=float, default=None, help="controller Adam learning rate"
    )
    c.add_argument(
        "--rule",
        choices=("elite", "reinforce"),
        default=None,
        help="how the controller learns: 'elite' (refit on the best of the whole history; the "
        "default) or 'reinforce' (ENAS's policy gradient; always with --preset). A resumed "
        "study keeps the rule it was created with",
    )
    g = p.add_argument_group("evaluator (shared-weight supernet; small CPU defaults)")
    g.add_argument("--hidden-size", type=int, default=32, help="rnn: embedding/hidden size (32)")
    g.add_argument("--n-filters", type=int, default=8, help="macro/micro: channels (even; 8)")
    g.add_argument("--n-cells", type=int, default=2, help="micro: normal cells in the net (2)")
    g.add_argument("--batch-size", type=int, default=32, help="training minibatch size (32)")
    g.add_argument("--bptt", type=int, default=20, help="rnn: truncated BPTT length (20)")
    g.add_argument(
        "--train-steps", type=float, default=1.0, help="shared-weight SGD steps per trial (1)"
    )
    g.add_argument("--eval-batches", type=int, default=1, help="validation batches per trial (1)")
    g.add_argument("--lr", type=float, default=None, help="SGD learning rate (per-space default)")
    g.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda:0 (auto)")
    g.add_argument(
        "--artifact-dir",
        default=None,
        help="artifact directory for the dashboard (default: <db name>-artifacts next to it)",
    )
    g.add_argument(
        "--figures-every", type=int, default=10, help="refresh dashboard figures every N trials"
    )
    g.add_argument(
        "--log-every", type=int, default=10, help="progress line every N trials (no TTY)"
    )
    o = p.add_argument_group(
        "one-shot methods (darts, dsonas): budget = --trials x --train-steps weight steps"
    )
    o.add_argument(
        "--oneshot-epochs",
        type=int,
        default=10,
        help="epochs the budget is cut into; one recorded trial per epoch (10)",
    )
    o.add_argument(
        "--darts-order",
        type=int,
        default=1,
        help="DARTS: 1 (first order, the official train_search.py default) or 2 (unrolled) (1)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``optuna-enas``."""
    from optuna_enas import __version__

    parser = _Parser(
        prog=PROG,
        description="ENAS neural architecture search on Optuna.",
        epilog=f"Run `{PROG} COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--verbose", action="store_true", help="log Optuna's per-trial lines")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's choice; 1 is often faster for small models)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("search", help="run (or resume) an architecture search")
    _add_storage(p)
    _add_search_options(p)
    p.add_argument(
        "--sampler", choices=METHODS, default="enas", help="sampler or one-shot method (enas)"
    )
    p.add_argument("--trials", type=int, default=50, help="target number of trials (50)")
    p.add_argument("--seed", type=int, default=0, help="seed of sampler and evaluator (0)")
    p.add_argument("--checkpoint", default=None, help="supernet checkpoint path")
    p.set_defaults(handler=_search_handler)

    p = sub.add_parser(
        "compare", help="ENAS vs random-WS vs TPE (vs DARTS, DSO-NAS) at one budget, several seeds"
    )
    _add_storage(p, study=False)
    _add_search_options(p)
    p.add_argument(
        "--samplers",
        nargs="+",
        choices=METHODS,
        default=["enas", "random", "tpe"],
        help="samplers and one-shot methods to compare (enas random tpe)",
    )
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds (0 1 2)")
    p.add_argument("--trials", type=int, default=30, help="trials per run (30)")
    p.add_argument("--study-prefix", default=None, help="default compare-<space>")
    p.add_argument("--output-dir", default=None, help="plots and tables (default: the prefix)")
    p.add_argument(
        "--retrain-epochs",
        type=int,
        default=0,
        help="also train each run's final architecture from scratch for N epochs (0: off)",
    )
    p.set_defaults(handler=_compare_handler)

    p = sub.add_parser("derive", help="score candidate architectures on the full validation set")
    _add_storage(p)
    p.add_argument("--n-samples", type=int, default=100, help="candidates (ENAS-pytorch: 100)")
    p.add_argument("--top-k", type=int, default=5, help="how many to list (5)")
    p.add_argument("--seed", type=int, default=None, help="seed of the controller's samples")
    p.add_argument("--checkpoint", default=None, help="supernet checkpoint (from the study)")
    p.add_argument("--device", default=None, help="torch device (auto)")
    p.add_argument("--no-record", action="store_true", help="do not add the scores as trials")
    p.set_defaults(handler=_cmd_derive)

    p = sub.add_parser("retrain", help="train one architecture from scratch, report test metric")
    _add_storage(p)
    p.add_argument("--trial", type=int, default=None, help="trial number (default: best)")
    p.add_argument("--arch-file", default=None, help="an architecture JSON from `export`")
    p.add_argument("--epochs", type=int, default=3, help="epochs (3)")
    p.add_argument("--steps-per-epoch", type=int, default=None, help="default: a full pass")
    p.add_argument("--seed", type=int, default=0, help="seed (0)")
    p.add_argument("--device", default=None, help="torch device (auto)")
    p.add_argument("--save-model", default=None, help="write the trained weights here")
    p.set_defaults(handler=_cmd_retrain)

    p = sub.add_parser("export", help="write the best architecture as JSON and fixed_arc")
    _add_storage(p)
    p.add_argument("--trial", type=int, default=None, help="trial number (default: best)")
    p.add_argument("--output", default=None, help="JSON path (default <study>.arch.json)")
    p.set_defaults(handler=_cmd_export)

    add_rank_check_parser(sub)

    p = sub.add_parser("dashboard", help="start optuna-dashboard with the artifact store")
    _add_storage(p, study=False)
    p.add_argument("--artifact-dir", default=None, help="default: <db name>-artifacts")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.set_defaults(handler=_cmd_dashboard)
    return parser
