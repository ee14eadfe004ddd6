#!/usr/bin/env bash
# Lint, type-check and test. Extra arguments go to the main (not slow) pytest run.
#   bash scripts/test.sh [PYTEST_ARGS...]
# The main pytest run stops a test after TEST_TIMEOUT seconds (default 300, pytest-timeout),
# so a hung test fails with its traceback instead of stalling CI.
# With CI set (or LOWEST_OPTUNA=1) it runs the storage tests against the lowest Optuna that
# pyproject.toml allows, installed into .venv-optuna-<version>/ (bounded: 5 + 15 min).
# With CI set (or WHEEL_CHECK=1) it also builds the sdist and the wheel, installs the wheel into
# a fresh virtualenv and runs the quick start from it (scripts/wheel_check.sh).
# With CI set (non-empty, not false/0) or RUN_SLOW=1 it then runs the slow tests, capped at
# SLOW_TOTAL_TIMEOUT seconds in all (default 1200 = 20 min) and SLOW_TEST_TIMEOUT seconds
# per test (default 900, so pytest-timeout reports a hung test before the overall cap).
# Every step runs even if an earlier one failed; the exit status is non-zero if any failed.
set -euo pipefail
# shellcheck source=scripts/_env.sh
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"

failed=()

step() {
    local name="$1"
    shift
    echo "==> ${name}: $*"
    local start=${SECONDS}
    local rc=0
    "$@" || rc=$?
    if ((rc != 0)); then
        echo "==> ${name}: FAILED (exit ${rc}, $((SECONDS - start))s)"
        failed+=("${name}")
    else
        echo "==> ${name}: ok ($((SECONDS - start))s)"
    fi
}

lint_dirs=()
for d in optuna_enas tests examples benchmarks; do
    if [[ -d "${d}" ]]; then
        lint_dirs+=("${d}")
    fi
done

if ((${#lint_dirs[@]} > 0)); then
    step "ruff check" ruff check "${lint_dirs[@]}"
    step "ruff format" ruff format --check "${lint_dirs[@]}"
fi
step "mypy" mypy optuna_enas
step "pytest" pytest -m "not slow" -q --timeout "${TEST_TIMEOUT:-300}" "$@"

slow_tests() {
    local rc=0
    timeout --kill-after=60 "${SLOW_TOTAL_TIMEOUT:-1200}" \
        pytest -m slow -q --durations=15 --timeout "${SLOW_TEST_TIMEOUT:-900}" || rc=$?
    case "${rc}" in
        5)
            echo "no slow tests collected"
            return 0
            ;;
        124 | 137)
            echo "slow tests ran past ${SLOW_TOTAL_TIMEOUT:-1200}s and were stopped"
            ;;
    esac
    return "${rc}"
}

# The storage tests against the lowest Optuna that pyproject.toml allows (the main run uses
# the newest installed). That release is installed alone (--no-deps) into .venv-optuna-<v>/
# and put in front of the environment's own Optuna; bounded in time.
lowest_optuna() {
    local low dir
    low="$(python -c 'import re, pathlib; t = pathlib.Path("pyproject.toml").read_text(); v = re.search(r"\"optuna>=([0-9.]+)", t)[1]; print(v if v.count(".") == 2 else v + ".0")')"
    dir=".venv-optuna-${low}"
    if [[ ! -f "${dir}/optuna/__init__.py" ]]; then
        timeout 300 python -m pip install -q --no-deps --target "${dir}" "optuna==${low}" || return 1
    fi
    PYTHONPATH="${dir}${PYTHONPATH:+:${PYTHONPATH}}" python -c \
        "import optuna, sys; print('optuna', optuna.__version__); sys.exit(optuna.__version__ != '${low}')" || return 1
    PYTHONPATH="${dir}${PYTHONPATH:+:${PYTHONPATH}}" timeout --kill-after=30 900 \
        pytest -m "not slow" -q -p no:cacheprovider --timeout "${TEST_TIMEOUT:-300}" \
        tests/test_storage_compat.py tests/test_storage_batching.py tests/test_storage_issue21.py \
        tests/test_mirror.py
}

ci="${CI:-}"
if [[ (-n "${ci}" && "${ci,,}" != "false" && "${ci}" != "0") || "${LOWEST_OPTUNA:-0}" == "1" ]]; then
    step "pytest storage, lowest optuna" lowest_optuna
fi
if [[ (-n "${ci}" && "${ci,,}" != "false" && "${ci}" != "0") || "${RUN_SLOW:-0}" == "1" ]]; then
    step "pytest slow" slow_tests
fi
if [[ (-n "${ci}" && "${ci,,}" != "false" && "${ci}" != "0") || "${WHEEL_CHECK:-0}" == "1" ]]; then
    step "wheel" timeout 900 bash scripts/wheel_check.sh
fi

if ((${#failed[@]} > 0)); then
    echo "FAILED steps: ${failed[*]}"
    exit 1
fi
echo "All checks passed."
