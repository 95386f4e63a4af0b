#!/usr/bin/env bash
# Every test: the Rust suite, then the Python package (built as a wheel with maturin, installed
# into a virtualenv under target/) and its pytest suite. Needs python3 >= 3.9 with venv and pip.
# BACKDRIVE_SKIP_TORCH=1 leaves torch out (its tests then say SKIPPED).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

log "cargo test --release"
cargo test --release

VENV="${BACKDRIVE_VENV:-target/python-venv}"
if [ ! -x "$VENV/bin/python" ]; then
    log "creating the virtualenv $VENV"
    python3 -m venv "$VENV"
fi
VENV="$(cd "$VENV" && pwd)"
PY="$VENV/bin/python"
log "installing the Python test dependencies"
"$PY" -m pip install --quiet --upgrade pip
"$PY" -m pip install --quiet maturin numpy pytest gymnasium
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
