"""Shared fixtures: the repository root and the Rust CLI binary built by `cargo build --release`."""

import os
import pathlib

import pytest

os.environ.setdefault("NODEVICE_SELECT", "1")

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def root():
    return ROOT


@pytest.fixture(scope="session")
def backdrive_bin():
    path = pathlib.Path(os.environ.get("BACKDRIVE_BIN", ROOT / "target" / "release" / "backdrive"))
    if not path.is_file():
        pytest.fail(f"{path}: the Rust binary is missing; run `cargo build --release` first")
    return path
