"""Score DIALS' stills indexing against a stills dataset's truth (when DIALS is present).

Simulates ``--shots`` stills (``nanobragg-nb stills``, noise image), imports them for
DIALS from the truth ``.expt`` with the crystals removed (experiment k = image k of the
NXmx stack), runs ``dials.find_spots`` and ``dials.index`` (``joint_indexing=False``,
the known cell, in ``--space-group``; ``stills.indexer=sequences``: Debian's DIALS lacks the cctbx
``xfel`` extension the stills indexer's candidate refinement imports), then
``bench/stills_score.py`` (DIALS' Python) for the misorientation of each image.
Writes ``bench/results/<time>_stills_index.json``.

    python bench/stills_index.py [--shots 10] [--spectrum mono] [--mosaic 0.02] [--N 30]
                                 [--distance 60] [--lambda 1.3] [--fluence 1e27]
                                 [--hkl wilson[:B]] [--geometry-known] [--space-group P1]
                                 [--index-phil P=V ...] [--find-phil P=V ...]
                                 [--keep DIR | --reuse DIR]

``--hkl wilson:B`` simulates a Wilson-distributed structure (acentric |F|, one value per
4/mmm-equivalent set, overall B in A^2, P4_3 2_1 2's absences; as
tests/test_dials_e2e.py's ``write_hkl``) instead of ``-default_F 100``.
``--geometry-known`` tells DIALS what the simulation knows (beam and detector:
``refinement.parameterisation.{beam,detector}.fix=all``), so each still refines only
its crystal (with ``--space-group P43212``: orientation, a and c). ``--reuse DIR``
re-indexes a ``--keep`` folder's spots (same simulation) with other DIALS settings.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CELL = ("79.1", "79.1", "37.9", "90", "90", "90")
# Not crystal.fix=cell: the indexer keeps its candidate's cell (up to 0.7 % off), which a
# fixed cell would then keep (3/10 within 0.1 deg); the space group's constraints do better.
GEOMETRY_KNOWN = ("refinement.parameterisation.beam.fix=all",
                  "refinement.parameterisation.detector.fix=all")


def asu_key(h, k, l):
    """One number per set of 4/mmm-equivalent reflections (Friedel mates included)."""
    import numpy as np

    ah, ak = np.abs(h), np.abs(k)
    return (np.maximum(ah, ak) * 1000 + np.minimum(ah, ak)) * 1000 + np.abs(l)


def write_wilson_hkl(path: Path, b_iso: float, d_min: float, seed: int = 2026) -> None:
    """nanoBragg ``h k l F`` text to ``d_min`` (A): acentric Wilson |F| (rms 100 at
    low angle) times exp(-B stol^2), equal for equivalents, 0 for P4_3 2_1 2's absences."""
    import numpy as np

    a, c = float(CELL[0]), float(CELL[2])
    hmax, lmax = int(a / d_min) + 1, int(c / d_min) + 1
    h, k, l = np.mgrid[-hmax:hmax + 1, -hmax:hmax + 1, -lmax:lmax + 1].reshape(3, -1)
    stol2 = ((h * h + k * k) / (a * a) + l * l / (c * c)) / 4
    keep = (stol2 <= 1 / (4 * d_min * d_min)) & ((h != 0) | (k != 0) | (l != 0))
    h, k, l, stol2 = h[keep], k[keep], l[keep], stol2[keep]
    absent = (((h == 0) & (k == 0) & (l % 4 != 0)) | ((k == 0) & (l == 0) & (h % 2 != 0))
              | ((h == 0) & (l == 0) & (k % 2 != 0)))
    _, inverse = np.unique(asu_key(h, k, l), return_inverse=True)
    wilson = np.random.default_rng(seed).exponential(1.0, inverse.max() + 1)[inverse]
    f = np.where(absent, 0.0, 100.0 * np.sqrt(wilson) * np.exp(-b_iso * stol2))
    rows = zip(h, k, l, f, strict=True)
    path.write_text("".join(f"{x} {y} {z} {v:.2f}\n" for x, y, z, v in rows))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shots", type=int, default=10)
    p.add_argument("--spectrum", default="mono")
    p.add_argument("--mosaic", default="0.02")
    p.add_argument("--N", default="30")
    p.add_argument("--distance", default="60")
    p.add_argument("--lambda", dest="wavelength", default="1.3")
    p.add_argument("--fluence", default="1e27")
    p.add_argument("--hkl", default=None, help="wilson[:B] (default: -default_F 100)")
    p.add_argument("--geometry-known", action="store_true")
    p.add_argument("--space-group", default="P1", help="dials.index known_symmetry")
    p.add_argument("--index-phil", nargs="*", default=[])
    p.add_argument("--find-phil", nargs="*", default=["min_spot_size=2"])
    p.add_argument("--nproc", default="1")
    p.add_argument("--keep", default=None)
    p.add_argument("--reuse", default=None)
    a = p.parse_args()
    if shutil.which("dials.index") is None:
        sys.exit("DIALS not found (dials.index on PATH)")
    import hdf5plugin

    folder = a.reuse or a.keep or tempfile.mkdtemp(prefix="stills_index_")
    os.makedirs(folder, exist_ok=True)
    structure = ["-default_F", "100"]
    if a.hkl:
        b_iso = float(a.hkl.split(":")[1]) if ":" in a.hkl else 15.0
        structure = ["-hkl", "wilson.hkl", "-default_F", "0"]
    args = ["-cell", *CELL, *structure, "-N", a.N, "-lambda", a.wavelength,
            "-distance", a.distance, "-pixel", "0.1", "-detpixels", "1024",
            "-oversample", "1", "-mosaic", a.mosaic, "-mosaic_domains", "10", "-water", "2",
            "-fluence", a.fluence, "-seed", "11"]
    env = {**os.environ, "HDF5_PLUGIN_PATH": hdf5plugin.PLUGIN_PATH}
    dials_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    find = ["dials.find_spots", "imported.expt", f"nproc={a.nproc}", *a.find_phil]
    t0 = time.perf_counter()
    simulated = 0.0
    if a.reuse:  # the folder's own simulation and spots: only the indexing changes
        made = json.loads(Path(folder, "simulated.json").read_text())
        args, find, a.spectrum, a.shots = made["args"], made["find"], made["spectrum"], \
            made["shots"]
        for name in ("indexed.expt", "indexed.refl"):
            Path(folder, name).unlink(missing_ok=True)
    else:
        if a.hkl:
            # resolution of the detector's corner, with a margin
            half = 0.1 * 1024 / 2 * 2 ** 0.5
            import math

            two_theta = math.atan(half / float(a.distance))
            d_corner = float(a.wavelength) / (2 * math.sin(two_theta / 2))
            write_wilson_hkl(Path(folder, "wilson.hkl"), b_iso, 0.95 * d_corner)
        subprocess.run([sys.executable, "-m", "nbnumba.cli.main", "stills", "--shots",
                        str(a.shots), "--workers", "0", "--no-progress", "--template",
                        "run.h5", "--content", "noise", "--spectrum", a.spectrum, *args],
                       cwd=folder, check=True, env=env)
        simulated = time.perf_counter() - t0
        doc = json.loads(Path(folder, "run.expt").read_text())
        doc["crystal"] = []
        for e in doc["experiment"]:
            e.pop("crystal", None)
        Path(folder, "imported.expt").write_text(json.dumps(doc))
        subprocess.run(find, cwd=folder, check=True, env=dials_env, capture_output=True)
        Path(folder, "simulated.json").write_text(json.dumps(
            {"args": args, "find": find, "spectrum": a.spectrum, "shots": a.shots}))
    index = ["dials.index", "imported.expt", "strong.refl", "joint_indexing=False",
             "stills.indexer=sequences", "known_symmetry.space_group=" + a.space_group,
             "known_symmetry.unit_cell=" + ",".join(CELL), f"nproc={a.nproc}",
             *(GEOMETRY_KNOWN if a.geometry_known else ()), *a.index_phil]
    subprocess.run(index, cwd=folder, env=dials_env, capture_output=True)
    indexed = Path(folder, "indexed.expt").is_file()
    score = {"images": a.shots, "indexed": 0, "fraction_within": 0.0}
    lines: list[str] = []
    if indexed:
        out = subprocess.run(["/usr/bin/python3", str(HERE / "stills_score.py"), "run.expt",
                              "indexed.expt"], cwd=folder, env=dials_env, check=True,
                             capture_output=True, text=True).stdout.splitlines()
        lines, score = out[:-1], json.loads(out[-1])
    report = {"args": args, "spectrum": a.spectrum, "shots": a.shots,
              "find_spots": find, "index": index, "reused": bool(a.reuse),
              "simulate_s": simulated, "total_s": time.perf_counter() - t0,
              "per_image": lines, **score, "loadavg": os.getloadavg(), "folder": folder}
    stamp = time.strftime("%Y-%m-%dT%H%M%S")
    out_path = HERE / "results" / f"{stamp}_stills_index.json"
    out_path.write_text(json.dumps(report, indent=1) + "\n")
    print("\n".join(lines))
    print(json.dumps({k: v for k, v in report.items() if k not in ("args", "per_image")}))
    if not (a.keep or a.reuse):
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
