"""Whole-process timings of the companions against serial C, in one run: ``nonbragg-nb``
vs nonBragg.c and ``noisify-nb`` vs noisify.c.

    NONBRAGG_C_BIN=/tmp/cbin/nonBragg NOISIFY_C_BIN=/tmp/cbin/noisify \
        python -m bench.companions_bench [--pairs N] [--cases NAME ...]

Each case runs ours and C in alternating pairs after one untimed warm-up each
(so Numba's cache is warm), in separate folders holding copies of
``../shared/companions/inputs`` (noisify's input images are written by
:mod:`bench.noisify_bench`); wall and CPU time come from ``os.wait4``
(:func:`bench.suite.run_once`).  Medians and ours/C ratios (wall and CPU) are printed
side by side with the load average before and after, the output files are compared
byte for byte, and everything is written to ``bench/results/<date>_companions.json``.
Issue 24's goals on 2 idle cores: nonbragg-nb at most 0.1 of C's wall time (the 1024²
water case), noisify-nb at most 0.25 (the dense PSF frame).  A case whose C variable is
unset is timed for ours alone.
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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench import noisify_bench
from bench.suite import Sample, _cpu_model, _git_commit, run_once

REPO = Path(__file__).resolve().parents[1]
COMPANIONS = Path(os.environ.get("NB_COMPANIONS", REPO.parent / "shared" / "companions"))
RESULTS = REPO / "bench" / "results"


@dataclass
class Case:
    name: str
    prog: str  # our console script
    c_env: str  # environment variable naming the C build
    args: list[str]
    goal: float | None  # wall-time ratio the issue asks for
    note: str
    outputs: tuple[str, ...] = ("float.bin",)  # compared with C's byte for byte
    # the full argument list, given the folder for generated inputs (else ``args``)
    argv: Callable[[Path], list[str]] | None = field(default=None, repr=False)


WATER_1024 = ["-stol", "water.stol", "-lambda", "1", "-dispersion", "0.1", "-dispsteps", "3",
              "-divergence", "0.28", "-divsteps", "3", "-oversample", "2", "-distance", "100",
              "-detpixels", "1024", "-pixel", "0.1", "-flux", "1e12", "-exposure", "1",
              "-beamsize", "0.1", "-floatfile", "float.bin", "-intfile", "int.img",
              "-pgmfile", "img.pgm", "-nonoise", "-noprogress"]
WATER_256 = ["-stol", "water.stol", "-distance", "100", "-detpixels", "256", "-pixel", "0.2",
             "-flux", "1e12", "-exposure", "1", "-beamsize", "0.1", "-thick", "1", "-seed", "1",
             "-noprogress"]

CASES = [
    Case("nonbragg_water_1024", "nonbragg-nb", "NONBRAGG_C_BIN", WATER_1024, 0.1,
         "water 1024^2, oversample 2, 3 wavelengths x 3x3 divergence (round: 5 kept) = "
         "15 sources"),
    Case("nonbragg_water_256_noise", "nonbragg-nb", "NONBRAGG_C_BIN", WATER_256, None,
         "water_defaults golden case: 256^2, 1 source, all four outputs incl. noise",
         ("floatimage.bin", "intimage.img", "noiseimage.img")),
    *(Case(name, "noisify-nb", "NOISIFY_C_BIN", noisify_bench.CASES[name],
           0.25 if name == "psf_gauss_r10_readout3" else None, note,
           ("intimage.img", "image.pgm", "noiseimage.img"),
           lambda root, name=name: noisify_bench.case_argv(name, root))
      for name, note in (
          ("psf_gauss_r10_readout3", "2463x2527 dense frame, Gaussian PSF radius 10, read "
           "noise"),
          ("noise_only_readout3", "2463x2527 dense frame, noise only (serial draws)"),
          ("psf_fiber_auto_one_bright_512", "issue 24: 512^2, one pixel of 1e5 photons, "
           "fiber PSF, automatic radius (959, capped at 512)"))),
]


def _command(prog: str) -> list[str]:
    script = shutil.which(prog, path=str(Path(sys.executable).parent))
    module = {"nonbragg-nb": "nbnumba.cli.nonbragg", "noisify-nb": "nbnumba.cli.noisify"}[prog]
    return [script] if script else [sys.executable, "-m", module]


def _workdir(root: Path, name: str) -> Path:
    path = root / name
    path.mkdir(parents=True)
    for f in (COMPANIONS / "inputs").iterdir():
        shutil.copyfile(f, path / f.name)
    return path


def _median(samples: list[Sample]) -> dict[str, float]:
    return {k: statistics.median(getattr(s, k) for s in samples) for k in ("wall", "cpu")}


def run_case(case: Case, pairs: int, root: Path, env: dict[str, str]) -> dict:
    c_bin = os.environ.get(case.c_env) or None
    ours_dir = _workdir(root, f"{case.name}_ours")
    args = case.argv(root) if case.argv else case.args
    argv_ours = _command(case.prog) + args
    run_once(argv_ours, ours_dir, env)  # warm-up: Numba's cache
    argv_c = c_dir = None
    if c_bin:
        c_dir = _workdir(root, f"{case.name}_c")
        argv_c = [c_bin] + args
        run_once(argv_c, c_dir, env)  # warm-up: the page cache
    ours, c = [], []
    for _ in range(pairs):
        ours.append(run_once(argv_ours, ours_dir, env))
        if c_bin:
            c.append(run_once(argv_c, c_dir, env))
    out: dict = {"program": case.prog, "args": case.args, "note": case.note,
                 "goal_wall_ratio": case.goal,
                 "ours": [asdict(s) for s in ours], "ours_median": _median(ours)}
    if c_bin:
        out["c_bin"] = c_bin
        out["c"] = [asdict(s) for s in c]
        out["c_median"] = _median(c)
        out["ratio"] = {k: out["ours_median"][k] / out["c_median"][k] for k in ("wall", "cpu")}
        out["identical_outputs"] = {
            f: (ours_dir / f).read_bytes() == (c_dir / f).read_bytes()
            for f in case.outputs if (ours_dir / f).is_file() or (c_dir / f).is_file()}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.companions_bench",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=2, help="timed pairs per case (default 2)")
    parser.add_argument("--cases", nargs="*", help="only these cases")
    parser.add_argument("--label", default="", help="appended to the results file name")
    opts = parser.parse_args(argv)
    if not (COMPANIONS / "inputs").is_dir():
        print(f"bench: needs {COMPANIONS}/inputs; set NB_COMPANIONS", file=sys.stderr)
        return 2
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    load = os.getloadavg()
    results: dict = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                     "commit": _git_commit(), "cpu": _cpu_model(), "cores": os.cpu_count(),
                     "python": platform.python_version(), "load_at_start": load, "cases": {}}
    print(f"cores: {os.cpu_count()}  cpu: {results['cpu']}  load: {load[0]:.1f}")
    print(f"{'case':30} {'ours wall':>10} {'C wall':>9} {'ratio':>7} {'goal':>6} "
          f"{'ours cpu':>9} {'C cpu':>8} {'ratio':>7} {'same files':>10}")
    with tempfile.TemporaryDirectory(prefix="nb_companions_bench_") as tmp:
        for case in CASES:
            if opts.cases and case.name not in opts.cases:
                continue
            r = run_case(case, opts.pairs, Path(tmp), env)
            results["cases"][case.name] = r
            om, cm = r["ours_median"], r.get("c_median")
            ratio = r.get("ratio", {})

            def f(x, spec="9.2f"):
                return format(x, spec) if x is not None else "-".rjust(int(spec[0]))

            same = r.get("identical_outputs")
            print(f"{case.name:30} {om['wall']:10.2f} {f(cm and cm['wall'])} "
                  f"{f(ratio.get('wall'), '7.3f')} "
                  f"{(format(case.goal, '6.2f') if case.goal else '-'.rjust(6))} "
                  f"{om['cpu']:9.2f} {f(cm and cm['cpu'], '8.2f')} "
                  f"{f(ratio.get('cpu'), '7.3f')} "
                  f"{(str(all(same.values())) if same else '-'):>10}", flush=True)
    results["load_at_end"] = os.getloadavg()
    print(f"load average at end: {results['load_at_end'][0]:.1f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%dT%H%M%S")
    path = RESULTS / f"{stamp}_companions{('_' + opts.label) if opts.label else ''}.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
