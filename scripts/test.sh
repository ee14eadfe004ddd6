#!/usr/bin/env bash
# Lint, type-check and test. Extra arguments go to the main (not slow) pytest run.
#   bash scripts/test.sh [PYTEST_ARGS...]
# The main pytest run stops a test after TEST_TIMEOUT seconds (default 300, pytest-timeout),
# so a hung test fails with its traceback instead of stalling CI.
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

ci="${CI:-}"
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
