"""Whole-process timing of ``noisify-nb`` against serial noisify.c (``NOISIFY_C_BIN``).

Cases: ``-psf gauss -psf_fwhm 500 -psf_radius 10 -readout 3`` on a dense 2463x2527
frame, the supervisor image (../shared/golden/supervisor/float.bin) plus 50 photons per
pixel; the same frame without the PSF (only the serial noise draws); and issue 24's
fiber case, ``-psf fiber`` with the automatic radius on a 512x512 image holding one
pixel of 1e5 photons (radius 959, capped at 512: C spreads that one pixel, a gather
over the largest radius for every pixel took 12 s); and the fiber PSF with the automatic
radius on the dense frame (every pixel its own radius, 40 at most), where the PSF is most
of C's time. ``--cases`` picks some.
Each program runs ``--pairs`` times alternating (ours, C, ...) after one untimed warm-up
each, in separate folders; wall time, CPU time and peak RSS come from ``os.wait4``
(bench/suite.py's ``run_once``). Outputs of ours and C are compared byte for byte.
Medians and ours/C ratios are printed side by side and written to
``bench/results/<date>_noisify.json``.

    NOISIFY_C_BIN=/tmp/cbin/noisify python -m bench.noisify_bench --pairs 3
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.suite import GOLDEN, RESULTS, Sample, _cpu_model, _git_commit, run_once

FAST, SLOW = 2463, 2527
CASES = {
    "psf_gauss_r10_readout3": ["-psf", "gauss", "-psf_fwhm", "500", "-psf_radius", "10",
                               "-readout", "3"],
    "noise_only_readout3": ["-readout", "3"],
    "psf_fiber_auto_one_bright_512": ["-psf", "fiber"],
    "psf_fiber_auto_dense": ["-psf", "fiber"],
}
ONE_BRIGHT = 512  # the fiber case's image: ONE_BRIGHT^2 pixels, one of them 1e5 photons
OUTPUTS = ("intimage.img", "image.pgm", "noiseimage.img")


def ours_command() -> list[str]:
    script = shutil.which("noisify-nb", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "nbnumba.cli.noisify"]


def dense_frame(path: Path) -> None:
    """The supervisor float image + 50 photons/pixel, float32."""
    image = np.fromfile(GOLDEN / "supervisor" / "float.bin", dtype="<f4")
    if image.size != FAST * SLOW:
        raise SystemExit(f"supervisor float.bin has {image.size} pixels, not {FAST}x{SLOW}")
    (image + np.float32(50.0)).astype("<f4").tofile(path)


def one_bright(path: Path) -> None:
    """512x512 float32 zeros with 1e5 photons at (256, 256)."""
    image = np.zeros((ONE_BRIGHT, ONE_BRIGHT), dtype="<f4")
    image[ONE_BRIGHT // 2, ONE_BRIGHT // 2] = 1e5
    image.tofile(path)


def case_argv(name: str, root: Path) -> list[str]:
    """The full noisify command line of case ``name`` (its input written under ``root``)."""
    if name.startswith("psf_fiber_auto_one_bright"):
        path = root / "one_bright.bin"
        if not path.is_file():
            one_bright(path)
        return ["-floatfile", str(path), "-detpixels", str(ONE_BRIGHT), "-seed", "1",
                *CASES[name]]
    path = root / "dense.bin"
    if not path.is_file():
        dense_frame(path)
    return ["-floatfile", str(path), "-detpixels_x", str(FAST), "-detpixels_y", str(SLOW),
            "-seed", "1", *CASES[name]]


def _median(samples: list[Sample]) -> dict[str, float]:
    return {k: statistics.median(getattr(s, k) for s in samples)
            for k in ("wall", "cpu", "rss_mb")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--label", default="")
    ap.add_argument("--cases", nargs="*", choices=sorted(CASES), help="only these cases")
    args = ap.parse_args(argv)
    if not (GOLDEN / "supervisor" / "float.bin").is_file():
        print("../shared/golden/supervisor/float.bin is missing", file=sys.stderr)
        return 2
    c_bin = os.environ.get("NOISIFY_C_BIN")
    env = dict(os.environ)
    ours = ours_command()
    report: dict = {"program": "noisify-nb", "commit": _git_commit(), "cpu": _cpu_model(),
                    "cores": os.cpu_count(), "python": platform.python_version(),
                    "c_bin": c_bin, "pairs": args.pairs, "frame": [SLOW, FAST],
                    "load_at_start": os.getloadavg(), "cases": {}}
    with tempfile.TemporaryDirectory(prefix="noisify_bench_") as tmp:
        root = Path(tmp)
        for name, extra in CASES.items():
            if args.cases and name not in args.cases:
                continue
            argv_common = case_argv(name, root)
            dirs = {who: root / f"{name}_{who}" for who in ("ours", "c")}
            for d in dirs.values():
                d.mkdir()
            runs = {"ours": ours + argv_common}
            if c_bin:
                runs["c"] = [c_bin, *argv_common]
            samples: dict[str, list[Sample]] = {who: [] for who in runs}
            for who, cmd in runs.items():  # warm-up (Numba's cache, the page cache)
                run_once(cmd, dirs[who], env)
            for _ in range(args.pairs):
                for who, cmd in runs.items():
                    samples[who].append(run_once(cmd, dirs[who], env))
            entry = {who: _median(s) for who, s in samples.items()}
            entry["args"] = extra
            if c_bin:
                entry["ratio_wall"] = entry["ours"]["wall"] / entry["c"]["wall"]
                entry["ratio_cpu"] = entry["ours"]["cpu"] / entry["c"]["cpu"]
                entry["identical_outputs"] = all(
                    (dirs["ours"] / f).read_bytes() == (dirs["c"] / f).read_bytes()
                    for f in OUTPUTS)
            report["cases"][name] = entry
    report["load_at_end"] = os.getloadavg()
    print(f"noisify-nb vs {'noisify.c' if c_bin else '(no NOISIFY_C_BIN)'}, "
          f"{args.pairs} pairs, {os.cpu_count()} cores, load average "
          f"{report['load_at_start'][0]:.1f} at start, {report['load_at_end'][0]:.1f} at end")
    print(f"{'case':30s} {'ours wall':>10s} {'C wall':>8s} {'ratio':>6s} "
          f"{'ours cpu':>9s} {'C cpu':>7s} {'same files':>10s}")
    for name, e in report["cases"].items():
        c = e.get("c", {})
        print(f"{name:30s} {e['ours']['wall']:9.2f}s {c.get('wall', float('nan')):7.2f}s "
              f"{e.get('ratio_wall', float('nan')):6.3f} {e['ours']['cpu']:8.2f}s "
              f"{c.get('cpu', float('nan')):6.2f}s {str(e.get('identical_outputs', '-')):>10s}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H%M%S")
    out = RESULTS / f"{stamp}_noisify{args.label}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out.relative_to(RESULTS.parents[1])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
