"""Score an indexer's stills against the truth: misorientation of each indexed crystal.

Runs under DIALS' Python (dxtbx), e.g. ``dials.python bench/stills_score.py
out/run.expt indexed.expt`` (or ``/usr/bin/python3`` with Debian's DIALS). For each
indexed experiment, the true crystal of the same image (the truth ``.expt`` written by
``nanobragg-nb stills``: experiment k = image k) is matched up to a change of basis
(an integer matrix of determinant ±1: the indexer may pick another, equivalent cell),
then the rotation between the two reciprocal bases is measured (degrees). Prints one
line per image and a JSON summary (fraction within ``--limit`` degrees) as the last
line.
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np


def misorientation_deg(A_true: np.ndarray, A_found: np.ndarray) -> tuple[float, list]:
    """Angle (deg) of the rotation taking A_true (with the best basis change) to A_found.

    ``A``: reciprocal basis as columns (dxtbx's ``crystal.get_A()``, 1/Å).
    """
    M = np.rint(np.linalg.inv(A_true) @ A_found)
    if abs(abs(np.linalg.det(M)) - 1) > 1e-6:
        return math.inf, M.astype(int).tolist()
    R = A_found @ np.linalg.inv(A_true @ M)
    u, _, vt = np.linalg.svd(R)  # nearest rotation (the cells differ slightly)
    R = u @ vt
    if np.linalg.det(R) < 0:
        return math.inf, M.astype(int).tolist()
    c = (np.trace(R) - 1) / 2
    return math.degrees(math.acos(max(-1.0, min(1.0, c)))), M.astype(int).tolist()


def main() -> None:
    from dxtbx.model.experiment_list import ExperimentListFactory

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("truth")
    p.add_argument("indexed")
    p.add_argument("--limit", type=float, default=0.1)
    a = p.parse_args()
    truth = ExperimentListFactory.from_json_file(a.truth, check_format=False)
    found = ExperimentListFactory.from_json_file(a.indexed, check_format=False)
    by_image = {}
    for e in truth:
        by_image[e.imageset.indices()[0] if hasattr(e.imageset, "indices") else None] = e
    angles = {}
    for e in found:
        image = e.imageset.indices()[0]
        A_true = np.array(by_image[image].crystal.get_A()).reshape(3, 3)
        A_found = np.array(e.crystal.get_A()).reshape(3, 3)
        angle, M = misorientation_deg(A_true, A_found)
        angles[image] = min(angle, angles.get(image, math.inf))
        print(f"image {image}: {angle:.4f} deg (basis change {M})")
    images = len(truth)
    within = sum(1 for v in angles.values() if v <= a.limit)
    print(json.dumps({"images": images, "indexed": len(angles), "within_limit": within,
                      "limit_deg": a.limit, "fraction_within": within / images,
                      "median_deg": float(np.median(list(angles.values())))
                      if angles else None}))


if __name__ == "__main__":
    main()
