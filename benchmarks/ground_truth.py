"""Ground truth for ranking fidelity (issue #11): many architectures trained from scratch.

Each architecture of a reduced space is trained from scratch with one fixed budget by
:class:`~optuna_enas.StandaloneEvaluator`, one Optuna trial per (architecture, seed):

- ``rnn``: ``RNNCellSpace(n_nodes=6)`` on a prefix of Penn Treebank (``../shared/data/ptb``),
  scored by perplexity on a fixed slice of the validation split;
- ``micro``: ``MicroSpace(n_nodes=3)`` on scikit-learn's digits, scored by validation accuracy.

Architectures are drawn uniformly with a fixed seed and kept distinct on a canonical form
(RNN: the cell as an unordered rooted tree of activations, so relabelled copies of one cell
count once; micro: the two inputs of each block as an unordered pair). The first
``n_two_seeds`` architectures are also trained with a second seed: their seed-to-seed Kendall
tau is the noise floor any cheaper ranking (a shared-weight supernet) should be compared to.

The model, data and training settings live in ``RNN_CONFIG`` / ``MICRO_CONFIG`` below, and are
copied into the exported JSON, so a later supernet measurement can use exactly the same child
models and data slices (``from benchmarks.ground_truth import RNN_CONFIG, load_task_data``).

Runs are resumable: the study lives in a JournalStorage file (default directory ``/work/gt``,
``--state-dir`` or ``$GROUND_TRUTH_DIR``). Re-running ``run`` continues where it stopped, never
retrains a finished (architecture, seed) pair, and marks trials left RUNNING by a kill as FAIL
(they are retried). A lock file keeps one runner per task.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/ground_truth.py run --task all
    python benchmarks/ground_truth.py run --task rnn --max-minutes 30
    python benchmarks/ground_truth.py run --task all --wait  # queue behind a running runner
    python benchmarks/ground_truth.py status
    python benchmarks/ground_truth.py export     # benchmarks/results/ground_truth_<task>.json
    python benchmarks/ground_truth.py probe --task rnn --n-archs 8 --set n_steps_per_epoch=300

``probe`` trains a few architectures with two seeds outside any study (no storage) and prints
the time per run and the spread across architectures against the seed-to-seed difference; it
is how the budgets below were chosen.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import REPO  # noqa: E402
from benchmarks._common import RESULTS  # noqa: E402
from optuna_enas import Architecture  # noqa: E402
from optuna_enas import MicroSpace  # noqa: E402
from optuna_enas import RNNCellSpace  # noqa: E402
from optuna_enas import SearchSpace  # noqa: E402
from optuna_enas import StandaloneEvaluator  # noqa: E402
from optuna_enas import SupernetEvaluator  # noqa: E402
from optuna_enas.data import Corpus  # noqa: E402
from optuna_enas.data import ImageData  # noqa: E402
from optuna_enas.data import load_corpus  # noqa: E402
from optuna_enas.data import load_digits_dataset  # noqa: E402
from optuna_enas.data._corpus import EOS  # noqa: E402
from optuna_enas.data._corpus import UNK  # noqa: E402


DEFAULT_STATE_DIR = Path(os.environ.get("GROUND_TRUTH_DIR", "/work/gt"))
TASKS = ("rnn", "micro")
MAX_ATTEMPTS = 3  # failed tries of one (architecture, seed) before it is skipped
N_BOOTSTRAP = 2000

# -- the configuration: one dict per task, importable by other scripts -------------------------
# Chosen with ``probe`` on one CPU thread; see benchmarks/results/README-ground-truth.md.
RNN_CONFIG: dict[str, Any] = {
    "task": "rnn",
    "space": {"type": "rnn", "n_nodes": 6},  # default activations: tanh, ReLU, identity, sigmoid
    "data": {
        "corpus": "../shared/data/ptb",  # relative to the repository root
        # The vocabulary is cut to the most frequent words of the whole training file (ties:
        # first seen first), the rest mapped to <unk>: a 10000-word softmax costs ~10x the
        # cell on one CPU thread and tells nothing about the cell. Then each split is its
        # first N tokens.
        "vocab_size": 2000,
        "train_tokens": 400_000,  # >= 350 steps * 35 * 32: no token is seen twice
        "valid_tokens": 10_000,
        "test_tokens": 10_000,
    },
    "supernet_kwargs": {"embed_size": 32, "hidden_size": 32, "tie_weights": True},
    "n_epochs": 2,
    "n_steps_per_epoch": 175,
    "batch_size": 32,
    "bptt": 35,
    # The evaluator's RNN defaults, written out so the table states them.
    "optim": {"lr": 5.0, "grad_clip": 0.25, "momentum": 0.0, "weight_decay": 1e-7},
    "metric": "valid perplexity (whole valid slice, batch 10, hidden carried); lower is better",
    "direction": "minimize",
    "n_archs": 200,
    "n_two_seeds": 32,
    "seeds": [0, 1],
    "arch_seed": 20240611,
    "base_seed": 11,
}

MICRO_CONFIG: dict[str, Any] = {
    "task": "micro",
    "space": {"type": "micro", "n_nodes": 3},  # default ops (the five of ENAS Sec. 2.4)
    # A small training split (540 images) and a large validation split (898): with the whole
    # 1079-image training split every child reaches 96-97% and the ranking is seed noise.
    "data": {"dataset": "digits", "split_seed": 0, "valid_fraction": 0.5, "test_fraction": 0.2},
    "supernet_kwargs": {"n_filters": 16, "n_layers": 3},
    "n_epochs": 8,
    "n_steps_per_epoch": None,  # one pass over the training split: 540 // 64 = 8 steps
    "batch_size": 64,
    "bptt": 35,  # unused for images
    "optim": {"lr": 0.05, "grad_clip": 5.0, "momentum": 0.9, "weight_decay": 1e-4},
    "metric": "valid accuracy (whole valid split, 898 images); higher is better",
    "direction": "maximize",
    "n_archs": 100,
    "n_two_seeds": 32,
    "seeds": [0, 1],
    "arch_seed": 20240612,
    "base_seed": 12,
}

CONFIGS: dict[str, dict[str, Any]] = {"rnn": RNN_CONFIG, "micro": MICRO_CONFIG}


# -- space, data, architectures ----------------------------------------------------------------
def make_space(config: dict[str, Any]) -> SearchSpace:
    spec = config["space"]
    if spec["type"] == "rnn":
        return RNNCellSpace(n_nodes=spec["n_nodes"])
    return MicroSpace(n_nodes=spec["n_nodes"])


def load_task_data(config: dict[str, Any]) -> Corpus | ImageData:
    """The exact data of a task's configuration (PTB prefix slices, or the digits split)."""
    spec = config["data"]
    if config["space"]["type"] == "micro":
        return load_digits_dataset(
            seed=spec["split_seed"],
            valid_fraction=spec["valid_fraction"],
            test_fraction=spec["test_fraction"],
        )
    root = (REPO / spec["corpus"]).resolve()
    if not (root / "train.txt").is_file():
        sys.exit(f"PTB not found at {root} (expected train.txt, valid.txt, test.txt).")
    corpus = load_corpus(root)
    vocab, splits = corpus.vocab, {}
    for split in ("train", "valid", "test"):
        splits[split] = getattr(corpus, split)
    if spec["vocab_size"] is not None and spec["vocab_size"] < corpus.vocab_size:
        vocab, splits = _cut_vocab(corpus, spec["vocab_size"])
    splits = {s: t[: spec[f"{s}_tokens"]].clone() for s, t in splits.items()}
    name = f"{root} (top {len(vocab)} words, prefixes)"
    return Corpus(**splits, vocab=vocab, name=name)


