"""The model layer (nbnumba.models), Simulation.from_models, multi-panel rendering, F in memory.

- Models check what they are given (units in names; one lattice form; F arrays that match).
- nanoBragg.c's flags resolve into models (``Simulation.experiment``) and those models render
  the same image (same ``det`` rows, bit for bit).
- A detector of tilted/offset panels: every panel's part of the slab equals our single-panel
  run of C's flags with that panel's vectors (``-fdet_vector -sdet_vector -odet_vector -Xclose
  -Yclose -close_distance -pivot sample``) and nanoBragg.c's float image of them (NB_C_BIN),
  bit for bit with ``-c_parity``; every engine renders every panel.
- Structure factors in memory equal the same run from the hkl file, bit for bit.
- ``Fdump.bin`` is read/written by the library only when asked (issue 24).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nbnumba import models
from nbnumba.api import Simulation

HERE = Path(__file__).resolve().parent

# the crystal and beam every panel sees (small: seconds per run)
COMMON = ("-cell 70 80 90 85 95 100 -misset 5 10 15 -N 4 -lambda 1.1 -pixel 0.3 -oversample 1 "
          "-mosaic 0.3 -mosaic_dom 2 -phi 0 -osc 0.4 -phisteps 2 -seed 3 -nonoise -nopgm "
          "-polar 0.9").split()
# (name, fpixels, spixels, fdet, sdet, odet, Xclose mm, Yclose mm, close_distance mm)
PANELS = [
    ("p0", 24, 16, "0 0 1", "0 -1 0", "1 0 0", "4", "5", "60"),
    ("p1", 20, 18, "0.05 0.2 1", "0 -1 0.2", "1 0.03 -0.06", "-2", "3.5", "62"),
    ("p2", 16, 20, "-0.1 0 1", "0.02 -1 0", "1 0 0.1", "9", "-1", "58.5"),
]


def panel_args(panel) -> list[str]:
    _, nf, ns, f, s, o, xc, yc, cd = panel
    return ["-detpixels_f", str(nf), "-detpixels_s", str(ns), "-fdet_vector", *f.split(),
            "-sdet_vector", *s.split(), "-odet_vector", *o.split(), "-Xclose", xc, "-Yclose",
            yc, "-close_distance", cd, "-pivot", "sample"]


def write_hkl(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    hkl = np.array([(h, k, l) for h in range(-4, 5) for k in range(-4, 5) for l in range(-5, 6)])
    F = np.round(rng.uniform(10, 200, len(hkl)), 2)
    path.write_text("".join(f"{h} {k} {l} {f}\n" for (h, k, l), f in zip(hkl, F, strict=True)))
    return hkl, F


# ------------------------------------------------------------------ the models themselves

def test_models_check_their_input():
    with pytest.raises(ValueError, match="one of the two"):
        models.Crystal(N_cells=(1, 1, 1))
    with pytest.raises(ValueError, match="amplitudes"):
        models.Crystal.from_cell((50, 50, 50, 90, 90, 90), miller=[(1, 2, 3)], amplitudes=[1, 2])
    with pytest.raises(ValueError, match="whole numbers"):
        models.Crystal.from_cell((50,) * 3 + (90,) * 3, miller=[(1.5, 0, 0)], amplitudes=[1])
    with pytest.raises(ValueError, match="shape"):
        models.Crystal.from_cell((50,) * 3 + (90,) * 3, shape="cube")
    with pytest.raises(ValueError, match="wavelength"):
        models.Beam(wavelength_m=0.0)
    with pytest.raises(ValueError, match="non-zero"):
        models.Panel("a", (0, 0, 0), (0, 1, 0), (1, 0, 0), (0, 0, 0), 1e-4, 2, 2)
    c = models.Crystal.from_cell((50, 60, 70, 90, 90, 120), miller=([1, 2], [0, 0], [3, -1]),
                                 amplitudes=[5.0, 6.0])
    hkl, F = c.structure_factor_arrays()
    assert hkl.tolist() == [[1, 0, 3], [2, 0, -1]] and F.tolist() == [5.0, 6.0]
    t = models.StructureFactorTable(np.arange(8.0).reshape(2, 2, 2), origin=(-1, 0, 2))
    h, k, l, F = t.as_arrays()
    assert (h[-1], k[-1], l[-1], F[-1]) == (0, 1, 3, 7.0)
    # C's unitize for a non-unit vector; a unit one kept bit for bit
    p = models.Panel("a", (0, 3, 4), (0.6, 0.8, 0), (1, 0, 0), (0, 0, 0), 1e-4, 2, 2)
    assert p.fdet == (0.0, 3 / 5.0, 4 / 5.0) and p.sdet == (0.6, 0.8, 0.0)
    s = models.Spectrum((1e-10, 1.1e-10), (1.0, 2.0))
    assert not s.uniform and len(s) == 2
    with pytest.raises(ValueError, match="unequal weights"):
        Simulation.from_models(models.Experiment(
            models.Beam(spectrum=s), models.Detector((p,)),
            models.Crystal.from_cell((50,) * 3 + (90,) * 3, default_F=1)))


def test_flags_resolve_into_models_that_render_the_same(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [*COMMON, "-default_F", "50", *panel_args(PANELS[1])]
    sim = Simulation.from_args(args)
    exp = sim.experiment
    assert len(exp.detector) == 1 and exp.crystal.domain_matrices.shape == (2, 3, 3)
    again = Simulation.from_models(exp, oversample=1, seed=3)
    a, b = sim.scene, again.panel_scenes[0]
    # pack per panel gives the same det rows and scalars, and the same shared arrays
    assert np.array_equal(a.det, b.det) and a.params == b.params
    assert np.array_equal(a.cells, b.cells) and np.array_equal(a.sources, b.sources)
    r1, r2 = sim.run("exact"), again.run("exact")
    assert np.array_equal(r1.image, r2.image) and np.array_equal(r2.panels[0], r2.image)
    assert r1.stats.max_I > 0


# ----------------------------------------------------------------------- multi-panel

@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    """Three panels from C's flags, our single-panel runs of them, and the multi-panel run."""
    folder = tmp_path_factory.mktemp("multi")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        write_hkl(folder / "P1.hkl")
        singles, panels = [], []
        origin = 0
        for panel in PANELS:
            sim = Simulation.from_args([*COMMON, "-hkl", "P1.hkl", "-c_parity",
                                        *panel_args(panel)])
            singles.append(sim.run("exact").image)
            p = sim.experiment.detector.panels[0]
            panels.append(dataclasses.replace(p, name=panel[0], slab_origin=(origin, 0)))
            origin += p.spixels + 3  # a gap between panels
        exp = dataclasses.replace(sim.experiment, detector=models.Detector(tuple(panels)))
        msim = Simulation.from_models(exp, oversample=1, seed=3, c_parity=True)
        result = msim.run("exact")
    finally:
        os.chdir(cwd)
    return folder, exp, singles, msim, result


