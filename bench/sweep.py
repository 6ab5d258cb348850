"""A parameter sweep from Python against the same sweep as processes.

``python bench/sweep.py [--images 20]`` times 20 images of the 1024² small-cell
case (30 Å cubic cell, N = 20, ``-default_F 100``) at 20 detector distances,
each written as C writes it (float image and SMV int image):

- **api**: one Python process that imports nbnumba and loops
  ``nb.Simulation(...).run().write(...)`` (start-up included, warm Numba cache);
- **cli**: 20 ``nanobragg-nb`` processes, one per distance;
- **C**: 20 nanoBragg.c processes (``NB_C_BIN``; an OpenMP build runs with the
  caller's ``OMP_NUM_THREADS``), when the variable is set.

Prints the wall times and the ratios side by side and writes
``bench/results/<date>_sweep.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
BASE = ["-cell", "30", "30", "30", "90", "90", "90", "-default_F", "100", "-N", "20",
        "-lambda", "1.0", "-detpixels", "1024", "-pixel", "0.1", "-nonoise", "-nopgm",
        "-noprogress"]

API_SCRIPT = """
import sys, time
t0 = time.perf_counter()
import nbnumba as nb
distances = [float(d) for d in sys.argv[1:]]
for i, d in enumerate(distances):
    res = nb.Simulation(cell=(30, 30, 30, 90, 90, 90), default_F=100, N=20, lambda_=1.0,
                        detpixels=1024, pixel=0.1, distance=d, nonoise=True,
                        nopgm=True).run()
    res.write(floatfile=f"float_{i:02d}.bin", intfile=f"int_{i:02d}.img")
print(time.perf_counter() - t0)
"""


def distances(n: int) -> list[float]:
    return [60.0 + 5.0 * i for i in range(n)]


def time_processes(commands: list[list[str]], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    for argv in commands:
        subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def nanobragg_nb() -> list[str]:
    script = Path(sys.executable).parent / "nanobragg-nb"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "nbnumba.cli.main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; best is kept")
    args = parser.parse_args(argv)
    ds = distances(args.images)
    env = dict(os.environ)
    c_bin = os.environ.get("NB_C_BIN")
    times: dict[str, list[float]] = {"api": [], "cli": [], "c": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for folder in ("api", "cli", "c", "warm"):
            (root / folder).mkdir()
        # warm the Numba cache once (not timed)
        subprocess.run([sys.executable, "-c", API_SCRIPT, "100"], cwd=root / "warm", env=env,
                       check=True, stdout=subprocess.DEVNULL)
        for _ in range(args.repeat):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", API_SCRIPT, *map(repr, ds)],
                           cwd=root / "api", env=env, check=True, stdout=subprocess.DEVNULL)
            times["api"].append(time.perf_counter() - start)
            cli = [nanobragg_nb() + BASE + ["-distance", repr(d), "-floatfile",
                                            f"float_{i:02d}.bin", "-intfile", f"int_{i:02d}.img"]
                   for i, d in enumerate(ds)]
            times["cli"].append(time_processes(cli, root / "cli", env))
            if c_bin:
                c = [[c_bin] + BASE + ["-distance", repr(d), "-floatfile", f"float_{i:02d}.bin",
                                       "-intfile", f"int_{i:02d}.img"]
                     for i, d in enumerate(ds)]
                times["c"].append(time_processes(c, root / "c", env))
        # the same images, whichever way they were made
        for i in range(len(ds)):
            a = (root / "api" / f"float_{i:02d}.bin").read_bytes()
            b = (root / "cli" / f"float_{i:02d}.bin").read_bytes()
            if a != b:
                raise SystemExit(f"image {i}: the API and the CLI differ")
    best = {k: min(v) for k, v in times.items() if v}
    print(f"{args.images} images, 1024x1024, 30 A cell, N=20 (distances "
          f"{ds[0]:g}..{ds[-1]:g} mm); best of {args.repeat}")
    print(f"{'way':<28}{'wall':>10}{'per image':>12}{'/ C':>8}{'/ cli':>8}")
    labels = {"api": "Python API (one process)", "cli": "nanobragg-nb processes",
              "c": "nanoBragg.c processes"}
    for key in ("api", "cli", "c"):
        if key not in best:
            continue
        vs_c = f"{best[key] / best['c']:.3f}" if "c" in best else "-"
        vs_cli = f"{best[key] / best['cli']:.3f}"
        print(f"{labels[key]:<28}{best[key]:>9.2f}s{best[key] / len(ds):>11.3f}s"
              f"{vs_c:>8}{vs_cli:>8}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%dT%H%M%S")
    record = {"images": args.images, "distances_mm": ds, "times_s": times, "best_s": best,
              "ratios": {k: best[k] / best["c"] for k in best} if "c" in best else None,
              "c_bin": c_bin, "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
              "machine": platform.machine(), "cpus": os.cpu_count()}
    path = RESULTS / f"{stamp}_sweep.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"written {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
