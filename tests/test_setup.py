"""The setup as named steps, and C's setup stdout rendered from the resolved setup.

The golden tests hold the report's text against nanoBragg.c line for line;
these tests hold the structure: the steps print nothing, only ``report.py``
words C's stdout, and the report is a function of the resolved setup.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import pathlib

import pytest

import nbnumba as nb
from nbnumba.setup import crystal, detector, prepare, report, sampling, sources, structure_factors

SETUP_DIR = pathlib.Path(prepare.__file__).parent

BASE = dict(cell=(70, 80, 90, 85, 95, 100), default_F=100, N=3, lambda_=1.0, detpixels=48,
            pixel=0.2, distance=80, seed=1, dump="/dev/null")


def _stdout_lines_in(path: pathlib.Path) -> list[tuple[int, str]]:
    """String literals ending in a newline (C's stdout lines), docstrings excepted."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docstrings and node.value.endswith("\n"):
            found.append((node.lineno, node.value))
    return found


@pytest.mark.parametrize("module", sorted(p.name for p in SETUP_DIR.glob("*.py")
                                          if p.name != "report.py"))
def test_only_the_report_words_c_stdout(module):
    assert _stdout_lines_in(SETUP_DIR / module) == []


def test_report_has_c_lines():
    assert len(_stdout_lines_in(SETUP_DIR / "report.py")) > 40


def test_steps_take_no_printing_callbacks():
    for mod in (prepare, detector, sampling, crystal, sources, structure_factors):
        for name, fn in inspect.getmembers(mod, inspect.isfunction):
            if fn.__module__ != mod.__name__:
                continue
            params = set(inspect.signature(fn).parameters)
            assert not params & {"out", "warn", "emit", "print"}, (mod.__name__, name)


def test_prepare_prints_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    sim = nb.Simulation(**BASE, misset="random", divergence=0.2, divsteps=3, dispersion=0.1,
                        dispsteps=2, mosaic=0.5, mosaic_domains=3, phisteps=2, osc=1)
    scene = sim.scene
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert report.setup_report(scene.resolved) == sim.setup_stdout
    text = sim.setup_stdout
    for line in ("random orientation misset angles:", "divergence deviation:", "lambda1 = ",
                 "  created a total of 3 mosaic domains", "phi1 = 0.5"):
        assert line in text


def test_report_is_rendered_from_the_resolved_setup(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    resolved = nb.Simulation(**BASE).scene.resolved
    before = report.setup_report(resolved)
    assert "WARNING: finite mosaicity" not in before
    changed = dataclasses.replace(
        resolved, sampling=dataclasses.replace(resolved.sampling, mosaic_adjusted="upped"),
        detector=dataclasses.replace(
            resolved.detector, centre=dataclasses.replace(resolved.detector.centre, Xbeam=0.0123)))
    after = report.setup_report(changed)
    assert "WARNING: finite mosaicity with only one domain! upping to 10 mosaic domains\n" \
        in after
    assert "  Xbeam=0.0123 Ybeam=" in after
    assert report.setup_report(resolved) == before


def test_steps_compose_to_the_same_scene(tmp_path, monkeypatch):
    """The records hold what the packed scene is made of."""
    monkeypatch.chdir(tmp_path)
    scene = nb.Simulation(**BASE, twotheta=10, detector_rotx=3, phisteps=3, osc=0.3).scene
    r = scene.resolved
    assert (scene.fpixels, scene.spixels) == (r.detector.fpixels, r.detector.spixels) == (48, 48)
    assert scene.params.phisteps == r.sampling.phisteps == len(scene.phi_values) == 3
    assert scene.header["distance"] == r.detector.distance
    assert list(scene.det[3]) == r.detector.pix0_vector[1:]
    assert scene.params.Na == r.crystal.Na == 3.0
    assert scene.sources.shape == (len(r.sources.rows), 4)


def test_structure_factor_origin_is_decided_once(tmp_path, monkeypatch):
    """C opens Fdump.bin once (line 1279): a dump appearing later in the setup is not read."""
    from nbnumba.setup import prepare as prepare_module

    monkeypatch.chdir(tmp_path)
    real_build_cell = prepare_module.build_cell

    def build_cell_then_dump_appears(*args, **kwargs):
        cell = real_build_cell(*args, **kwargs)
        from nbnumba import io as nbio

        nbio.write_fdump("Fdump.bin", nbio.read_hkl(str(_hkl(tmp_path)), 0.0))
        return cell

    monkeypatch.setattr(prepare_module, "build_cell", build_cell_then_dump_appears)
    resolved = nb.Simulation(**{**BASE, "dump": "Fdump.bin"}).scene.resolved
    assert resolved.structure_factors.origin == "default"
    assert resolved.structure_factors.table.hkls == 0


def _hkl(folder: pathlib.Path) -> pathlib.Path:
    path = folder / "tiny.hkl"
    path.write_text("0 0 1 10\n1 0 0 20\n0 1 0 30\n")
    return path