def test_each_panel_equals_its_single_panel_run(multi):
    _, exp, singles, _, result = multi
    assert len(result.panels) == len(PANELS)
    for panel, single, image in zip(exp.detector.panels, singles, result.panels, strict=True):
        assert np.array_equal(image, single), panel.name
        ss, fs = panel.slab_origin
        assert np.array_equal(result.image[ss:ss + panel.spixels, fs:fs + panel.fpixels], single)
    assert result.image.shape == exp.detector.slab_shape
    # the gaps are no pixel: zero, and out of the statistics
    assert result.image[16:19].max() == 0.0
    assert result.stats.max_I == max(float(s.max()) for s in singles)


def test_each_panel_equals_nanoBragg_c(multi, c_binary, tmp_path):
    folder, exp, _, _, result = multi
    (tmp_path / "P1.hkl").write_bytes((folder / "P1.hkl").read_bytes())
    for panel, image in zip(PANELS, result.panels, strict=True):
        subprocess.run([str(c_binary), *COMMON, "-hkl", "P1.hkl", *panel_args(panel),
                        "-floatfile", "c.bin", "-intfile", "c.img"], cwd=tmp_path,
                       capture_output=True, check=True, timeout=300)
        c_image = np.fromfile(tmp_path / "c.bin", dtype="<f4").reshape(panel[2], panel[1])
        assert np.array_equal(image, c_image), panel[0]