def _cut_vocab(corpus: Corpus, size: int) -> tuple[tuple[str, ...], dict[str, torch.Tensor]]:
    """Keep the ``size`` most frequent training words (with <unk> and <eos>); others -> <unk>."""
    counts = torch.bincount(corpus.train, minlength=corpus.vocab_size).numpy()
    ranked = sorted(range(corpus.vocab_size), key=lambda i: (-counts[i], i))  # ties: first seen
    w2i = corpus.word_to_id()
    must = [w2i[w] for w in (UNK, EOS) if w in w2i]
    keep = must + [i for i in ranked if i not in must][: size - len(must)]
    keep.sort()  # new ids keep the first-seen order
    unk = len(keep) if UNK not in w2i else None
    old_to_new = torch.full((corpus.vocab_size,), -1, dtype=torch.int64)
    old_to_new[torch.tensor(keep)] = torch.arange(len(keep))
    vocab = tuple(corpus.vocab[i] for i in keep)
    if unk is not None:
        vocab += (UNK,)
    fill = int(old_to_new[w2i[UNK]]) if UNK in w2i else len(keep)
    old_to_new[old_to_new < 0] = fill
    splits = {s: old_to_new[getattr(corpus, s)] for s in ("train", "valid", "test")}
    return vocab, splits


