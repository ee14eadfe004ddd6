"""Break the learner on purpose and show that the tests catch it (a small mutation test).

    python scripts/mutation_check.py            # all mutations
    python scripts/mutation_check.py --list     # what they are
    python scripts/mutation_check.py clip       # one of them

Each mutation is applied to a temporary COPY of ``optuna_enas/`` and ``tests/`` (never to the
working tree); the tests named for it then run against the copy (``PYTHONPATH`` puts the copy
first, and the script checks that ``optuna_enas`` is imported from it). A mutation is
*caught* when those tests fail. The unmutated copy is run first as a control: it must pass.
Exit status 0 when every mutation is caught, 1 otherwise, 2 when a mutation no longer
applies (the code it edits has changed: update the mutation).

The mutations are the ones an audit applied (issue 12), which then left every test green:

- ``clip``: importance weights of off-policy trials without the clip;
- ``baseline``: the moving average swapped to ``(1-d)*b + d*r``;
- ``sampled``: learning from the sampled actions instead of the trial's actual params
  (a ``PartialFixedSampler`` overrides some).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    what: str
    path: str  # relative to the repository
    old: str
    new: str
    tests: tuple[str, ...]


_LEARNER_TESTS = ("tests/test_sampler_bookkeeping.py", "tests/test_reinforce.py")

MUTATIONS = (
    Mutation(
        "clip",
        "importance weight without its clip",
        "optuna_enas/sampler/_reinforce.py",
        "weights[k] = min(math.exp(min(log_ratio, 50.0)), clip)",
        "weights[k] = math.exp(min(log_ratio, 50.0))",
        _LEARNER_TESTS,
    ),
    Mutation(
        "baseline",
        "baseline decay swapped to (1-d)*b + d*r",
        "optuna_enas/sampler/_reinforce.py",
        "self.baseline = d * self.baseline + (1.0 - d) * total",
        "self.baseline = (1.0 - d) * self.baseline + d * total",
        _LEARNER_TESTS,
    ),
    Mutation(
        "sampled",
        "learn from the sampled actions, not the trial's actual params",
        "optuna_enas/sampler/_sampler.py",
        "            else:\n                actions.append(taken)\n",
        "            else:\n"
        "                actions.append(sampled[i] if i < len(sampled) else taken)\n",
        ("tests/test_sampler_bookkeeping.py", "tests/test_sampler.py"),
    ),
)


def _copy(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("optuna_enas", "tests"):
        shutil.copytree(REPO / name, dest / name, ignore=ignore)
    shutil.copy2(REPO / "pyproject.toml", dest / "pyproject.toml")


def _run_tests(root: Path, tests: tuple[str, ...], timeout: float) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    where = subprocess.run(
        [sys.executable, "-c", "import optuna_enas; print(optuna_enas.__file__)"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not where.startswith(str(root)):
        raise SystemExit(f"optuna_enas was imported from {where}, not from the copy {root}")
    present = [t for t in tests if (root / t).is_file()]
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "not slow", "-p", "no:cacheprovider"]
    run = subprocess.run(
        [*cmd, *present], cwd=root, env=env, capture_output=True, text=True, timeout=timeout
    )
    tail = run.stdout.strip().splitlines()
    summary = next((line for line in reversed(tail) if " in " in line), tail[-1] if tail else "")
    failed = [
        line.split(" - ")[0][len("FAILED ") :] for line in tail if line.startswith("FAILED ")
    ]
    return run.returncode, summary + "".join(f"\n    failed: {f}" for f in failed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="mutations to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per test run")
    args = parser.parse_args(argv)
    if args.list:
        for m in MUTATIONS:
            print(f"{m.name:9} {m.what} ({m.path}; tests: {', '.join(m.tests)})")
        return 0
    known = {m.name: m for m in MUTATIONS}
    unknown = [n for n in args.names if n not in known]
    if unknown:
        print(f"mutation_check: error: unknown mutation(s) {unknown}; see --list", file=sys.stderr)
        return 2
    chosen = [known[n] for n in args.names] or list(MUTATIONS)
    with tempfile.TemporaryDirectory(prefix="optuna-enas-mutation-") as tmp:
        base = Path(tmp) / "control"
        _copy(base)
        tests = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
        code, summary = _run_tests(base, tests, args.timeout)
        print(f"control (no mutation): {'pass' if code == 0 else 'FAIL'}: {summary}")
        if code != 0:
            print("the unmutated tests fail: fix them first", file=sys.stderr)
            return 1
        results: list[tuple[Mutation, str]] = []
        for m in chosen:
            root = Path(tmp) / m.name
            _copy(root)
            target = root / m.path
            text = target.read_text(encoding="utf-8")
            if text.count(m.old) != 1:
                results.append((m, "NOT APPLIED (the code changed; update the mutation)"))
                continue
            target.write_text(text.replace(m.old, m.new), encoding="utf-8")
            code, summary = _run_tests(root, m.tests, args.timeout)
            verdict = "caught" if code != 0 else "MISSED"
            results.append((m, f"{verdict}: {summary}"))
            shutil.rmtree(root)
    for m, verdict in results:
        print(f"{m.name:9} {m.what}: {verdict}")
    if any(v.startswith("NOT APPLIED") for _, v in results):
        return 2
    return 0 if all(v.startswith("caught") for _, v in results) else 1


if __name__ == "__main__":
    sys.exit(main())
