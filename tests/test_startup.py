"""Start-up work the programs' processes skip (nbnumba.cli.startup)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

needs_scipy = pytest.mark.skipif(importlib.util.find_spec("scipy") is None,
                                 reason="SciPy is not installed: Numba's probe is cheap")

# A program entry (argv None: the process's own) whose job starts Numba's CPU target and
# reports whether SciPy's linalg got imported; then SciPy's BLAS must still import.
CHILD = """
import sys
from numba import njit
from nbnumba.cli.common import exit_without_teardown

@njit
def one(x):
    return x + 1

def main(argv):
    one(1)
    print("linalg imported:", "scipy.linalg" in sys.modules)
    import scipy.linalg.cython_blas  # noqa: F401
    import numpy as np

    @njit
    def dot(a):
        return np.dot(a, a)

    print("dot:", dot(np.ones(3)))
    return 0

exit_without_teardown(main)()
"""


@needs_scipy
def test_program_entry_skips_numbas_scipy_probe() -> None:
    """Numba's target start-up imports SciPy's linalg only to probe for BLAS (0.1-0.25 s
    CPU); a program's process skips that, and SciPy and np.dot still work afterwards."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "linalg imported: False" in proc.stdout
    assert "dot: 3.0" in proc.stdout


def test_library_import_keeps_numbas_probe() -> None:
    """Only a program's entry skips the probe: importing the library changes nothing."""
    code = ("import sys, nbnumba, nbnumba.kernels, nbnumba.cli.common; "
            "print(any(type(f).__name__ == '_ProbeWithoutScipy' for f in sys.meta_path))")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