def test_every_engine_renders_every_panel(multi):
    _, exp, _, _, _ = multi
    msim = Simulation.from_models(exp, oversample=1, seed=3)  # no -c_parity: any engine
    result = msim.run("exact")
    vec = msim.run("vectorised")
    for a, b in zip(result.panels, vec.panels, strict=True):
        assert np.allclose(a, b, rtol=0, atol=1e-9 * float(a.max()))
    distributed = pytest.importorskip("distributed")
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1,
                            dashboard_address=":0") as client:
        tiled = msim.run("tiles", client=client, tiles=(2, 2))
    for a, b in zip(result.panels, tiled.panels, strict=True):
        assert np.array_equal(a, b)


def test_cuda_simulator_renders_every_panel(tmp_path):
    if importlib_find("numba_cuda") is None:
        pytest.skip("numba-cuda (the 'cuda' extra) is not installed")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    res = subprocess.run([sys.executable, str(Path(__file__)), "cudasim", str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = json.loads((tmp_path / "cudasim.json").read_text())
    assert out["equal"], out


def importlib_find(name: str):
    import importlib.util

    return importlib.util.find_spec(name)


def _cudasim(folder: Path) -> None:
    """Two tiny panels on the CUDA engine (simulator) vs the exact engine."""
    os.chdir(folder)
    panels = []
    for i, panel in enumerate(PANELS[1:]):
        small = (panel[0], 6, 5, *panel[3:])
        sim = Simulation.from_args([*COMMON, "-default_F", "80", *panel_args(small)])
        p = sim.experiment.detector.panels[0]
        panels.append(dataclasses.replace(p, name=panel[0], slab_origin=(0, 6 * i)))
    exp = dataclasses.replace(sim.experiment, detector=models.Detector(tuple(panels)))
    msim = Simulation.from_models(exp, oversample=1, seed=3)
    a, b = msim.run("exact"), msim.run("cuda")
    equal = all(np.allclose(x, y, rtol=1e-12, atol=0) for x, y in zip(a.panels, b.panels,
                                                                      strict=True))
    (folder / "cudasim.json").write_text(json.dumps({"equal": bool(equal)}))


# ------------------------------------------------------------------ structure factors

def test_structure_factors_in_memory_equal_the_hkl_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    hkl, F = write_hkl(tmp_path / "P1.hkl")
    args = [*COMMON, "-hkl", "P1.hkl", *panel_args(PANELS[0])]
    from_file = Simulation.from_args(args)
    exp = from_file.experiment
    base = dataclasses.replace(exp.crystal, table=None)
    as_arrays = dataclasses.replace(base, miller=hkl, amplitudes=F)
    table = np.zeros((9, 9, 11))
    table[hkl[:, 0] + 4, hkl[:, 1] + 4, hkl[:, 2] + 5] = F
    as_table = dataclasses.replace(base, table=models.StructureFactorTable(table, (-4, -4, -5)))
    ref = from_file.run("exact").image
    for crystal in (as_arrays, as_table):
        sim = Simulation.from_models(dataclasses.replace(exp, crystal=crystal), oversample=1,
                                     seed=3)
        assert np.array_equal(sim.scene.fhkl, from_file.scene.fhkl)
        assert np.array_equal(sim.run("exact").image, ref)


def test_library_never_touches_fdump_unless_asked(tmp_path, monkeypatch):
    """Issue 24: Simulation(default_F=100) after an -hkl run used the left Fdump.bin."""
    monkeypatch.chdir(tmp_path)
    write_hkl(tmp_path / "P1.hkl")
    flags = dict(cell=(70, 80, 90, 90, 90, 90), N=4, lambda_=1.1, detpixels=24, pixel=0.3,
                 distance=60, oversample=1, seed=1, nonoise=True, nopgm=True)
    _ = Simulation(hkl="P1.hkl", **flags).scene  # the library: no Fdump.bin written
    assert not (tmp_path / "Fdump.bin").exists()
    default = Simulation(default_F=100, **flags).run("exact").stats.max_I
    # from_args is nanoBragg.c: writes Fdump.bin after -hkl, reads it when -hkl is absent
    argv = "-cell 70 80 90 90 90 90 -N 4 -lambda 1.1 -detpixels 24 -pixel 0.3 -distance 60 " \
           "-oversample 1 -seed 1 -nonoise -nopgm".split()
    _ = Simulation.from_args([*argv, "-hkl", "P1.hkl"]).scene
    assert (tmp_path / "Fdump.bin").exists()
    assert Simulation(default_F=100, **flags).run("exact").stats.max_I == default
    c_like = Simulation.from_args([*argv, "-default_F", "100"])
    assert c_like.run("exact").stats.max_I != default
    assert any("Fdump.bin left by an earlier run" in w and "from_args" in w
               for w in c_like.scene.resolved.warnings)
    # asked for: dump= reads it
    asked = Simulation(default_F=100, dump="Fdump.bin", **flags)
    assert asked.scene.resolved.structure_factors.origin == "dump"


if __name__ == "__main__" and sys.argv[1:2] == ["cudasim"]:
    _cudasim(Path(sys.argv[2]))


# ------------------------------------------------ every golden command line as models

def _golden_cases() -> list[str]:
    from conftest import golden_case_names

    return golden_case_names()


@pytest.mark.parametrize("name", _golden_cases())
def test_golden_command_lines_pack_the_same_through_models(name, case_workdir, monkeypatch):
    """flags -> Experiment -> from_models packs the very arrays C's flags pack (no render)."""
    from conftest import load_case

    from nbnumba.errors import NbError

    args = list(load_case(name)["args"])
    monkeypatch.chdir(case_workdir)
    try:
        sim = Simulation.from_args(args)
        scene = sim.scene
    except NbError:
        pytest.skip("the command line is refused")
    o = sim.options
    if o.sourcefilename is not None:
        pytest.skip("-sourcefile: source positions are not part of models.Beam")
    if o.detector_twotheta != 0.0:
        pytest.skip("-twotheta: C's distance uses odet before the two-theta rotation")
    exp = sim.experiment
    # the flags models do not hold, as given
    keep = {k: getattr(o, k) for k in ("oversample", "water_size", "seed", "mosaic_seed",
                                       "c_parity", "interpolate", "fudge", "dmin",
                                       "curved_detector", "point_pixel", "oversample_thick",
                                       "oversample_polar", "oversample_omega",
                                       "detector_thicksteps", "detector_mu", "roi_xmin",
                                       "roi_xmax", "roi_ymin", "roi_ymax", "mask_image",
                                       "mask_fpixels", "adc_offset")}
    again = Simulation.from_models(exp)
    for k, v in keep.items():
        setattr(again.options, k, v)
    packed = again.panel_scenes[0]
    assert np.array_equal(packed.det, scene.det)
    # hkls is C's record count (a dense table counts its cells); the kernels test it != 0
    assert (packed.params.hkls != 0) == (scene.params.hkls != 0)
    assert packed.params._replace(hkls=scene.params.hkls) == scene.params
    assert np.array_equal(packed.cells, scene.cells)
    assert np.array_equal(packed.sources, scene.sources)
    assert np.array_equal(packed.a_star, scene.a_star)
    t = scene.resolved.structure_factors.table
    hr, kr, lr = t.h_range, t.k_range, t.l_range
    assert np.array_equal(packed.fhkl[:hr, :kr, :lr], scene.fhkl[:hr, :kr, :lr])
    assert packed.interpolate == scene.interpolate


def test_a_spectrum_equals_cs_dispersion_steps(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [*COMMON, "-default_F", "50", *panel_args(PANELS[0]), "-dispersion", "10",
            "-dispsteps", "3", "-divergence", "0.2", "-divsteps", "2"]
    sim = Simulation.from_args(args)
    lambdas = sim.scene.resolved.sources.lambdas
    assert len(lambdas) == 3
    exp = sim.experiment
    beam = dataclasses.replace(exp.beam, dispersion=0.0, dispersion_steps=-1,
                               spectrum=models.Spectrum(tuple(lambdas)))
    again = Simulation.from_models(dataclasses.replace(exp, beam=beam), oversample=1, seed=3)
    assert np.array_equal(again.scene.sources, sim.scene.sources)
    assert np.array_equal(again.run("exact").image, sim.run("exact").image)


# ------------------------------------------------------- gemmi: models and MTZ -> P1 F

def _tiny_structure(gemmi):
    st = gemmi.Structure()
    st.cell = gemmi.UnitCell(20, 30, 40, 90, 90, 90)
    st.spacegroup_hm = "P 21 21 21"
    model, chain = gemmi.Model("1"), gemmi.Chain("A")
    res = gemmi.Residue()
    res.name, res.seqid = "HOH", gemmi.SeqId("1")
    for name, el, pos in (("O", "O", (1.0, 2.0, 3.0)), ("C", "C", (5.0, 7.0, 11.0))):
        a = gemmi.Atom()
        a.name, a.element, a.pos, a.occ, a.b_iso = name, gemmi.Element(el), \
            gemmi.Position(*pos), 1.0, 10.0
        res.add_atom(a)
    chain.add_residue(res)
    model.add_chain(chain)
    st.add_model(model)
    return st


def test_gemmi_model_and_mtz_give_p1_amplitudes_with_friedel_mates(tmp_path, monkeypatch):
    gemmi = pytest.importorskip("gemmi")
    from nbnumba.formats.gemmi_f import (
        crystal_from_file,
        expand_to_p1,
        structure_factors_from_model,
    )

    st = _tiny_structure(gemmi)
    st.write_pdb(str(tmp_path / "tiny.pdb"))
    hkl, F, read = structure_factors_from_model(tmp_path / "tiny.pdb", d_min_A=4.0)
    table = {tuple(h): f for h, f in zip(hkl.tolist(), F, strict=True)}
    sg = gemmi.find_spacegroup_by_name("P 21 21 21")
    read.setup_cell_images()
    calc = gemmi.StructureFactorCalculatorX(read.cell)
    for h in ([1, 2, 3], [3, 1, 4], [2, 0, 5]):
        for op in sg.operations():
            for mate in (op.apply_to_hkl(h), [-v for v in op.apply_to_hkl(h)]):
                # every mate is there, with the |F| gemmi computes for it directly
                assert table[tuple(mate)] == pytest.approx(
                    abs(calc.calculate_sf_from_model(read[0], mate)), rel=1e-9)
    # MTZ: an asymmetric unit of amplitudes round trip through a file, expanded the same
    asu = gemmi.make_miller_array(read.cell, sg, 4.0)
    amps = np.array([table[tuple(h)] for h in asu.tolist()])
    mtz = gemmi.Mtz(with_base=True)
    mtz.spacegroup, mtz.cell = sg, read.cell
    mtz.add_dataset("d")
    mtz.add_column("FP", "F")
    mtz.set_data(np.column_stack([asu, amps]).astype(np.float32))
    mtz.write_to_file(str(tmp_path / "tiny.mtz"))
    crystal = crystal_from_file(tmp_path / "tiny.mtz", N_cells=(3, 3, 3))
    h2, F2 = crystal.structure_factor_arrays()
    assert np.array_equal(h2, hkl)
    assert np.allclose(F2, F, rtol=1e-6)  # the MTZ holds float32
    assert crystal.cell_angstrom == (20.0, 30.0, 40.0)
    # and it renders: the crystal in a run (F in memory)
    ref = expand_to_p1(asu, amps.astype(np.float32), "P 21 21 21")
    assert np.array_equal(ref[0], h2)
    monkeypatch.chdir(tmp_path)
    exp = Simulation.from_args([*COMMON, "-default_F", "1", *panel_args(PANELS[0])]).experiment
    r = Simulation.from_models(dataclasses.replace(exp, crystal=crystal), oversample=1).run()
    assert r.stats.max_I > 0


def test_multi_panel_result_files_and_roi_warning(multi, tmp_path):
    _, exp, _, _, _ = multi
    sim = Simulation.from_models(exp, oversample=1, seed=3, roi=(0, 3, 0, 3))
    assert any("-roi and -mask apply to a one-panel detector" in w for w in sim.warnings)
    r = sim.run("exact")
    rows, cols = exp.detector.slab_shape
    assert r.header["fpixels"] == cols and r.header["spixels"] == rows
    r.write(floatfile=tmp_path / "f.bin", intfile=tmp_path / "i.img")
    assert np.array_equal(np.fromfile(tmp_path / "f.bin", dtype="<f4").reshape(rows, cols),
                          r.image)
    head = (tmp_path / "i.img").read_bytes()[:512].decode("ascii", "replace")
    assert f"SIZE1={cols};" in head and f"SIZE2={rows};" in head
