"""Whole-process timings of ``nanobragg-nb`` and, with ``NB_C_BIN`` set, of nanoBragg.c.

Every number is a whole process as a user sees it: start-up, input reading,
the simulation and the output files (stdout to /dev/null).  Wall time,
CPU time (user + system, all threads) and peak RSS come from ``os.wait4`` on
each child.  With ``NB_C_BIN`` the two programs run in alternating pairs
(ours, C, ours, C, …) after one untimed warm-up run each, in separate
folders holding copies of ``../shared/golden/inputs``; the medians are
compared as ours/C ratios.  What C runs on is up to the caller
(``OMP_NUM_THREADS=2`` for an OpenMP build); ours uses every core Numba sees.

Also reported: cold start (first run with an empty ``NUMBA_CACHE_DIR``, so
every kernel compiles) against warm start (Numba's cache and Python's
bytecode cache in place: ``PYTHONDONTWRITEBYTECODE`` is dropped for our
runs); scaling with image size and φ steps with the cost per pixel-step; and
the cost of the Poisson noise image for the supervisor image, measured
in-process; with ``--panels``, a 16-panel 4M-pixel detector against one 4M panel
(:mod:`bench.panels_bench`, in-process).  Results are printed and written to
``bench/results/<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(os.environ.get("NB_GOLDEN", REPO.parent / "shared" / "golden"))
RESULTS = REPO / "bench" / "results"
PIXEL_MM = 0.172  # the supervisor's Pilatus pixel
# issue 14: a first run (empty Numba cache) at most this many times a warm one
COLD_GOALS = {"readme_256": 20, "supervisor": 12}


@dataclass
class Sample:
    """One finished process."""

    wall: float  # s
    cpu: float  # s, user + system over all threads
    rss_mb: float  # peak resident set, MiB
    code: int  # exit status


@dataclass
class Case:
    """A command line, the input files it reads, and its pixel count and steps per pixel."""

    name: str
    args: list[str]
    pixels: int
    steps: int  # sources x mosaic domains x phi steps x oversample^2 (where known)
    note: str


def supervisor_args() -> list[str]:
    """The authoritative supervisor command (../shared/golden/supervisor/case.json)."""
    return list(json.loads((GOLDEN / "supervisor" / "case.json").read_text())["args"])


def _set(args: list[str], flag: str, *values: str) -> list[str]:
    """``args`` with ``flag``'s values replaced (or the flag appended)."""
    args = list(args)
    if flag in args:
        i = args.index(flag)
        args[i + 1:i + 1 + len(values)] = values
    else:
        args += [flag, *values]
    return args


def supervisor_like(fast: int, slow: int, phisteps: int, extra: list[str] = ()) -> list[str]:
    """The supervisor crystal and beam on a ``fast``×``slow`` detector, beam centred."""
    args = supervisor_args()
    args = _set(args, "-detpixels_x", str(fast))
    args = _set(args, "-detpixels_y", str(slow))
    args = _set(args, "-Xbeam", f"{fast * PIXEL_MM / 2:.6f}")
    args = _set(args, "-Ybeam", f"{slow * PIXEL_MM / 2:.6f}")
    args = _set(args, "-phisteps", str(phisteps))
    return args + list(extra)


def main_cases() -> list[Case]:
    """The cases the issue asks for (bench table)."""
    readme = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5",
              "-lambda", "1.0", "-detpixels", "256", "-pixel", "0.1", "-distance", "100",
              "-floatfile", "float.bin", "-intfile", "int.img", "-noisefile", "noise.img",
              "-seed", "1", "-pgmfile", "img.pgm"]
    small_cell = ["-cell", "30", "30", "30", "90", "90", "90", "-default_F", "100", "-N", "20",
                  "-lambda", "1.0", "-detpixels", "1024", "-pixel", "0.1", "-distance", "100",
                  "-floatfile", "float.bin", "-intfile", "int.img", "-nonoise", "-nopgm"]
    mosaic = ["-mosaic", "0.2", "-mosaic_dom", "5", "-mosaic_seed", "7", "-divergence", "0.1",
              "-divsteps", "3", "-dispersion", "0.5", "-dispsteps", "3"]
    return [
        Case("supervisor", supervisor_args(), 2463 * 2527, 10,
             "golden supervisor command: 2463x2527, 10 phi steps, -mat/-hkl"),
        Case("mosaic_div_disp", supervisor_like(512, 512, 1, mosaic), 512 * 512, 0,
             "supervisor crystal, 512^2, 5 mosaic domains x divergence 3x3 x dispersion 3"),
        Case("oversample3", supervisor_like(1024, 1024, 1, ["-oversample", "3"]), 1024 * 1024,
             9, "supervisor crystal, 1024^2, 1 phi step, -oversample 3"),
        Case("small_cell_1024", small_cell, 1024 * 1024, 1,
             "30 A cubic cell, N=20, default_F only, 1024^2"),
        Case("readme_256", readme, 256 * 256, 1,
             "README example: 256^2, float+int+noise+pgm outputs"),
    ]


