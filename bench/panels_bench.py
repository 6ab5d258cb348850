"""Pixels per second of a 16-panel detector against one panel of the same 4M pixels.

One 2048×2048 panel (0.1 mm pixels, 100 mm) and the same area cut into 4×4
panels of 512×512 (each panel's ``pix0`` moved to its corner, its slab origin
where the piece was), rendered in this process by ``Simulation.from_models``
with the same crystal and beam (cheap physics: N=5, default_F, 3 φ steps × 2
mosaic domains, ``-oversample 1``, so that any per-panel overhead would show).  One
untimed warm-up of each (kernel load), then ``--repeats`` alternating timed
runs; medians, the ratio (16 panels / 1 panel, pixels/s) and the load average
before and after go to stdout and ``bench/results/<date>_panels.json``.

    python -m bench.panels_bench [--repeats 3] [--engine vectorised] [--size 2048]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def detectors(size: int, split: int):
    """``(experiment, one-panel detector, split×split-panel detector)`` of the same pixels."""
    from nbnumba import models
    from nbnumba.api import Simulation

    args = ("-cell 100 100 100 90 90 90 -default_F 100 -N 5 -lambda 1.0 -pixel 0.1 "
            f"-distance 100 -detpixels {size} -oversample 1 -seed 1 -nonoise -nopgm "
            "-phi 0 -osc 0.3 -phisteps 3 -mosaic 0.2 -mosaic_dom 2").split()
    exp = Simulation.from_args(args).experiment
    whole = exp.detector.panels[0]
    piece = size // split
    panels = []
    for i in range(split):
        for j in range(split):
            ss, fs = i * piece, j * piece
            pix0 = tuple(whole.pix0_m[k] + fs * whole.pixel_m * whole.fdet[k]
                         + ss * whole.pixel_m * whole.sdet[k] for k in range(3))
            panels.append(dataclasses.replace(whole, name=f"m{i}{j}", pix0_m=pix0,
                                              fpixels=piece, spixels=piece,
                                              slab_origin=(ss, fs)))
    return exp, exp.detector, models.Detector(tuple(panels))


def measure(repeats: int = 3, engine: str = "vectorised", size: int = 2048,
            split: int = 4) -> dict:
    """The timings (see the module's text) as a JSON-ready dict."""
    from nbnumba.api import Simulation

    ns = argparse.Namespace(repeats=repeats, engine=engine, size=size, split=split)
    load_before = os.getloadavg()
    exp, one, many = detectors(ns.size, ns.split)
    sims = {"1 panel": Simulation.from_models(dataclasses.replace(exp, detector=one),
                                              oversample=1, seed=1),
            f"{len(many)} panels": Simulation.from_models(dataclasses.replace(exp, detector=many),
                                                          oversample=1, seed=1)}
    images = {}
    for name, sim in sims.items():  # warm-up: kernel load, setup
        images[name] = sim.run(ns.engine).image
    times: dict[str, list[float]] = {name: [] for name in sims}
    for _ in range(ns.repeats):
        for name, sim in sims.items():
            start = time.perf_counter()
            sim.run(ns.engine)
            times[name].append(time.perf_counter() - start)
    load_after = os.getloadavg()
    pixels = ns.size * ns.size
    a, b = images.values()
    rate = {name: pixels / statistics.median(t) for name, t in times.items()}
    names = list(sims)
    out = {
        "what": "pixels/s of one panel vs the same pixels as split x split panels",
        "engine": ns.engine, "size": ns.size, "split": ns.split, "repeats": ns.repeats,
        "seconds": times, "pixels_per_s": rate,
        "ratio_many_over_one": rate[names[1]] / rate[names[0]],
        "max_abs_diff_of_images": float(np.max(np.abs(a - b))),
        "max_I": float(a.max()),
        "loadavg_before": load_before, "loadavg_after": load_after,
        "cpu_count": os.cpu_count(),
    }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.panels_bench")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--engine", default="vectorised")
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--split", type=int, default=4)
    ns = parser.parse_args(argv)
    out = measure(ns.repeats, ns.engine, ns.size, ns.split)
    print(json.dumps(out, indent=1))
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H%M%S")
    (RESULTS / f"{stamp}_panels.json").write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