def canonical(space: SearchSpace, arch: Architecture) -> str:
    """A form equal for architectures that compute the same family of functions."""
    p = arch.to_params()
    if isinstance(space, RNNCellSpace):
        # Node i > 0 reads exactly one earlier node: the cell is a tree rooted at node 0 and its
        # output averages the leaves, so only the unordered tree of activations matters.
        children: dict[int, list[int]] = {i: [] for i in range(space.n_nodes)}
        for i in range(1, space.n_nodes):
            children[int(p[f"node{i}_in"])].append(i)  # type: ignore[arg-type]

        def tree(i: int) -> str:
            sub = sorted(tree(c) for c in children[i])
            act = str(p[f"node{i}_act"])
            return act + ("(" + ",".join(sub) + ")" if sub else "")

        return tree(0)
    if isinstance(space, MicroSpace):
        cells = []
        for kind in ("normal", "reduce"):
            blocks = []
            for b in range(2, space.n_nodes + 2):
                pair = sorted(
                    f"{p[f'{kind}_b{b}_op{k}']}({p[f'{kind}_b{b}_in{k}']})" for k in (1, 2)
                )
                blocks.append("+".join(pair))
            cells.append(f"{kind}: " + " ".join(blocks))
        return " | ".join(cells)
    return space.to_fixed_arc(arch)


def draw_architectures(space: SearchSpace, config: dict[str, Any]) -> list[Architecture]:
    """``n_archs`` distinct (canonical form) uniform draws; the same list on every call."""
    rng = np.random.default_rng(config["arch_seed"])
    archs: list[Architecture] = []
    seen: set[str] = set()
    for _ in range(1000 * config["n_archs"]):
        arch = space.sample_uniform(rng)
        key = canonical(space, arch)
        if key not in seen:
            seen.add(key)
            archs.append(arch)
            if len(archs) == config["n_archs"]:
                return archs
    raise RuntimeError("could not draw enough distinct architectures.")


def plan(config: dict[str, Any]) -> list[tuple[int, int]]:
    """(architecture index, seed) pairs in run order: the two-seed ones first, interleaved."""
    first, second = config["seeds"]
    out: list[tuple[int, int]] = []
    for i in range(config["n_archs"]):
        out.append((i, first))
        if i < config["n_two_seeds"]:
            out.append((i, second))
    return out


def _model_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    """The child model, minibatch and optimizer of the ground truth, on the CPU."""
    return {
        "supernet_kwargs": config["supernet_kwargs"],
        "batch_size": config["batch_size"],
        "bptt": config["bptt"],
        "device": "cpu",
        **config["optim"],
    }


def make_evaluator(
    config: dict[str, Any], space: SearchSpace, data: Corpus | ImageData
) -> StandaloneEvaluator:
    return StandaloneEvaluator(
        space,
        data,
        n_epochs=config["n_epochs"],
        n_steps_per_epoch=config["n_steps_per_epoch"],
        seed=config["base_seed"],
        **_model_kwargs(config),
    )


def make_supernet_evaluator(
    config: dict[str, Any],
    space: SearchSpace,
    data: Corpus | ImageData,
    *,
    seed: int,
    **evaluator_kwargs: Any,
) -> SupernetEvaluator:
    """A shared-weight supernet of exactly the ground truth's child model, data and optimizer."""
    return SupernetEvaluator(space, data, seed=seed, **_model_kwargs(config), **evaluator_kwargs)


