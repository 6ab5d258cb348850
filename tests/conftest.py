"""Shared fixtures: the golden cases from serial nanoBragg.c and an optional C build."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(os.environ.get("NB_GOLDEN", REPO.parent / "shared" / "golden"))


def golden_available() -> bool:
    return (GOLDEN / "README.md").is_file()


def golden_case_names() -> list[str]:
    if not golden_available():
        return []
    return sorted(p.parent.name for p in GOLDEN.glob("*/case.json"))


def load_case(name: str) -> dict:
    return json.loads((GOLDEN / name / "case.json").read_text())


def run_main(args: Sequence[str], cwd: str | os.PathLike,
             main: Callable[[list[str]], int] | None = None) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of a CLI entry point ``main(args)`` (default
    nanobragg-nb's) run in this process inside the folder ``cwd``."""
    if main is None:
        from nbnumba.cli.main import main
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        os.chdir(old)
    return code, out.getvalue(), err.getvalue()


def slab_positions_crystfel(detector):
    """A detector model's pixel centres, slab-shaped (rows, cols, 3), in CrystFEL's frame
    (NaN where no panel lies)."""
    import numpy as np

    from nbnumba.models import frames

    out = np.full(tuple(detector.slab_shape) + (3,), np.nan)
    for p in detector.panels:
        ss, fs = p.slab_origin
        out[ss:ss + p.spixels, fs:fs + p.fpixels] = frames.from_lab(p.pixel_centres_m(),
                                                                    "crystfel")
    return out


@pytest.fixture
def golden_dir() -> Path:
    if not golden_available():
        pytest.skip("../shared/golden is not present")
    return GOLDEN


@pytest.fixture
def case_workdir(tmp_path: Path, golden_dir: Path) -> Path:
    """A fresh folder holding copies of golden/inputs, as the golden runs had."""
    for f in (golden_dir / "inputs").iterdir():
        dst = tmp_path / f.name
        shutil.copyfile(f, dst)
    return tmp_path


@pytest.fixture(scope="session")
def c_binary() -> Path:
    """Path to a nanoBragg.c build given by NB_C_BIN; skips the test without one."""
    path = os.environ.get("NB_C_BIN")
    if not path or not Path(path).is_file():
        pytest.skip("NB_C_BIN is not set to a nanoBragg.c build")
    return Path(path)
