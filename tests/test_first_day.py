"""A new user's first day with the library (issue 24): names, warnings, arrays, progress, data."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def _python(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (the import order is what is tested)."""
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_engines_is_callable_before_and_after_the_submodule_is_imported():
    done = _python(
        "import nbnumba as nb\n"
        "before = [e.name for e in nb.engines()]\n"
        "import nbnumba.engines\n"
        "from nbnumba import engines as module\n"
        "after = [e.name for e in nb.engines()]\n"
        "assert before == after == [e.name for e in module.engines()], (before, after)\n"
        "assert module.select('exact').name == 'exact'\n"
        "print('ok', *after)\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[:3] == ["ok", "exact", "vectorised"]


def test_engines_is_callable_after_a_run():
    done = _python(
        "import nbnumba as nb\n"
        "nb.Simulation(cell=(100, 100, 100, 90, 90, 90), default_F=100, N=1,\n"
        "              detpixels=4, progress=False).run()\n"
        "print([e.name for e in nb.engines()])\n")
    assert done.returncode == 0, done.stderr
    assert "exact" in done.stdout


def test_every_package_name_survives_its_submodules_import():
    """A lazy name that is also a submodule must stay usable once that module is imported."""
    done = _python(
        "import importlib, pkgutil, nbnumba as nb\n"
        "for m in pkgutil.walk_packages(nb.__path__, 'nbnumba.'):\n"
        "    if m.name.startswith(('nbnumba.kernels.cuda', 'nbnumba.cli')):\n"
        "        continue\n"
        "    importlib.import_module(m.name)\n"
        "assert callable(nb.engines) and callable(nb.series) and callable(nb.tiles)\n"
        "assert callable(nb.Simulation) and callable(nb.select_engine)\n"
        "print('ok')\n")
    assert done.returncode == 0, done.stderr