class _SeededTrial:
    """A trial whose ``number`` is the run's seed.

    StandaloneEvaluator seeds trial ``t`` with ``(seed, t.number)``; passing the replicate seed
    as the number makes a run's randomness depend on (base_seed, seed) only, not on the order or
    the retries of the trials. Everything else goes to the real trial.
    """

    def __init__(self, trial: optuna.Trial, number: int) -> None:
        self._trial = trial
        self.number = number

    def __getattr__(self, name: str) -> Any:
        return getattr(self._trial, name)


def train_one(evaluator: StandaloneEvaluator, trial: Any, seed: int) -> tuple[float, float, float]:
    """Train one run; returns (value, wall seconds, CPU seconds)."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = evaluator(_SeededTrial(trial, seed))  # type: ignore[arg-type]
    return float(value), time.perf_counter() - wall, time.process_time() - cpu


class _Recorder:
    """A stand-in trial for ``probe``: fixed params, records the per-epoch values."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.number = 0
        self.curve: list[float] = []

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self.params[name]

    def set_user_attr(self, key: str, value: Any) -> None:
        pass

    def report(self, value: float, step: int) -> None:
        self.curve.append(float(value))

    def should_prune(self) -> bool:
        return False


# -- study, storage, runner --------------------------------------------------------------------
def storage_path(state_dir: Path, task: str) -> Path:
    return state_dir / f"ground_truth_{task}.journal"


def open_study(state_dir: Path, task: str, create: bool) -> optuna.Study | None:
    path = storage_path(state_dir, task)
    if not create and not path.exists():
        return None
    state_dir.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(path)))
    name = f"ground_truth_{task}"
    kwargs: dict[str, Any] = {
        "study_name": name,
        "storage": storage,
        "sampler": optuna.samplers.RandomSampler(seed=0),  # every trial is enqueued anyway
        "pruner": optuna.pruners.NopPruner(),  # the evaluator reports per epoch: never prune
    }
    if create:
        return optuna.create_study(
            direction=CONFIGS[task]["direction"], load_if_exists=True, **kwargs
        )
    try:
        return optuna.load_study(**kwargs)
    except KeyError:
        return None


def _key(trial: Any) -> tuple[int, int] | None:
    attrs = trial.user_attrs
    if "arch_index" not in attrs or "seed" not in attrs:
        return None
    return int(attrs["arch_index"]), int(attrs["seed"])


@contextlib.contextmanager
def _runner_lock(state_dir: Path, task: str, wait: bool) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / f"ground_truth_{task}.lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                sys.exit(f"another runner holds {f.name}; one runner per task (or --wait).")
            _log(f"{task}: waiting for the runner that holds {f.name} to finish")
            fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield


def _log(msg: str) -> None:
    print(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {msg}", flush=True)


def software() -> dict[str, Any]:
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "optuna_enas"],
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        head, dirty = "", ""
    return {
        "git_head": head,
        "package_uncommitted_changes": bool(dirty),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "optuna": optuna.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
    }


