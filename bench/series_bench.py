"""Frames per second of ``nbnumba.series`` on a LocalCluster: 1 worker versus 2.

The supervisor command of ../shared/golden (Pilatus 6M geometry, -mat A.mat,
-hkl scaled.hkl, 10 φ steps per frame of 0.1°) restricted to a 512×512 ROI around
the beam, written as CBF. Each cluster is warmed up with one frame first (worker
start, kernel load), then ``--frames`` frames are timed. Every worker runs its
Numba kernel on ``--threads`` threads (default 1, so the ratio measures scaling
over processes alone).

    python bench/series_bench.py [--frames 20] [--workers 1 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

GOLDEN = Path(os.environ.get("NB_GOLDEN", Path(__file__).resolve().parents[2] / "shared"
                             / "golden"))


def supervisor_args(roi: int) -> list[str]:
    """The supervisor command with a ``roi``×``roi`` ROI centred on the beam, no outputs."""
    case = json.loads((GOLDEN / "supervisor" / "case.json").read_text())
    args = list(case["args"])
    i = args.index("-floatfile")
    del args[i:i + 2]
    # beam centre: Xbeam, Ybeam (mm) / pixel (mm)
    fast = round(float(args[args.index("-Xbeam") + 1]) / 0.172)
    slow = round(float(args[args.index("-Ybeam") + 1]) / 0.172)
    lo_f, lo_s = fast - roi // 2, slow - roi // 2
    return args + ["-roi", str(lo_f), str(lo_f + roi - 1), str(lo_s), str(lo_s + roi - 1)]


def warm_up(args: list[str], folder: str) -> None:
    """Render one frame in this worker (run on every worker by ``client.run``)."""
    from nbnumba.distributed import FrameJob, render_frame

    target = os.path.join(folder, f"warm_{os.getpid()}.cbf")
    result = render_frame(FrameJob(0, tuple(args), 90.0, 1, 0, "int", "cbf", target,
                                    os.getcwd(), None))
    if result.error:
        raise RuntimeError(result.error)


def time_series(args: list[str], frames: int, workers: int, threads: int,
                folder: Path) -> float:
    """Seconds for ``frames`` frames on a fresh, warmed-up cluster of ``workers``."""
    from nbnumba.distributed import local_cluster_client, series

    client = local_cluster_client(workers, env={"NUMBA_NUM_THREADS": str(threads)})
    try:
        # one frame on every worker first: imports, kernel cache load, first hkl read
        client.run(warm_up, args, str(folder / "warm"))
        start = time.perf_counter()
        series(args, frames, client=client, template=folder / f"w{workers}" /
               "img_{frame:05d}.cbf", force=True)
        return time.perf_counter() - start
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--roi", type=int, default=512)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, default=1, help="Numba threads per worker")
    opts = parser.parse_args()
    if not (GOLDEN / "supervisor" / "case.json").is_file():
        raise SystemExit(f"needs the golden inputs at {GOLDEN} (set NB_GOLDEN)")
    folder = Path(tempfile.mkdtemp(prefix="series_bench_"))
    cwd = os.getcwd()
    try:
        for f in (GOLDEN / "inputs").iterdir():
            shutil.copyfile(f, folder / f.name)
        os.chdir(folder)
        args = supervisor_args(opts.roi)
        print(f"cores: {len(os.sched_getaffinity(0))}, load average before: "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"supervisor geometry, {opts.roi}x{opts.roi} ROI, {opts.frames} frames, "
              f"CBF output, {opts.threads} Numba thread(s) per worker")
        fps = {}
        for workers in opts.workers:
            seconds = time_series(args, opts.frames, workers, opts.threads, folder)
            fps[workers] = opts.frames / seconds
            print(f"{workers} worker(s): {seconds:7.2f} s  {fps[workers]:6.3f} frames/s")
        base = opts.workers[0]
        for workers in opts.workers[1:]:
            print(f"scaling {workers} vs {base} worker(s): {fps[workers] / fps[base]:.2f}x")
        load_end = os.getloadavg()
        print(f"load average after: {' '.join(f'{x:.2f}' for x in load_end)}")
        stamp = time.strftime("%Y-%m-%dT%H%M%S")
        result = Path(__file__).resolve().parent / "results" / f"{stamp}_series.json"
        result.parent.mkdir(exist_ok=True)
        result.write_text(json.dumps({
            "date": stamp, "cores": len(os.sched_getaffinity(0)), "roi": opts.roi,
            "frames": opts.frames, "threads_per_worker": opts.threads,
            "frames_per_s": {str(w): f for w, f in fps.items()},
            "scaling": {str(w): fps[w] / fps[base] for w in opts.workers[1:]},
            "load_end": list(load_end)}, indent=1) + "\n")
        print(f"written {result}")
    finally:
        os.chdir(cwd)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
