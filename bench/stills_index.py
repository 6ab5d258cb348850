"""Score DIALS' stills indexing against a stills dataset's truth (when DIALS is present).

Simulates ``--shots`` stills (``nanobragg-nb stills``, noise image), imports them for
DIALS from the truth ``.expt`` with the crystals removed (experiment k = image k of the
NXmx stack), runs ``dials.find_spots`` and ``dials.index`` (``joint_indexing=False``,
the known cell in P1; ``stills.indexer=sequences``: Debian's DIALS lacks the cctbx
``xfel`` extension the stills indexer's candidate refinement imports), then
``bench/stills_score.py`` (DIALS' Python) for the misorientation of each image.
Writes ``bench/results/<time>_stills_index.json``.

    python bench/stills_index.py [--shots 10] [--spectrum mono] [--mosaic 0.02] [--N 30]
                                 [--distance 60] [--keep DIR]
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shots", type=int, default=10)
    p.add_argument("--spectrum", default="mono")
    p.add_argument("--mosaic", default="0.02")
    p.add_argument("--N", default="30")
    p.add_argument("--distance", default="60")
    p.add_argument("--keep", default=None)
    a = p.parse_args()
    if shutil.which("dials.index") is None:
        sys.exit("DIALS not found (dials.index on PATH)")
    import hdf5plugin

    folder = a.keep or tempfile.mkdtemp(prefix="stills_index_")
    os.makedirs(folder, exist_ok=True)
    args = ["-cell", *CELL, "-default_F", "100", "-N", a.N, "-lambda", "1.3",
            "-distance", a.distance, "-pixel", "0.1", "-detpixels", "1024",
            "-oversample", "1", "-mosaic", a.mosaic, "-mosaic_domains", "10", "-water", "2",
            "-fluence", "1e27", "-seed", "11"]
    env = {**os.environ, "HDF5_PLUGIN_PATH": hdf5plugin.PLUGIN_PATH}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nbnumba.cli.main", "stills", "--shots",
                    str(a.shots), "--workers", "0", "--no-progress", "--template", "run.h5",
                    "--content", "noise", "--spectrum", a.spectrum, *args], cwd=folder,
                   check=True, env=env)
    simulated = time.perf_counter() - t0
    doc = json.loads(Path(folder, "run.expt").read_text())
    doc["crystal"] = []
    for e in doc["experiment"]:
        e.pop("crystal", None)
    Path(folder, "imported.expt").write_text(json.dumps(doc))
    dials_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    subprocess.run(["dials.find_spots", "imported.expt", "nproc=1", "min_spot_size=2"],
                   cwd=folder, check=True, env=dials_env, capture_output=True)
    subprocess.run(["dials.index", "imported.expt", "strong.refl", "joint_indexing=False",
                    "stills.indexer=sequences", "known_symmetry.space_group=P1",
                    "known_symmetry.unit_cell=" + ",".join(CELL), "nproc=1"],
                   cwd=folder, env=dials_env, capture_output=True)
    indexed = Path(folder, "indexed.expt").is_file()
    score = {"images": a.shots, "indexed": 0, "fraction_within": 0.0}
    lines: list[str] = []
    if indexed:
        out = subprocess.run(["/usr/bin/python3", str(HERE / "stills_score.py"), "run.expt",
                              "indexed.expt"], cwd=folder, env=dials_env, check=True,
                             capture_output=True, text=True).stdout.splitlines()
        lines, score = out[:-1], json.loads(out[-1])
    report = {"args": args, "spectrum": a.spectrum, "shots": a.shots,
              "simulate_s": simulated, "total_s": time.perf_counter() - t0,
              "per_image": lines, **score, "loadavg": os.getloadavg(), "folder": folder}
    stamp = time.strftime("%Y-%m-%dT%H%M%S")
    out_path = HERE / "results" / f"{stamp}_stills_index.json"
    out_path.write_text(json.dumps(report, indent=1) + "\n")
    print("\n".join(lines))
    print(json.dumps({k: v for k, v in report.items() if k not in ("args", "per_image")}))
    if not a.keep:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
