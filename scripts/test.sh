#!/usr/bin/env bash
# Runs every test of Sluice, in order, and stops at the first failure:
#
#   1. cargo fmt --all --check
#   2. cargo clippy --workspace --all-targets -- -D warnings
#   3. the generated API model is up to date (tools/gen_api_model.py, then git diff)
#   4. the Rust tests: cargo nextest (or cargo test when nextest is missing) plus doctests,
#      with a moto S3 server in SLUICE_TEST_S3_ENDPOINT for tests that use a real S3 API and a
#      throwaway PostgreSQL cluster in SLUICE_TEST_POSTGRES_URL (scripts/start-postgres.sh)
#      for the Postgres connector's server tests
#   5. cargo build -p sluice and the fake Salesforce server binary (fake-salesforce)
#   6. the compatibility suite (tests/compat): boto3, the aws CLI and moto against the binary,
#      with fake-salesforce as the Salesforce counterpart
#
# Needs: a Rust toolchain with rustfmt and clippy, git, PostgreSQL server binaries (Debian's
# `postgresql`; without them the Postgres server tests are skipped, except under CI=true where
# that is an error), and a Python venv with the packages of tests/compat/requirements.txt at
# $SLUICE_VENV (default ~/.cache/sluice-venv). .ci/run installs all of it; the venv by hand:
#
#   python3 -m venv ~/.cache/sluice-venv
#   ~/.cache/sluice-venv/bin/pip install -r tests/compat/requirements.txt
#
# Honours CARGO_TARGET_DIR. Extra pytest arguments can be given in PYTEST_ADDOPTS.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

SLUICE_VENV="${SLUICE_VENV:-$HOME/.cache/sluice-venv}"
VENV_PYTHON="$SLUICE_VENV/bin/python"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
MOTO_PID=""
MOTO_LOG=""
PG_DIR=""

log() { printf '%s\n' "$*" >&2; }

cleanup() {
    if [[ -n "$MOTO_PID" ]] && kill -0 "$MOTO_PID" 2>/dev/null; then
        kill "$MOTO_PID" 2>/dev/null || true
        wait "$MOTO_PID" 2>/dev/null || true
    fi
    if [[ -n "$MOTO_LOG" ]]; then
        rm -f "$MOTO_LOG"
    fi
    if [[ -n "$PG_DIR" ]]; then
        stop_postgres
    fi
}
trap cleanup EXIT
# Without these, a SIGINT/SIGTERM to this script would skip the EXIT trap and leave moto behind.
trap 'exit 130' INT
trap 'exit 143' TERM

STAGE_REPORT=()
TOTAL_START=$SECONDS

# stage NAME COMMAND...: runs one step, reports its duration, stops the script on failure.
# `set -e` does not apply inside a command tested by `if`, so the step functions below stop at
# their first failure explicitly (`|| return`).
stage() {
    local name="$1"
    shift
    local start=$SECONDS
    log ""
    log "==> $name"
    if "$@"; then
        local took=$((SECONDS - start))
        STAGE_REPORT+=("$(printf '%-34s %5ss' "$name" "$took")")
        log "<== $name: ok (${took}s)"
    else
        local status=$?
        log "<== $name: FAILED (exit $status after $((SECONDS - start))s)"
        exit "$status"
    fi
}

require_venv() {
    if [[ ! -x "$VENV_PYTHON" ]]; then
        log "error: no Python venv at $SLUICE_VENV (set SLUICE_VENV, or create it with:"
        log "  python3 -m venv $SLUICE_VENV"
        log "  $SLUICE_VENV/bin/pip install -r tests/compat/requirements.txt)"
        exit 2
    fi
    if ! "$VENV_PYTHON" -c 'import boto3, moto, pytest, pyarrow, requests, simple_salesforce' 2>/dev/null \
        || [[ ! -x "$SLUICE_VENV/bin/moto_server" || ! -x "$SLUICE_VENV/bin/aws" ]]; then
        log "error: the venv at $SLUICE_VENV lacks packages; install them with:"
        log "  $SLUICE_VENV/bin/pip install -r tests/compat/requirements.txt"
        exit 2
    fi
}