def scaling_cases() -> list[Case]:
    """Image size at 10 phi steps, and phi steps at 1024^2 (supervisor crystal)."""
    cases = []
    for fast, slow in ((256, 256), (1024, 1024), (2463, 2527)):
        cases.append(Case(f"size_{fast}x{slow}_phi10", supervisor_like(fast, slow, 10),
                          fast * slow, 10, "image size"))
    for phisteps in (1, 100):
        cases.append(Case(f"size_1024x1024_phi{phisteps}", supervisor_like(1024, 1024, phisteps),
                          1024 * 1024, phisteps, "phi steps"))
    return cases


def ours_command() -> list[str]:
    """``nanobragg-nb`` next to this Python, else ``python -m nbnumba.cli.main``."""
    script = shutil.which("nanobragg-nb", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "nbnumba.cli.main"]


def run_once(argv: list[str], cwd: Path, env: dict[str, str]) -> Sample:
    """Run one process to completion; wall clock, CPU and peak RSS from ``os.wait4``."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"{argv[0]} exited {proc.returncode}: {' | '.join(tail)}")
    return Sample(wall=wall, cpu=usage.ru_utime + usage.ru_stime,
                  rss_mb=usage.ru_maxrss / 1024.0, code=proc.returncode)


def _workdir(root: Path, name: str) -> Path:
    """A fresh folder holding copies of the golden inputs, as the golden runs had."""
    path = root / name
    path.mkdir(parents=True)
    inputs = GOLDEN / "inputs"
    if inputs.is_dir():
        for f in inputs.iterdir():
            shutil.copyfile(f, path / f.name)
    return path


def _median(samples: list[Sample]) -> dict[str, float]:
    return {k: statistics.median(getattr(s, k) for s in samples)
            for k in ("wall", "cpu", "rss_mb")}


def run_pairs(case: Case, ours: list[str], c_bin: str | None, pairs: int, root: Path,
              env: dict[str, str]) -> dict:
    """Warm-up once each, then ``pairs`` alternating runs; medians and ours/C ratios."""
    ours_dir = _workdir(root, f"{case.name}_ours")
    argv_ours = ours + case.args + ["-noprogress"]
    run_once(argv_ours, ours_dir, env)
    c_dir = argv_c = None
    if c_bin:
        c_dir = _workdir(root, f"{case.name}_c")
        argv_c = [c_bin] + case.args + ["-noprogress"]
        run_once(argv_c, c_dir, env)
    ours_samples, c_samples = [], []
    for _ in range(pairs):
        ours_samples.append(run_once(argv_ours, ours_dir, env))
        if c_bin:
            c_samples.append(run_once(argv_c, c_dir, env))
    out = {"args": case.args, "note": case.note, "pixels": case.pixels,
           "ours": [asdict(s) for s in ours_samples], "ours_median": _median(ours_samples),
           "workdir_ours": str(ours_dir)}
    if c_bin:
        out["c"] = [asdict(s) for s in c_samples]
        out["c_median"] = _median(c_samples)
        out["ratio"] = {k: out["ours_median"][k] / out["c_median"][k]
                        for k in ("wall", "cpu", "rss_mb")}
    return out


def run_cold(case: Case, ours: list[str], root: Path, env: dict[str, str]) -> dict:
    """First run with an empty Numba cache (every kernel compiles), then a warm one."""
    cache = root / f"numba_cache_{case.name}"
    cache.mkdir()
    env = dict(env, NUMBA_CACHE_DIR=str(cache))
    workdir = _workdir(root, f"{case.name}_cold")
    argv = ours + case.args + ["-noprogress"]
    cold = run_once(argv, workdir, env)
    warm = run_once(argv, workdir, env)
    return {"cold": asdict(cold), "warm": asdict(warm)}


def thread_scaling(ours: list[str], pairs: int, root: Path, env: dict[str, str]) -> dict:
    """Our supervisor run on one thread and on all, alternating; medians and speed-up."""
    case = main_cases()[0]
    workdir = _workdir(root, "threads")
    argv = ours + case.args + ["-noprogress"]
    one_env = dict(env, NUMBA_NUM_THREADS="1")
    run_once(argv, workdir, env)
    one, every = [], []
    for _ in range(pairs):
        one.append(run_once(argv, workdir, one_env))
        every.append(run_once(argv, workdir, env))
    one_m, all_m = _median(one), _median(every)
    return {"threads": int(env.get("NUMBA_NUM_THREADS") or os.cpu_count()), "one": one_m,
            "all": all_m, "speedup": one_m["wall"] / all_m["wall"]}


def noise_cost(float_image: Path, shape: tuple[int, int]) -> dict:
    """Seconds to draw C's Poisson noise image from ``float_image`` (in-process, JIT warm)."""
    import numpy as np

    from nbnumba.rng import CRandom, make_seed

    values = np.fromfile(float_image, dtype="<f4").reshape(-1)
    if values.size != shape[0] * shape[1]:
        raise ValueError(f"{float_image}: {values.size} pixels, expected {shape}")
    gen = CRandom()
    gen.poisson_noise(values[:1000], make_seed(-1))  # load or compile the kernel
    best = float("inf")
    for _ in range(3):
        gen = CRandom()
        t0 = time.perf_counter()
        gen.poisson_noise(values, make_seed(-1))
        best = min(best, time.perf_counter() - t0)
    return {"seconds": best, "pixels": int(values.size)}