def run_task(task: str, state_dir: Path, deadline: float, wait: bool = False) -> bool:
    """Run the task's pending pairs until done or the deadline; True when all are done."""
    config = CONFIGS[task]
    with _runner_lock(state_dir, task, wait):
        study = open_study(state_dir, task, create=True)
        assert study is not None
        stored = study.user_attrs.get("config")
        if stored is None:
            study.set_user_attr("config", config)
            study.set_user_attr("software", software())
            study.set_user_attr("command", " ".join([Path(sys.executable).name, *sys.argv]))
        elif stored != json.loads(json.dumps(config)):
            sys.exit(
                f"{storage_path(state_dir, task)} was run with another {task} configuration; "
                "restore it or use another --state-dir."
            )
        # A trial still RUNNING now was killed (the lock says no other runner is alive).
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            study._storage.set_trial_user_attr(t._trial_id, "error", "left RUNNING by a kill")
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            _log(f"{task}: trial {t.number} was left RUNNING; marked FAIL, its pair is retried.")

        space = make_space(config)
        archs = draw_architectures(space, config)
        data = load_task_data(config)
        evaluator = make_evaluator(config, space, data)
        order = plan(config)
        n_run = 0
        while True:
            if time.time() > deadline:
                _log(f"{task}: --max-minutes reached; stopping (resume with the same command).")
                return False
            trials = study.get_trials(deepcopy=False)
            done = {_key(t) for t in trials if t.state == TrialState.COMPLETE}
            fails = Counter(_key(t) for t in trials if t.state == TrialState.FAIL)
            pending = [p for p in order if p not in done and fails[p] < MAX_ATTEMPTS]
            if not pending:
                skipped = [p for p in order if p not in done]
                _log(f"{task}: finished; {len(done)} runs done, {len(skipped)} skipped.")
                return True
            if not any(t.state == TrialState.WAITING for t in trials):
                i, seed = pending[0]
                study.enqueue_trial(
                    archs[i].to_params(),
                    user_attrs={
                        "arch_index": i,
                        "seed": seed,
                        "canonical": canonical(space, archs[i]),
                    },
                )
            trial = study.ask()
            key = _key(trial)
            if key is None or key in done or key not in order:
                trial.set_user_attr("error", "not a pending (architecture, seed) pair")
                study.tell(trial, state=TrialState.FAIL)
                continue
            i, seed = key
            try:
                value, wall, cpu = train_one(evaluator, trial, seed)
            except BaseException as e:
                trial.set_user_attr("error", "".join(traceback.format_exception_only(e)).strip())
                study.tell(trial, state=TrialState.FAIL)
                if not isinstance(e, Exception):
                    raise
                _log(f"{task}: trial {trial.number} (arch {i}, seed {seed}) FAILED: {e!r}")
                continue
            trial.set_user_attr("wall_seconds", round(wall, 3))
            trial.set_user_attr("cpu_seconds", round(cpu, 3))
            study.tell(trial, value)
            n_run += 1
            left = len(pending) - 1
            _log(
                f"{task}: trial {trial.number} arch {i} seed {seed} value {value:.6g} "
                f"({wall:.1f} s wall, {cpu:.1f} s cpu); {left} left, ~{left * wall / 60:.0f} min"
            )


def cmd_run(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)
    # A SIGTERM ends the current trial as FAIL (instead of leaving it RUNNING).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    deadline = math.inf if args.max_minutes is None else time.time() + 60 * args.max_minutes
    tasks = TASKS if args.task == "all" else (args.task,)
    _log(
        f"run {' '.join(tasks)} (pid {os.getpid()}, OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS')}, torch threads {torch.get_num_threads()})"
    )
    for task in tasks:
        if not run_task(task, args.state_dir, deadline, args.wait):
            return


# -- status and export -------------------------------------------------------------------------
def _collect(study: optuna.Study) -> dict[str, Any]:
    trials = study.get_trials(deepcopy=False)
    done: dict[tuple[int, int], Any] = {}
    for t in trials:
        key = _key(t)
        if t.state == TrialState.COMPLETE and key is not None and key not in done:
            done[key] = t
    counts = Counter(t.state.name for t in trials)
    return {"done": done, "counts": counts}


def cmd_status(args: argparse.Namespace) -> None:
    for task in TASKS:
        config = CONFIGS[task]
        study = open_study(args.state_dir, task, create=False)
        order = plan(config)
        if study is None:
            print(f"{task}: not started ({len(order)} runs planned)")
            continue
        info = _collect(study)
        done = info["done"]
        walls = [t.user_attrs.get("wall_seconds", math.nan) for t in done.values()]
        mean_wall = float(np.nanmean(walls)) if walls else math.nan
        left = len([p for p in order if p not in done])
        seeds = config["seeds"]
        pairs = sum((i, seeds[0]) in done and (i, seeds[1]) in done for i in range(len(order)))
        states = ", ".join(f"{k.lower()} {v}" for k, v in sorted(info["counts"].items()))
        print(
            f"{task}: {len(done)}/{len(order)} runs done, {left} remaining "
            f"({pairs}/{config['n_two_seeds']} two-seed architectures); trials: {states}"
            + (
                f"; mean {mean_wall:.1f} s/run, ~{left * mean_wall / 60:.0f} min of runs left"
                if walls
                else ""
            )
        )


