#!/usr/bin/env bash
# Every test: a virtualenv under target/ with the Python test dependencies and the MuJoCo model
# suites (gymnasium, dm_control, mujoco) first, then the Rust suite (tests/mjcf_suites.rs reads
# the suites through BACKDRIVE_PYTHON), then the Python package (built as a wheel with maturin,
# installed into the virtualenv) and its pytest suite. Needs python3 >= 3.9 with venv and pip.
# BACKDRIVE_SKIP_TORCH=1 leaves torch out (its tests then say SKIPPED).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

VENV="${BACKDRIVE_VENV:-target/python-venv}"
if [ ! -x "$VENV/bin/python" ]; then
    log "creating the virtualenv $VENV"
    python3 -m venv "$VENV"
fi
VENV="$(cd "$VENV" && pwd)"
PY="$VENV/bin/python"
log "installing the Python test dependencies (and the MuJoCo model suites)"
"$PY" -m pip install --quiet --upgrade pip
"$PY" -m pip install --quiet maturin numpy pytest gymnasium dm_control mujoco
# tests/mjcf_suites.rs finds gymnasium's and dm_control's model files with this Python; under
# CI a missing package is a failure rather than SKIPPED.
export BACKDRIVE_PYTHON="$PY"
if [ "${CI:-}" = "true" ]; then
    export BACKDRIVE_REQUIRE_SUITES=1
fi

log "cargo test --release"
cargo test --release

if [ "${BACKDRIVE_SKIP_TORCH:-0}" != "1" ] && ! "$PY" -c "import torch" 2>/dev/null; then
    # The CPU wheel is a fraction of the default CUDA one; fall back to PyPI if that index is
    # unreachable.
    "$PY" -m pip install --quiet torch --index-url https://download.pytorch.org/whl/cpu \
        || "$PY" -m pip install --quiet torch
fi

log "building the wheel (maturin, release)"
rm -rf target/wheels
"$VENV/bin/maturin" build --release --manifest-path python/Cargo.toml --out target/wheels
"$PY" -m pip install --quiet --force-reinstall --no-deps target/wheels/backdrive-*.whl

log "pytest python/tests"
# From outside python/ so that the installed wheel, not the source tree, is imported.
(cd target && NODEVICE_SELECT=1 BACKDRIVE_BIN="$PWD/release/backdrive" \
    "$PY" -m pytest -q -rs ../python/tests)