def _fmt_ratio(x: float | None) -> str:
    return f"{x:6.3f}" if x is not None else "     -"


def print_table(results: dict, have_c: bool) -> None:
    print()
    if have_c:
        print(f"{'case':18s} {'wall ours':>10s} {'wall C':>9s} {'ratio':>6s} | "
              f"{'CPU ours':>9s} {'CPU C':>8s} {'ratio':>6s} | "
              f"{'RSS ours':>9s} {'RSS C':>8s} {'ratio':>6s}")
    else:
        print(f"{'case':18s} {'wall':>9s} {'CPU':>9s} {'RSS':>9s}")
    for name, r in results.items():
        o = r["ours_median"]
        if have_c:
            c, q = r["c_median"], r["ratio"]
            print(f"{name:18s} {o['wall']:9.3f}s {c['wall']:8.3f}s {_fmt_ratio(q['wall'])} | "
                  f"{o['cpu']:8.3f}s {c['cpu']:7.3f}s {_fmt_ratio(q['cpu'])} | "
                  f"{o['rss_mb']:7.1f}MB {c['rss_mb']:6.1f}MB {_fmt_ratio(q['rss_mb'])}")
        else:
            print(f"{name:18s} {o['wall']:8.3f}s {o['cpu']:8.3f}s {o['rss_mb']:7.1f}MB")


