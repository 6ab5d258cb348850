"""Stills per second: ``nbnumba.stills`` versus a loop of OpenMP nanoBragg.c processes.

``throughput`` (default): ``--shots`` stills of a ``--pixels``² detector with
``--domains`` mosaic domains and a ``--spikes``-line SASE spectrum, random orientations.
Ours: one process, the dataset runner in-process (``workers=0``; Numba on all cores),
after one warm-up shot (kernel load); the time includes writing the NXmx stack and
the truth files. C: for the same shots, ``nanoBragg_omp`` (OMP_NUM_THREADS = cores)
run once per shot with the command line and -mat/-sourcefile files of ``--explain``
(C reads its inputs and sets up every time; that is what a shell loop does). The two
images of the first shot are compared (correlation). The load average is recorded
before and after: the machine may be shared.

``--many N``: N stills of a small detector on a LocalCluster (``--workers``), the
client's peak RSS and its RSS sampled every 2 s (flat when nothing per shot is kept).

    python bench/stills_bench.py [--shots 3] [--pixels 1024] [--domains 10] [--spikes 20]
    python bench/stills_bench.py --many 10000 [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import tempfile
import threading
import time
from pathlib import Path

C_OMP = os.environ.get("NB_C_OMP_BIN", "/tmp/cbin/nanoBragg_omp")
RESULTS = Path(__file__).resolve().parent / "results"


def throughput_args(pixels: int, domains: int) -> list[str]:
    return ["-cell", "79.1", "79.1", "37.9", "90", "90", "90", "-default_F", "100",
            "-N", "10", "-lambda", "1.3", "-distance", "120", "-pixel", "0.1",
            "-detpixels", str(pixels), "-oversample", "1", "-mosaic", "0.1",
            "-mosaic_domains", str(domains), "-seed", "2026", "-nopgm"]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def throughput(a) -> dict:
    import numpy as np

    import nbnumba as nb
    from nbnumba.datasets import stills as S

    cores = os.cpu_count() or 1
    args = throughput_args(a.pixels, a.domains)
    spectrum = f"sase:{a.spikes}:25"
    plan, _ = S.plan_stills(args, spectrum=spectrum)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        S.render_shot(plan, a.shots)  # warm-up: kernel load (not one of the timed shots)
        warm = time.perf_counter() - start
        start = time.perf_counter()
        run = nb.stills(args, a.shots, template=f"{tmp}/ours/run.h5", spectrum=spectrum,
                        workers=0)
        ours = time.perf_counter() - start
        assert run.computed == a.shots
        c_times = []
        env = {**os.environ, "OMP_NUM_THREADS": str(cores)}
        for k in range(a.shots):
            argv, files = S.explain(plan, k, f"{tmp}/c/run.h5")
            os.makedirs(f"{tmp}/c", exist_ok=True)
            for path, text in files.items():
                Path(path).write_text(text)
            t0 = time.perf_counter()
            subprocess.run([C_OMP, *argv], cwd=f"{tmp}/c", env=env, check=True,
                           capture_output=True)
            c_times.append(time.perf_counter() - t0)
        c_image = np.fromfile(f"{tmp}/c/run_shot000000.bin", dtype="<f4")
        ours_image = S.render_shot(plan, 0)[0].image.reshape(-1)
        corr = float(np.corrcoef(ours_image, c_image)[0, 1])
    load_after = os.getloadavg()
    c_total = sum(c_times)
    return {"mode": "throughput", "shots": a.shots, "pixels": a.pixels,
            "domains": a.domains, "spikes": a.spikes, "cores": cores,
            "args": args, "spectrum": spectrum, "warm_up_s": warm,
            "ours_s": ours, "ours_stills_per_s": a.shots / ours,
            "c_omp_s": c_total, "c_omp_per_shot_s": c_times,
            "c_stills_per_s": a.shots / c_total, "ratio": c_total / ours,
            "shot0_correlation": corr,
            "loadavg_before": load_before, "loadavg_after": load_after}


def many(a) -> dict:
    import nbnumba as nb

    args = ["-cell", "79.1", "79.1", "37.9", "90", "90", "90", "-default_F", "100",
            "-N", "5", "-lambda", "1.3", "-distance", "60", "-pixel", "0.4",
            "-detpixels", str(a.small), "-oversample", "1", "-seed", "7"]
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    t0 = time.perf_counter()

    def sample() -> None:
        while not stop.wait(2.0):
            samples.append((time.perf_counter() - t0, rss_mb()))

    sampler = threading.Thread(target=sample, daemon=True)
    load_before = os.getloadavg()
    sampler.start()
    with tempfile.TemporaryDirectory() as tmp:
        run = nb.stills(args, a.many, template=f"{tmp}/run.h5", spectrum="sase:4:20",
                        jitter="N=0.1,flux=0.2", workers=a.workers, progress=a.progress)
        elapsed = time.perf_counter() - t0
        sizes = {k: os.path.getsize(p) for k, p in run.paths.items() if os.path.isfile(p)}
    stop.set()
    sampler.join()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tail = [r for t, r in samples if t > elapsed * 0.2]
    return {"mode": "many", "shots": a.many, "detpixels": a.small, "workers": a.workers,
            "elapsed_s": elapsed, "stills_per_s": a.many / elapsed,
            "computed": run.computed, "client_peak_rss_mb": peak,
            "client_rss_first_mb": samples[0][1] if samples else None,
            "client_rss_after_20pct_min_max_mb": [min(tail), max(tail)] if tail else None,
            "rss_samples": samples[::max(1, len(samples) // 50)], "file_bytes": sizes,
            "loadavg_before": load_before, "loadavg_after": os.getloadavg()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shots", type=int, default=3)
    p.add_argument("--pixels", type=int, default=1024)
    p.add_argument("--domains", type=int, default=10)
    p.add_argument("--spikes", type=int, default=20)
    p.add_argument("--many", type=int, default=0)
    p.add_argument("--small", type=int, default=32)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--progress", action="store_true")
    p.add_argument("--label", default="")
    a = p.parse_args()
    report = many(a) if a.many else throughput(a)
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H%M%S")
    out = RESULTS / f"{stamp}_stills_{report['mode']}{a.label}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    brief = {k: v for k, v in report.items() if k not in ("rss_samples", "args")}
    print(json.dumps(brief, indent=1))
    print(f"written {out}")


if __name__ == "__main__":
    main()
