#!/usr/bin/env bash
# Install optuna-enas as users do and run the quick start from the installed copy.
#   bash scripts/wheel_check.sh
# 1. Builds the sdist from the repository, then the wheel from the unpacked sdist (so a file
#    missing from the sdist fails here), with setuptools' PEP 517 hooks: no network.
# 2. Creates a fresh virtualenv whose dependencies (torch, optuna, ...) are those of the
#    repository's .venv, read through a .pth file (no download), and `pip install --no-deps`
#    the wheel into it. The repository's editable install is not visible there.
# 3. From an empty directory: checks that optuna_enas is imported from the wheel, that
#    `optuna_enas.__version__` is the distribution's version, runs `optuna-enas --version`,
#    a 3-trial `optuna-enas search` and the README's Python quick start (a few trials).
# Bounded: about a minute on a laptop; everything goes to a temp dir that is removed.
set -euo pipefail
# shellcheck source=scripts/_env.sh
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"

repo="$(pwd)"
tmp="$(mktemp -d /tmp/optuna-enas-wheel.XXXXXX)"
trap 'rm -rf "${tmp}"' EXIT

echo "==> building the sdist"
# The PEP 517 hooks log to stdout: only the returned file name goes to the variable.
hook='import contextlib, sys
from setuptools import build_meta as b
with contextlib.redirect_stdout(sys.stderr):
    name = getattr(b, sys.argv[1])(sys.argv[2])
print(name)'
sdist="$(python -c "${hook}" build_sdist "${tmp}/dist" 2>"${tmp}/sdist.log")"
tar -xzf "${tmp}/dist/${sdist}" -C "${tmp}"
src="${tmp}/${sdist%.tar.gz}"
echo "==> building the wheel from ${sdist}"
wheel="$(cd "${src}" && python -c "${hook}" build_wheel "${tmp}/dist" 2>"${tmp}/wheel.log")"
echo "    ${wheel}"

echo "==> installing it into a fresh virtualenv"
python -m venv "${tmp}/venv"
deps="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
site="$("${tmp}/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
# The dependencies, not optuna_enas: the editable install's own .pth files are not read from
# a directory added this way, and the check below fails if optuna_enas came from elsewhere.
echo "${deps}" >"${site}/_optuna_enas_deps.pth"
"${tmp}/venv/bin/python" -m pip install -q --no-deps --no-index "${tmp}/dist/${wheel}"

mkdir "${tmp}/run"
cd "${tmp}/run"
py="${tmp}/venv/bin/python"
echo "==> quick start from the installed wheel"
"${py}" - "${site}" <<'EOF'
import importlib.metadata
import sys

import optuna_enas

site = sys.argv[1]
assert optuna_enas.__file__.startswith(site), f"imported from {optuna_enas.__file__}, not {site}"
version = importlib.metadata.version("optuna-enas")
assert optuna_enas.__version__ == version, (optuna_enas.__version__, version)
print(f"optuna_enas {optuna_enas.__version__} from {optuna_enas.__file__}")
EOF
"${tmp}/venv/bin/optuna-enas" --version
"${tmp}/venv/bin/optuna-enas" --threads 1 search --trials 3 --n-nodes 3 --hidden-size 8 \
    --batch-size 8 --bptt 8 >search.out
grep -q "fixed_arc:" search.out
OMP_NUM_THREADS=1 "${py}" - <<'EOF'
# The README's quick start, with a small space and a few trials.
import optuna

from optuna_enas import ENASSampler
from optuna_enas import RNNCellSpace
from optuna_enas import SupernetEvaluator

optuna.logging.set_verbosity(optuna.logging.WARNING)
space = RNNCellSpace(n_nodes=3)
evaluator = SupernetEvaluator(space, seed=0, supernet_kwargs={"embed_size": 8, "hidden_size": 8})
study = optuna.create_study(
    sampler=ENASSampler(space, seed=0),
    pruner=optuna.pruners.NopPruner(),
    direction=evaluator.direction,
    storage="sqlite:///nas.db",
)
study.optimize(evaluator, n_trials=3)
print(space.describe(space.architecture(study.best_params)))
EOF
cd "${repo}"
echo "wheel check passed: ${wheel}"