def _kendall_spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from scipy.stats import kendalltau  # type: ignore[import-untyped]
    from scipy.stats import spearmanr

    return float(kendalltau(x, y).statistic), float(spearmanr(x, y).statistic)


def seed_noise(pairs: list[tuple[float, float]], log: bool) -> dict[str, Any]:
    """Seed-to-seed rank agreement over the two-seed architectures, with a bootstrap."""
    if len(pairs) < 3:
        return {"n_architectures": len(pairs)}
    a = np.array(pairs, dtype=float)
    if log:  # perplexity: compare mean NLL
        a = np.log(a)
    tau, rho = _kendall_spearman(a[:, 0], a[:, 1])
    rng = np.random.default_rng(0)
    boot = []
    for _ in range(N_BOOTSTRAP):
        idx = rng.integers(len(a), size=len(a))
        if np.ptp(a[idx, 0]) == 0 or np.ptp(a[idx, 1]) == 0:
            continue
        boot.append(_kendall_spearman(a[idx, 0], a[idx, 1]))
    b = np.array(boot)

    def spread(col: np.ndarray) -> dict[str, float]:
        lo, hi = (float(x) for x in np.nanpercentile(col, [2.5, 97.5]))
        return {
            "std": round(float(np.nanstd(col)), 4),
            "p2.5": round(lo, 4),
            "p97.5": round(hi, 4),
        }

    diff = np.abs(a[:, 0] - a[:, 1])
    return {
        "n_architectures": len(a),
        "scale": "log perplexity (mean NLL)" if log else "accuracy",
        "kendall_tau": round(tau, 4),
        "spearman": round(rho, 4),
        "bootstrap": {
            "n": len(b),
            "over": "architectures, resampled with replacement",
            "kendall_tau": spread(b[:, 0]),
            "spearman": spread(b[:, 1]),
        },
        "std_across_architectures_seed0": round(float(np.std(a[:, 0])), 5),
        "median_abs_seed_difference": round(float(np.median(diff)), 5),
        "mean_abs_seed_difference": round(float(np.mean(diff)), 5),
    }