check_generated_model() {
    python3 tools/gen_api_model.py || return
    local untracked
    untracked="$(git ls-files --others --exclude-standard -- crates/api-model/src/codegen)" \
        || return
    if [[ -n "$untracked" ]]; then
        log "error: the generator wrote files that are not checked in: $untracked"
        return 1
    fi
    if ! git diff --exit-code -- crates/api-model/src/codegen; then
        log "error: crates/api-model/src/codegen is out of date with the generator or the model;"
        log "       run python3 tools/gen_api_model.py and commit the result"
        return 1
    fi
}

free_port() {
    "$VENV_PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

start_moto() {
    local port
    port="$(free_port)" || return
    MOTO_LOG="$(mktemp -t sluice-moto.XXXXXX)" || return
    "$SLUICE_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$MOTO_LOG" 2>&1 &
    MOTO_PID=$!
    export SLUICE_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
    local deadline=$((SECONDS + 60))
    until "$VENV_PYTHON" -c "import sys, urllib.request
try:
    urllib.request.urlopen('$SLUICE_TEST_S3_ENDPOINT/', timeout=2)
except urllib.error.HTTPError:
    pass
except Exception:
    sys.exit(1)" 2>/dev/null; do
        if ! kill -0 "$MOTO_PID" 2>/dev/null || ((SECONDS > deadline)); then
            log "error: moto_server did not start:"
            cat "$MOTO_LOG" >&2
            return 1
        fi
        sleep 0.2
    done
    log "moto_server ready at $SLUICE_TEST_S3_ENDPOINT (pid $MOTO_PID)"
}

postgres_binaries_present() {
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

start_postgres() {
    if [[ -n "${SLUICE_TEST_POSTGRES_URL:-}" ]]; then
        log "using the PostgreSQL server in SLUICE_TEST_POSTGRES_URL"
        return 0
    fi
    if ! postgres_binaries_present; then
        if [[ "${CI:-}" == "true" ]]; then
            log "error: no PostgreSQL server binaries (apt-get install postgresql); CI must run"
            log "       the Postgres connector's server tests"
            return 1
        fi
        log "warning: no PostgreSQL server binaries: the Postgres server tests will be skipped"
        return 0
    fi
    PG_DIR="$(mktemp -d -t sluice-pg.XXXXXX)" || return
    SLUICE_TEST_POSTGRES_URL="$(bash scripts/start-postgres.sh "$PG_DIR")" || return
    export SLUICE_TEST_POSTGRES_URL
    export SLUICE_TEST_POSTGRES_CA="$PG_DIR/tls/ca.crt"
    log "PostgreSQL ready (cluster in $PG_DIR)"
}

stop_postgres() {
    local pid_file="$PG_DIR/data/postmaster.pid"
    if [[ -f "$pid_file" ]]; then
        local pid
        pid="$(head -n 1 "$pid_file")"
        kill "$pid" 2>/dev/null || true
        # Wait for the postmaster to finish its shutdown before removing its files.
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -rf "$PG_DIR"
    PG_DIR=""
}

rust_tests() {
    if cargo nextest --version >/dev/null 2>&1; then
        # nextest prints its own summary; it does not run doctests, so they follow.
        cargo nextest run --workspace --no-fail-fast || return
        cargo test --workspace --doc || return
    else
        log "cargo-nextest not found: using cargo test"
        cargo test --workspace --no-fail-fast || return
    fi
}

compat_suite() {
    SLUICE_BIN="$TARGET_DIR/debug/sluice" \
        FAKE_SALESFORCE_BIN="$TARGET_DIR/debug/fake-salesforce" \
        "$VENV_PYTHON" -m pytest tests/compat --durations=10
}

require_venv
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
log "repository:  $REPO_ROOT"
log "target dir:  $TARGET_DIR"
log "python venv: $SLUICE_VENV"

stage "cargo fmt --check" cargo fmt --all --check
stage "cargo clippy -D warnings" cargo clippy --workspace --all-targets -- -D warnings
stage "generated API model up to date" check_generated_model
stage "start moto_server for Rust tests" start_moto
stage "start PostgreSQL for Rust tests" start_postgres
stage "Rust tests" rust_tests
stage "cargo build -p sluice (+ fake-salesforce)" \
    cargo build -p sluice -p sluice-fake-salesforce --bin sluice --bin fake-salesforce
stage "compatibility suite (pytest)" compat_suite

log ""
log "==> all stages passed in $((SECONDS - TOTAL_START))s"
for line in "${STAGE_REPORT[@]}"; do
    log "    $line"
done
