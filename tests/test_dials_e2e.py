"""DIALS processes what we simulate: a realistic rotation series, end to end.

A lysozyme-like crystal (P4_3 2_1 2, 79.1 x 79.1 x 37.9 A) with structure factors from an hkl
file written here (random |F| with a Wilson falloff, one value per symmetry-equivalent set,
the space group's absences), 1 A X-rays, 36 frames of 0.5 deg (8 phi steps each, mosaic
spread), water background from ``nonbragg-nb`` (``tests/data/water.stol``: every 20th row
of bl831/nanoBragg's water.stol, MIT) and noisify's detector (PSF, flicker, calibration,
Poisson) on a 1000 x 1100 detector of 0.172 mm pixels, written as an NXmx master with the
true models beside it (``--expt-out``). The real programs then run the README's recipe
(:data:`SIMULATE` and :data:`PROCESS`, exactly these command lines):
``dials.import`` -> ``dials.find_spots`` -> ``dials.index`` -> ``dials.refine`` ->
``dials.integrate`` -> ``dials.scale``; and the first 12 frames of the same series, as
miniCBF files, are imported and indexed too.

What must hold: >= 85 % of the strong spots indexed, positional RMSD <= 0.5 px, the refined
cell within 0.3 % of the truth, the orientation within 0.05 deg of the ``--expt-out``
crystal, and the scaled intensities correlate with the input |F|^2 (Pearson >= 0.9, on the
unique reflections both have, mapped to the asymmetric unit).

Skipped (with the reason) without DIALS on the PATH (``apt-get install dials``).
Slow: a few minutes on 2 cores (the series is most of it).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("dials.import") is None,
                       reason="DIALS is not installed (dials.import not on the PATH; "
                              "apt-get install dials)"),
]

DATA = Path(__file__).parent / "data"
CELL = (79.1, 79.1, 37.9)  # A; alpha = beta = gamma = 90
WILSON_B = 15.0  # A^2
D_MIN = 1.9  # A: the detector's corner is at 2.15 A

GEOMETRY = "-lambda 1 -distance 250 -detpixels_f 1000 -detpixels_s 1100 -pixel 0.172"
CRYSTAL = ("-hkl lyso.hkl -cell 79.1 79.1 37.9 90 90 90 -Na 8 -Nb 8 -Nc 16 -gauss_xtal "
           "-mosaic 0.2 -mosaic_dom 5 -misset 10 20 30")
SCAN = "-osc 0.5 -phisteps 8 -oversample 1 -seed 1"
NOISIFY = "-psf gauss -psf_fwhm 50 -flicker 0.02"
FRAMES = 36

# the README's recipe: the simulation ...
SIMULATE = [
    f"nonbragg-nb -stol water.stol {GEOMETRY} -flux 1e12 -exposure 0.1 -beamsize 0.1 "
    f"-thick 0.01 -floatfile water.bin -nonoise -nopgm -noprogress",
    f"nanobragg-nb series --frames {FRAMES} --workers 2 --template run_master.h5 "
    f"--expt-out truth.expt --background water.bin --noisify '{NOISIFY}' --no-progress "
    f"{CRYSTAL} {GEOMETRY} {SCAN}",
]
# ... and its processing (HDF5_PLUGIN_PATH set to hdf5plugin's PLUGIN_PATH)
PROCESS = [
    "dials.import run_master.h5",
    "dials.find_spots imported.expt nproc=2",
    "dials.index imported.expt strong.refl space_group=P43212 nproc=2",
    "dials.refine indexed.expt indexed.refl scan_varying=False nproc=2",
    "dials.integrate refined.expt refined.refl nproc=2",
    "dials.scale integrated.expt integrated.refl nproc=2",
]
# the first 12 frames of the same series as miniCBF files, indexed on their own
CBF = [
    f"nanobragg-nb series --frames 12 --workers 2 --template cbf/run_{{frame:05d}}.cbf "
    f"--expt-out cbf/truth.expt --background water.bin --noisify '{NOISIFY}' --no-progress "
    f"{CRYSTAL} {GEOMETRY} {SCAN}",
    "dials.import template=cbf/run_#####.cbf output.experiments=cbf.expt",
    "dials.find_spots cbf.expt output.reflections=cbf_strong.refl nproc=2",
    "dials.index cbf.expt cbf_strong.refl space_group=P43212 nproc=2 "
    "output.experiments=cbf_indexed.expt output.reflections=cbf_indexed.refl",
]

# run with DIALS' own python (flex): what the .refl files hold, as JSON
READ_REFL = r"""
import json, sys
from dials.array_family import flex
strong = flex.reflection_table.from_file("strong.refl")
indexed = flex.reflection_table.from_file("indexed.refl")
refined = flex.reflection_table.from_file("refined.refl")
used = refined.select(refined.get_flags(refined.flags.used_in_refinement))
dx, dy, _ = (used["xyzcal.px"] - used["xyzobs.px.value"]).parts()
scaled = flex.reflection_table.from_file("scaled.refl")
scaled = scaled.select(scaled.get_flags(scaled.flags.scaled))
cbf = flex.reflection_table.from_file("cbf_strong.refl")
cbf_indexed = flex.reflection_table.from_file("cbf_indexed.refl")
json.dump({
    "strong": len(strong),
    "indexed": indexed.get_flags(indexed.flags.indexed).count(True),
    "rmsd_x_px": (flex.sum(dx * dx) / len(dx)) ** 0.5,
    "rmsd_y_px": (flex.sum(dy * dy) / len(dy)) ** 0.5,
    "used": len(used),
    "hkl": [list(m) for m in scaled["miller_index"]],
    "intensity": list(scaled["intensity.scale.value"]),
    "cbf_strong": len(cbf),
    "cbf_indexed": cbf_indexed.get_flags(cbf_indexed.flags.indexed).count(True),
}, sys.stdout)
"""


def asu_key(h: np.ndarray, k: np.ndarray, l: np.ndarray) -> np.ndarray:
    """One number per set of reflections equivalent in 4/mmm (P4_3 2_1 2's Laue class,
    Friedel mates included): (max(|h|,|k|), min(|h|,|k|), |l|)."""
    ah, ak = np.abs(h), np.abs(k)
    return (np.maximum(ah, ak) * 1000 + np.minimum(ah, ak)) * 1000 + np.abs(l)


def write_hkl(path: Path, seed: int = 2026) -> dict[int, float]:
    """nanoBragg's hkl text (``h k l F``) for every reflection to :data:`D_MIN`: acentric
    Wilson |F| (|F|^2 exponential) times exp(-B stol^2), the same for equivalents, 0 for
    P4_3 2_1 2's absences (00l, l != 4n; h00 and 0k0, odd). Returns |F| by asu_key."""
    a, _, c = CELL
    hmax, lmax = int(a / D_MIN) + 1, int(c / D_MIN) + 1
    h, k, l = np.mgrid[-hmax:hmax + 1, -hmax:hmax + 1, -lmax:lmax + 1].reshape(3, -1)
    stol2 = ((h * h + k * k) / (a * a) + l * l / (c * c)) / 4
    keep = (stol2 <= 1 / (4 * D_MIN * D_MIN)) & ((h != 0) | (k != 0) | (l != 0))
    h, k, l, stol2 = h[keep], k[keep], l[keep], stol2[keep]
    absent = (((h == 0) & (k == 0) & (l % 4 != 0)) | ((k == 0) & (l == 0) & (h % 2 != 0))
              | ((h == 0) & (l == 0) & (k % 2 != 0)))
    keys = asu_key(h, k, l)
    unique, inverse = np.unique(keys, return_inverse=True)
    wilson = np.random.default_rng(seed).exponential(1.0, unique.size)[inverse]
    f = np.where(absent, 0.0, 100.0 * np.sqrt(wilson) * np.exp(-WILSON_B * stol2))
    rows = zip(h, k, l, f, strict=True)
    path.write_text("".join(f"{a} {b} {c} {v:.2f}\n" for a, b, c, v in rows))
    return dict(zip(keys.tolist(), f.tolist(), strict=True))


