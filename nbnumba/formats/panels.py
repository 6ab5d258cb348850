"""``-panels_out FILE.json``: the run's panels in nanoBragg's lab frame.

One JSON object: ``frame`` (a reminder of the frame), ``slab_shape`` ([rows, columns] of
the float image) and ``panels``, one entry per panel in the detector's order with
``name``, ``fdet``, ``sdet``, ``odet`` (unit vectors), ``pix0_m`` (C's ``pix0_vector``: the
outer corner of pixel (0, 0), m), ``pixel_m``, ``fpixels``, ``spixels``, ``slab_origin``
([ss, fs]: where the panel's pixel (0, 0) sits in the float image), ``thickness_m`` and
``material`` (:meth:`nbnumba.models.Panel.as_dict`). ``specs/models.md`` describes it.
"""

from __future__ import annotations

import json

from ..models import Detector, Panel

__all__ = ["FRAME_NOTE", "panels_document", "detector_of_result", "write_panels_json"]

FRAME_NOTE = ("nanoBragg lab frame (MOSFLM convention: beam along +x, +y up); "
              "pixel (ss, fs) centre = pix0_m + (fs + 0.5) pixel_m fdet + "
              "(ss + 0.5) pixel_m sdet")


def panels_document(detector: Detector) -> dict:
    """The ``-panels_out`` document of ``detector`` (JSON-ready)."""
    return {"frame": FRAME_NOTE, "slab_shape": list(detector.slab_shape),
            "panels": [p.as_dict() for p in detector.panels]}


def detector_of_result(result) -> Detector:
    """The run's detector: its panels, or the command line's one detector as a panel."""
    if getattr(result, "detector", None) is not None:
        return result.detector
    from .geometry import DetectorGeometry

    g = DetectorGeometry.from_scene(result.scene)
    odet = tuple(float(v) for v in result.scene.det[2])
    return Detector((Panel(name="detector", fdet=g.fdet, sdet=g.sdet, odet=odet,
                           pix0_m=g.pix0_m, pixel_m=g.pixel_size_m, fpixels=g.fast_pixels,
                           spixels=g.slow_pixels, thickness_m=g.thickness_m),))


def write_panels_json(path: str, detector: Detector) -> None:
    """Write :func:`panels_document` to ``path`` atomically (17 significant digits)."""
    from ..io import atomic_write

    text = json.dumps(panels_document(detector), indent=1) + "\n"
    atomic_write(path, text.encode("ascii"))