def export_task(task: str, state_dir: Path) -> Path | None:
    config = CONFIGS[task]
    study = open_study(state_dir, task, create=False)
    if study is None:
        print(f"{task}: no study at {storage_path(state_dir, task)}; nothing to export")
        return None
    info = _collect(study)
    done = info["done"]
    space = make_space(config)
    rows = []
    for (i, seed), t in sorted(done.items()):
        arch = space.architecture(t.params)
        rows.append(
            {
                "arch": i,
                "seed": seed,
                "value": t.value,
                "wall_s": t.user_attrs.get("wall_seconds"),
                "cpu_s": t.user_attrs.get("cpu_seconds"),
                "curve": [t.intermediate_values[k] for k in sorted(t.intermediate_values)],
                "describe": space.describe(arch),
                "canonical": t.user_attrs.get("canonical"),
                "params": arch.to_params(),
            }
        )
    s0, s1 = config["seeds"]
    pairs = [
        (done[(i, s0)].value, done[(i, s1)].value)
        for i in range(config["n_archs"])
        if (i, s0) in done and (i, s1) in done
    ]
    values0 = np.array([r["value"] for r in rows if r["seed"] == s0], dtype=float)
    walls = np.array([r["wall_s"] or math.nan for r in rows], dtype=float)
    log = task == "rnn"
    scaled = np.log(values0) if log and len(values0) else values0
    order = plan(config)
    payload = {
        "description": (
            "Ground truth for ranking fidelity (issue #11): architectures drawn uniformly "
            "(distinct canonical forms), each trained from scratch with the same budget by "
            "StandaloneEvaluator; one row per (architecture, seed). Run seed of a row: "
            "SeedSequence([base_seed, seed]) (StandaloneEvaluator seeding with trial.number = "
            "seed). value = the last epoch's value; curve = the value after every epoch."
        ),
        "config": study.user_attrs.get("config", config),
        "space": space.to_dict(),
        "software": study.user_attrs.get("software"),
        "command": study.user_attrs.get("command"),
        "storage": str(storage_path(state_dir, task)),
        "exported": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "progress": {
            "runs_done": len(done),
            "runs_planned": len(order),
            "trial_states": dict(info["counts"]),
        },
        "summary": {
            "n_architectures_seed0": len(values0),
            "value_seed0": {
                "min": _r(np.min(values0)) if len(values0) else None,
                "median": _r(np.median(values0)) if len(values0) else None,
                "max": _r(np.max(values0)) if len(values0) else None,
            },
            "std_across_architectures_seed0" + (" (log ppl)" if log else ""): _r(
                np.std(scaled) if len(scaled) else math.nan
            ),
            "wall_seconds_per_run": {
                "mean": _r(np.nanmean(walls)) if len(walls) else None,
                "total": _r(np.nansum(walls)) if len(walls) else None,
            },
            "seed_to_seed": seed_noise(pairs, log=log),
        },
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"ground_truth_{task}.json"
    head = {k: v for k, v in payload.items() if k != "rows"}
    text = json.dumps(head, indent=1)[:-2]
    text += ',\n "rows": [\n' + ",\n".join("  " + json.dumps(r) for r in rows) + "\n ]\n}\n"
    path.write_text(text)
    size = path.stat().st_size
    print(f"{task}: wrote {path} ({len(rows)} rows, {size / 1e3:.0f} kB)")
    print(f"  seed-to-seed: {json.dumps(payload['summary']['seed_to_seed'])}")
    if size > 5e6:
        print(f"  WARNING: {path} is over 5 MB")
    return path


def _r(x: Any) -> float:
    return round(float(x), 5)


def cmd_export(args: argparse.Namespace) -> None:
    for task in TASKS if args.task == "all" else (args.task,):
        export_task(task, args.state_dir)


# -- probe: choose the budget ------------------------------------------------------------------
def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def cmd_probe(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    config = json.loads(json.dumps(CONFIGS[args.task]))
    for item in args.set:
        key, _, value = item.partition("=")
        target = config
        *path, last = key.split(".")
        for part in path:
            target = target[part]
        target[last] = _parse_value(value)
    print(json.dumps(config))
    space = make_space(config)
    config["n_archs"] = args.n_archs
    archs = draw_architectures(space, config)
    data = load_task_data(config)
    evaluator = make_evaluator(config, space, data)
    results = []
    for i, arch in enumerate(archs):
        row = []
        for seed in config["seeds"][: args.n_seeds]:
            rec = _Recorder(arch.to_params())
            value, wall, cpu = train_one(evaluator, rec, seed)
            row.append(value)
            curve = " ".join(f"{v:.4g}" for v in rec.curve)
            print(f"arch {i} seed {seed}: {value:.5g} [{curve}] {wall:.1f} s ({cpu:.1f} cpu)")
            print(f"   {canonical(space, arch)}", flush=True)
        results.append(row)
    a = np.array(results, dtype=float)
    if args.task == "rnn":
        a = np.log(a)
    print(f"std across archs (seed {config['seeds'][0]}): {np.std(a[:, 0]):.4f}")
    if a.shape[1] > 1:
        print(f"mean |seed difference|: {np.mean(np.abs(a[:, 0] - a[:, 1])):.4f}")
        tau, rho = _kendall_spearman(a[:, 0], a[:, 1])
        print(f"tau/rho seed0 vs seed1: {tau:.3f} / {rho:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="train the pending (architecture, seed) pairs")
    p.add_argument("--task", choices=[*TASKS, "all"], required=True)
    p.add_argument("--max-minutes", type=float, default=None, help="start no run after M min")
    p.add_argument(
        "--wait", action="store_true", help="wait for a running runner of a task to finish"
    )
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("status", help="runs done / remaining per task")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("export", help="write benchmarks/results/ground_truth_<task>.json")
    p.add_argument("--task", choices=[*TASKS, "all"], default="all")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("probe", help="time a few architectures (no storage)")
    p.add_argument("--task", choices=TASKS, required=True)
    p.add_argument("--n-archs", type=int, default=8)
    p.add_argument("--n-seeds", type=int, default=2)
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON")
    p.set_defaults(func=cmd_probe)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    args.func(args)


if __name__ == "__main__":
    main()