def run(command: str, folder: Path, env: dict) -> float:
    """One recipe line (our programs from this interpreter's environment); its seconds."""
    argv = shlex.split(command)
    if not argv[0].startswith("dials."):
        argv[0] = str(Path(sys.executable).parent / argv[0])
    start = time.monotonic()
    done = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return time.monotonic() - start


def crystal_axes(path: Path) -> np.ndarray:
    """The real-space a, b, c (rows, A, dxtbx's lab frame) of an .expt's crystal."""
    c = json.loads(path.read_text())["crystal"][0]
    return np.array([c["real_space_a"], c["real_space_b"], c["real_space_c"]])


def misorientation_deg(truth: np.ndarray, found: np.ndarray) -> float:
    """The rotation (deg) between two bases of one lattice, after the integer change of
    basis (a symmetry operation of the indexing) that maps one onto the other."""
    change = np.rint(found @ np.linalg.inv(truth))
    assert abs(abs(np.linalg.det(change)) - 1) < 1e-9, change
    u, _, vt = np.linalg.svd(np.linalg.solve(change @ truth, found))
    rotation = u @ vt
    return float(np.degrees(np.arccos(np.clip((np.trace(rotation) - 1) / 2, -1, 1))))


def dials_python() -> str:
    """DIALS' interpreter: dials.python (its own builds), else dials.import's #! line."""
    if shutil.which("dials.python"):
        return "dials.python"
    first = Path(shutil.which("dials.import")).read_text().splitlines()[0]
    return first[2:].strip().split()[0]