def print_scaling(scaling: dict, have_c: bool) -> None:
    print("\nscaling (supervisor crystal; ns per pixel-step = whole-process wall / (pixels x phi "
          "steps))")
    head = f"{'case':24s} {'pixel-steps':>12s} {'wall ours':>10s} {'ns/px-step':>10s}"
    if have_c:
        head += f" {'wall C':>9s} {'ns/px-step':>10s} {'ratio':>6s}"
    print(head)
    for name, r in scaling.items():
        n = r["pixels"] * r["steps"]
        o = r["ours_median"]["wall"]
        line = f"{name:24s} {n:12d} {o:9.3f}s {o / n * 1e9:10.2f}"
        if have_c:
            c = r["c_median"]["wall"]
            line += f" {c:8.3f}s {c / n * 1e9:10.2f} {o / c:6.3f}"
        print(line)
    # marginal cost of a phi step, start-up and per-pixel geometry excluded
    one, hundred = scaling.get("size_1024x1024_phi1"), scaling.get("size_1024x1024_phi100")
    if one and hundred:
        n = 99 * one["pixels"]
        line = (f"marginal cost of one pixel-step (phi 100 minus phi 1): ours "
                f"{(hundred['ours_median']['wall'] - one['ours_median']['wall']) / n * 1e9:.2f} ns")
        if have_c:
            line += (f", C {(hundred['c_median']['wall'] - one['c_median']['wall']) / n * 1e9:.2f}"
                     " ns")
        print(line)


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3, help="timed pairs per case (default 3)")
    parser.add_argument("--cases", nargs="*", help="only these main cases")
    parser.add_argument("--no-scaling", action="store_true", help="skip the scaling runs")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-start runs")
    parser.add_argument("--cold-only", action="store_true",
                        help="only the cold-start runs (cold/warm ratios of issue 14)")
    parser.add_argument("--no-noise", action="store_true", help="skip the noise-cost timing")
    parser.add_argument("--panels", action="store_true",
                        help="also time a 16-panel 4M-pixel detector against one 4M panel "
                             "(bench/panels_bench.py, in this process)")
    parser.add_argument("--label", default="", help="appended to the results file name")
    parser.add_argument("--keep", action="store_true", help="keep the run folders")
    opts = parser.parse_args(argv)

    if not (GOLDEN / "supervisor" / "case.json").is_file():
        print(f"bench: needs the golden inputs ({GOLDEN}); set NB_GOLDEN", file=sys.stderr)
        return 2
    c_bin = os.environ.get("NB_C_BIN") or None
    if c_bin and not Path(c_bin).is_file():
        print(f"bench: NB_C_BIN={c_bin} is not a file", file=sys.stderr)
        return 2
    ours = ours_command()
    env = dict(os.environ)
    # a warm start has Python's bytecode cache too, as after any normal install
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    load_start = os.getloadavg()
    print(f"ours: {' '.join(ours)}   C: {c_bin or '(none: set NB_C_BIN)'}   "
          f"OMP_NUM_THREADS={env.get('OMP_NUM_THREADS', '(unset)')}   cores: {os.cpu_count()}   "
          f"load: {load_start[0]:.2f}")
    if load_start[0] > 0.5:
        print("bench: warning: the machine is not idle; timings will be noisy")

    cases = main_cases()
    if opts.cold_only:
        cases, opts.no_cold, opts.no_noise, opts.no_scaling = [], False, True, True
    if opts.cases:
        cases = [c for c in cases if c.name in opts.cases]
    root = Path(tempfile.mkdtemp(prefix="nb_bench_"))
    report: dict = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
                    "commit": _git_commit(), "cpu": _cpu_model(), "cores": os.cpu_count(),
                    "c_binary": c_bin, "ours": ours, "pairs": opts.pairs,
                    "env": {k: env.get(k) for k in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")},
                    "load_start": load_start}
    try:
        results = {}
        for case in cases:
            print(f"  {case.name}: {case.note}", flush=True)
            results[case.name] = run_pairs(case, ours, c_bin, opts.pairs, root, env)
        report["cases"] = results
        print_table(results, bool(c_bin))

        if not opts.no_noise and "supervisor" in results:
            float_path = Path(results["supervisor"]["workdir_ours"]) / "float.bin"
            noise = noise_cost(float_path, (2527, 2463))
            noise["fraction_of_supervisor_wall"] = (noise["seconds"]
                                                    / results["supervisor"]["ours_median"]["wall"])
            report["noise"] = noise
            print(f"\nPoisson noise image for the supervisor float image: "
                  f"{noise['seconds']:.3f} s in-process = "
                  f"{100 * noise['fraction_of_supervisor_wall']:.1f}% of the supervisor run")

        if not opts.no_cold:
            cold = {}
            print("\ncold start (empty NUMBA_CACHE_DIR: every kernel compiles) vs warm")
            for case in main_cases():
                if case.name not in ("readme_256", "supervisor"):
                    continue
                cold[case.name] = r = run_cold(case, ours, root, env)
                r["ratio"] = {k: r["cold"][k] / r["warm"][k] for k in ("wall", "cpu")}
                r["goal"] = COLD_GOALS[case.name]
                print(f"{case.name:18s} cold {r['cold']['wall']:7.2f}s wall "
                      f"{r['cold']['cpu']:7.2f}s CPU   warm {r['warm']['wall']:6.2f}s wall "
                      f"{r['warm']['cpu']:6.2f}s CPU   cold/warm x{r['ratio']['wall']:.1f} "
                      f"wall, x{r['ratio']['cpu']:.1f} CPU (goal <= x{r['goal']})")
            report["cold"] = cold

        if not opts.no_scaling:
            threads = thread_scaling(ours, opts.pairs, root, env)
            report["threads"] = threads
            print(f"\nsupervisor on 1 thread vs {threads['threads']} (NUMBA_NUM_THREADS), "
                  f"whole process: {threads['one']['wall']:.3f}s vs "
                  f"{threads['all']['wall']:.3f}s wall (x{threads['speedup']:.2f}), "
                  f"CPU {threads['one']['cpu']:.3f}s vs {threads['all']['cpu']:.3f}s")
            scaling = {}
            print("\nscaling runs ...", flush=True)
            for case in scaling_cases():
                r = run_pairs(case, ours, c_bin, opts.pairs, root, env)
                r["steps"] = case.steps
                scaling[case.name] = r
            report["scaling"] = scaling
            print_scaling(scaling, bool(c_bin))

        if opts.panels:
            from bench.panels_bench import measure

            report["panels"] = p = measure(repeats=opts.pairs)
            print(f"\n16 panels vs one panel, same 4M pixels ({p['engine']}): "
                  f"{p['ratio_many_over_one']:.2f} x the pixels/s")
    finally:
        if not opts.keep:
            shutil.rmtree(root, ignore_errors=True)
    for r in report.get("cases", {}).values():
        r.pop("workdir_ours", None)
    for r in report.get("scaling", {}).values():
        r.pop("workdir_ours", None)
    report["load_end"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%dT%H%M%S")
    label = f"_{opts.label}" if opts.label else ""
    out = RESULTS / f"{stamp}{label}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nwritten {out.relative_to(REPO)}   (load at the end: {report['load_end'][0]:.2f})")
    return 0