@pytest.fixture(scope="module")
def processed(tmp_path_factory) -> tuple[Path, dict, dict]:
    hdf5plugin = pytest.importorskip("hdf5plugin")
    folder = tmp_path_factory.mktemp("dials_e2e")
    shutil.copy(DATA / "water.stol", folder / "water.stol")
    truth_f = write_hkl(folder / "lyso.hkl")
    env = dict(os.environ)
    env.setdefault("HDF5_PLUGIN_PATH", hdf5plugin.PLUGIN_PATH)
    (folder / "cbf").mkdir()
    for command in SIMULATE + PROCESS + CBF:  # the seconds each took: pytest -s shows them
        print(f"{run(command, folder, env):7.1f} s  {command[:70]}")
    read = subprocess.run([dials_python(), "-c", READ_REFL], cwd=folder, env=env,
                          capture_output=True, text=True)
    assert read.returncode == 0, read.stderr
    return folder, json.loads(read.stdout), truth_f


def test_index_and_refine_to_the_truth(processed):
    folder, refl, _ = processed
    assert refl["indexed"] >= 0.85 * refl["strong"], refl
    assert refl["used"] > 500
    assert refl["rmsd_x_px"] <= 0.5 and refl["rmsd_y_px"] <= 0.5, refl
    truth, refined = crystal_axes(folder / "truth.expt"), crystal_axes(folder / "refined.expt")
    lengths = np.sort(np.linalg.norm(refined, axis=1))
    angle = misorientation_deg(truth, refined)
    print(f"indexed {refl['indexed']}/{refl['strong']}, RMSD {refl['rmsd_x_px']:.3f} "
          f"{refl['rmsd_y_px']:.3f} px ({refl['used']} spots), cell {lengths.round(3)}, "
          f"orientation {angle:.4f} deg from truth.expt")
    assert lengths == pytest.approx(np.sort(CELL), rel=3e-3)
    assert angle <= 0.05


def test_scaled_intensities_follow_the_input_structure_factors(processed):
    _, refl, truth_f = processed
    hkl = np.array(refl["hkl"])
    keys = asu_key(hkl[:, 0], hkl[:, 1], hkl[:, 2])
    merged = defaultdict(list)
    for key, intensity in zip(keys.tolist(), refl["intensity"], strict=True):
        merged[key].append(intensity)
    both = [key for key in merged if key in truth_f]
    assert len(both) > 1000
    ours = np.array([np.mean(merged[key]) for key in both])
    true_i = np.array([truth_f[key] ** 2 for key in both])
    pearson = np.corrcoef(ours, true_i)[0, 1]
    print(f"Pearson(scaled I, |F|^2) = {pearson:.4f} on {len(both)} unique reflections")
    assert pearson >= 0.9


def test_minicbf_frames_index_to_the_same_truth(processed):
    folder, refl, _ = processed
    assert refl["cbf_indexed"] >= 0.85 * refl["cbf_strong"], refl
    truth = crystal_axes(folder / "cbf" / "truth.expt")
    assert np.allclose(truth, crystal_axes(folder / "truth.expt"))
    found = crystal_axes(folder / "cbf_indexed.expt")
    angle = misorientation_deg(truth, found)
    print(f"miniCBF: indexed {refl['cbf_indexed']}/{refl['cbf_strong']}, orientation "
          f"{angle:.4f} deg from truth.expt")
    assert angle <= 0.05
