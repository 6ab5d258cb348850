"""DIALS experiment lists (``.expt``, JSON): the true models beside the images.

Written without dxtbx, in the JSON layout dxtbx 3.x reads with
``ExperimentListFactory.from_json_file`` (and writes itself: ``dials.import``). Every
vector goes through the one mapping :func:`~nbnumba.formats.geometry.lab_to_dxtbx`
(nanoBragg lab → dxtbx lab, a proper rotation), the same the NXmx and miniCBF writers
use, so a ``.expt`` and the ``dials.import`` of its images describe one geometry.

Two shapes, one builder (:func:`experiment_list`):

- a rotation series (:func:`rotation_experiment_list`): one experiment with a
  goniometer and a scan, its imageset an ``ImageSequence`` (a CBF template
  ``img_#####.cbf`` or an NXmx master ``run_master.h5``);
- stills (:func:`stills_experiment_list`): N experiments, one crystal (and optionally
  one beam) each, no goniometer or scan, experiment ``i`` pointing at image
  ``indices[i]`` of one HDF5/NXmx file (an ``ImageSet`` with ``single_file_indices``).

The crystal is the TRUE orientation: nanoBragg's real-space vectors after ``-misset`` /
``-matrix`` at φ = 0 (C's ``a``, ``b``, ``c`` before the φ loop rotates them), which is
dxtbx's convention for a scan: the goniometer rotates the crystal by the scan angle, so
frame ``i`` (``φ_start + i·osc``) sees exactly what nanoBragg rendered. With φ_start = 0
this is the orientation at the series' start; :func:`crystal_at` gives it at any φ.
``specs/formats.md`` lists every field.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .geometry import DetectorGeometry, saturation_of

__all__ = ["experiment_list", "rotation_experiment_list", "stills_experiment_list",
           "write_experiment_list", "cell_vectors_angstrom", "crystal_at", "image_template",
           "trusted_range", "panel_name", "pilatus_gap_mask", "IMAGE_FORMATS"]

IMAGE_FORMATS = ("nxmx", "cbf", "other")
# dxtbx's trusted range when an NXmx file gives no saturation/underload (dxtbx.nexus)
_INT32_RANGE = (-2147483648.0, 2147483647.0)
# Pilatus modules and gaps (pixels), as dxtbx's FormatPilatusHelpers
_PILATUS_MODULE = (487, 195)
_PILATUS_GAP = (7, 17)


def _list(v) -> list[float]:
    return [float(x) + 0.0 for x in v]  # + 0.0: no "-0.0" in the file


def cell_vectors_angstrom(scene) -> np.ndarray:
    """The crystal's real-space vectors at φ = 0 (rows a, b, c; Å; nanoBragg's lab frame).

    C's ``a``, ``b``, ``c`` after ``-cell``/``-mat`` and ``-misset`` (nanoBragg.c lines
    1790-2070, what its setup prints as ``a=``), before the φ loop rotates them about
    the spindle (line 3366, right-handed) and mosaic domains spread them.

    Parameters
    ----------
    scene : nbnumba.setup.scene.Scene

    Returns
    -------
    ndarray (3, 3), float64
    """
    cell = scene.resolved.cell
    return np.array([cell.a_angstrom[1:4], cell.b_angstrom[1:4], cell.c_angstrom[1:4]],
                    dtype=np.float64)


def crystal_at(cell_angstrom: np.ndarray, spindle, phi_deg: float) -> np.ndarray:
    """The real-space vectors (rows, Å) rotated by φ (deg) about ``spindle``, right-handed
    as nanoBragg.c's ``rotate_axis`` (and dxtbx's goniometer) turns them."""
    k = np.asarray(spindle, dtype=np.float64)
    k = k / np.linalg.norm(k)
    t = math.radians(phi_deg)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    Rot = np.eye(3) + math.sin(t) * K + (1.0 - math.cos(t)) * (K @ K)
    return np.asarray(cell_angstrom, dtype=np.float64) @ Rot.T


def panel_name(image_format: str) -> str:
    """The panel name dxtbx gives the detector read from ``image_format`` files."""
    return "/entry/instrument/detector/module" if image_format == "nxmx" else "Panel"


def trusted_range(image_format: str, content: str, adc_offset: float) -> tuple[float, float]:
    """dxtbx's trusted range for our files: NXmx float photons have no limits (dxtbx's
    int32 defaults); NXmx counts ``(-2, saturation)`` (underload -1); miniCBF
    ``(-1, Count_cutoff)``; other formats ``(-1, 65535)`` (C's 16-bit pixels)."""
    if image_format == "nxmx":
        if content == "float":
            return _INT32_RANGE
        return (-2.0, float(saturation_of(adc_offset)))
    if image_format == "cbf":
        return (-1.0, float(saturation_of(adc_offset)))
    return (-1.0, 65535.0)


def pilatus_gap_mask(fast_pixels: int, slow_pixels: int) -> list[list[int]] | None:
    """The module-gap mask dxtbx sets on a Pilatus-layout miniCBF ([f0, s0, f1, s1],
    0-based, end exclusive), or None when the size is not a Pilatus module layout."""
    (mf, ms), (gf, gs) = _PILATUS_MODULE, _PILATUS_GAP
    nf, rf = divmod(fast_pixels, mf)
    ns, rs = divmod(slow_pixels, ms)
    if nf < 1 or ns < 1 or (nf - 1) * gf != rf or (ns - 1) * gs != rs:
        return None
    mask = [[(i + 1) * mf + i * gf, 0, (i + 1) * mf + i * gf + gf, slow_pixels]
            for i in range(nf - 1)]
    mask += [[0, (i + 1) * ms + i * gs, fast_pixels, (i + 1) * ms + i * gs + gs]
             for i in range(ns - 1)]
    return mask


def _detector(g: DetectorGeometry, R: np.ndarray, image_format: str, content: str) -> dict:
    mm = 1000.0
    px_mm = g.pixel_size_m * mm
    mask = pilatus_gap_mask(g.fast_pixels, g.slow_pixels) if image_format == "cbf" else None
    panel = {
        "name": panel_name(image_format), "type": "SENSOR_PAD",
        "fast_axis": _list(R @ np.asarray(g.fdet)), "slow_axis": _list(R @ np.asarray(g.sdet)),
        "origin": _list(R @ np.asarray(g.pix0_m) * mm),
        "raw_image_offset": [0, 0], "image_size": [g.fast_pixels, g.slow_pixels],
        "pixel_size": [px_mm, px_mm],
        "trusted_range": list(trusted_range(image_format, content, g.adc_offset)),
        "thickness": g.sensor_thickness_m * mm, "material": "Si",
        "mu": g.sensor_mu_per_mm, "identifier": "", "mask": mask or [], "gain": 1.0,
        "pedestal": 0.0, "px_mm_strategy": {"type": "ParallaxCorrectedPxMmStrategy"},
    }
    hierarchy = {
        "name": "", "type": "", "fast_axis": [1.0, 0.0, 0.0], "slow_axis": [0.0, 1.0, 0.0],
        "origin": [0.0, 0.0, 0.0], "raw_image_offset": [0, 0], "image_size": [0, 0],
        "pixel_size": [0.0, 0.0], "trusted_range": [0.0, 0.0], "thickness": 0.0,
        "material": "", "mu": 0.0, "identifier": "", "mask": [], "gain": 1.0,
        "pedestal": 0.0, "px_mm_strategy": {"type": "SimplePxMmStrategy"},
        "children": [{"panel": 0}],
    }
    return {"panels": [panel], "hierarchy": hierarchy}


def _beam(g: DetectorGeometry, R: np.ndarray, wavelength_m: float | None = None) -> dict:
    b = np.asarray(g.beam, dtype=np.float64)
    e = np.asarray(g.polar, dtype=np.float64)
    normal = np.cross(b, e)  # the polarization plane holds E and the beam
    n = float(np.linalg.norm(normal))
    normal = R @ (normal / n) if n > 0 else np.array([0.0, 1.0, 0.0])
    return {"direction": _list(-(R @ b)),  # dxtbx: sample to source
            "wavelength": float(wavelength_m or g.wavelength_m) * 1e10,
            "divergence": 0.0, "sigma_divergence": 0.0,
            "polarization_normal": _list(normal),
            "polarization_fraction": g.polarization_fraction,
            "flux": 0.0, "transmission": 1.0}


def _crystal(cell_angstrom, R: np.ndarray, space_group_hall: str) -> dict:
    v = np.asarray(cell_angstrom, dtype=np.float64) @ R.T  # each row mapped by R
    if np.linalg.det(v) <= 0:
        raise ValueError("the cell vectors are left-handed (a · (b × c) <= 0)")
    return {"__id__": "crystal", "real_space_a": _list(v[0]), "real_space_b": _list(v[1]),
            "real_space_c": _list(v[2]), "space_group_hall_symbol": space_group_hall}


def image_template(path: str) -> str:
    """A frame-name template (``img_{frame:05d}.cbf``) as dxtbx writes it
    (``img_#####.cbf``), absolute; an ``.h5`` master (or any name) is kept as is."""
    import re

    name = re.sub(r"\{frame(?::0?(\d+)d)?\}",
                  lambda m: "#" * int(m.group(1) or 1), os.fspath(path))
    return os.path.abspath(name)


def _imageset_params() -> dict:
    return {"dynamic_shadowing": "Auto", "multi_panel": False}


def experiment_list(geometry: DetectorGeometry, crystals: Sequence[Any], *,
                    imagesets: Sequence[dict], experiment_imagesets: Sequence[int],
                    image_format: str, content: str = "float",
                    scan: dict | None = None, wavelengths_m: Sequence[float] | None = None,
                    space_group_hall: str = " P 1",
                    identifiers: Sequence[str] | None = None) -> dict:
    """The general builder: one experiment per crystal, sharing the detector.

    Parameters
    ----------
    geometry : DetectorGeometry
        Detector, beam, spindle and polarization (nanoBragg's lab frame).
    crystals : sequence of (3, 3) arrays
        Real-space vectors (rows a, b, c; Å; nanoBragg's lab frame): with a ``scan``
        at φ = 0 (see the module docstring), for stills as each shot saw them.
    imagesets : sequence of dict
        dxtbx imageset records (``ImageSequence`` / ``ImageSet``).
    experiment_imagesets : sequence of int
        The imageset of each experiment.
    image_format : {"nxmx", "cbf", "other"}
        What dxtbx reads the images as (panel name, trusted range, gap mask).
    content : {"float", "int", "noise"}
        The pixels the images hold (trusted range).
    scan : dict, optional
        ``{"first_image", "n_images"}``: a rotation experiment (goniometer + scan from
        ``geometry``'s spindle, φ start, oscillation and exposure).
    wavelengths_m : sequence of float, optional
        One beam per experiment with these wavelengths (stills with a spectrum);
        default one shared beam at ``geometry.wavelength_m``.
    space_group_hall : str
        The crystal's Hall symbol (nanoBragg knows no symmetry: P 1 by default).
    identifiers : sequence of str, optional
        Experiment identifiers (default ``"nbnumba-<i>"``).

    Returns
    -------
    dict : the JSON document (``json.dump`` it, or :func:`write_experiment_list`).

    Raises
    ------
    ValueError
        On mismatched lengths, an unknown format or a left-handed cell.
    """
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {IMAGE_FORMATS}")
    n = len(crystals)
    if len(experiment_imagesets) != n:
        raise ValueError("one imageset index per crystal")
    if wavelengths_m is not None and len(wavelengths_m) != n:
        raise ValueError("one wavelength per crystal")
    g = geometry
    R = g.dxtbx()
    beams = ([_beam(g, R, w) for w in wavelengths_m] if wavelengths_m is not None
             else [_beam(g, R)])
    experiments = []
    for i in range(n):
        e = {"__id__": "Experiment",
             "identifier": identifiers[i] if identifiers else f"nbnumba-{i}",
             "beam": i if wavelengths_m is not None else 0, "detector": 0,
             "crystal": i, "imageset": int(experiment_imagesets[i])}
        if scan is not None:
            e["goniometer"] = 0
            e["scan"] = 0
        experiments.append(e)
    doc: dict[str, Any] = {
        "__id__": "ExperimentList", "experiment": experiments, "imageset": list(imagesets),
        "beam": beams, "detector": [_detector(g, R, image_format, content)],
        "goniometer": [], "scan": [],
        "crystal": [_crystal(c, R, space_group_hall) for c in crystals],
        "profile": [], "scaling_model": [],
    }
    if scan is not None:
        first, count = int(scan["first_image"]), int(scan["n_images"])
        doc["goniometer"] = [{"rotation_axis": _list(R @ np.asarray(g.spindle)),
                              "fixed_rotation": [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0],
                              "setting_rotation": [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]}]
        doc["scan"] = [{"image_range": [first, first + count - 1], "batch_offset": 0,
                        "oscillation": [float(g.phi_start_deg), float(g.osc_deg)],
                        "exposure_time": [float(g.exposure_s)] * count,
                        "epochs": [i * float(g.exposure_s) for i in range(count)],
                        "valid_image_ranges": {}}]
    return doc


def rotation_experiment_list(geometry: DetectorGeometry, cell_angstrom, *, images: str,
                             n_images: int, image_format: str, content: str = "float",
                             first_image: int = 1, space_group_hall: str = " P 1") -> dict:
    """One rotation experiment: beam, detector, goniometer, scan, the true crystal.

    Parameters
    ----------
    geometry : DetectorGeometry
        Image 0's geometry (``phi_start_deg``: the first image's start angle).
    cell_angstrom : (3, 3) array
        Real-space vectors at φ = 0 (rows; Å; nanoBragg's lab frame), e.g.
        :func:`cell_vectors_angstrom`.
    images : str
        The NXmx master (``run_master.h5``), or a frame template with ``#`` for the
        digits (``img_#####.cbf``; :func:`image_template` converts ``{frame:05d}``).
        Made absolute.
    n_images : int
    image_format : {"nxmx", "cbf", "other"}
    content : {"float", "int", "noise"}
    first_image : int
        dxtbx's number of the first image: 1 for NXmx, the first file's number for a
        template (a series numbers its frames from 0).

    Returns
    -------
    dict : the experiment list (JSON document).
    """
    imageset = {"__id__": "ImageSequence", "template": os.path.abspath(images)}
    if image_format == "nxmx":
        imageset["single_file_indices"] = list(range(n_images))
    imageset.update({"mask": None, "gain": None, "pedestal": None, "dx": None, "dy": None,
                     "params": _imageset_params()})
    return experiment_list(geometry, [cell_angstrom], imagesets=[imageset],
                           experiment_imagesets=[0], image_format=image_format,
                           content=content,
                           scan={"first_image": first_image, "n_images": n_images},
                           space_group_hall=space_group_hall)


def stills_experiment_list(geometry: DetectorGeometry, cells_angstrom: Sequence[Any], *,
                           image_path: str, indices: Sequence[int] | None = None,
                           image_format: str = "nxmx", content: str = "float",
                           wavelengths_m: Sequence[float] | None = None,
                           space_group_hall: str = " P 1") -> dict:
    """Stills: experiment ``i`` is shot ``indices[i]`` of ``image_path`` with crystal
    ``cells_angstrom[i]``.

    Parameters
    ----------
    geometry : DetectorGeometry
        The shared detector and beam (its φ and oscillation are not used).
    cells_angstrom : sequence of (3, 3) arrays
        Each shot's real-space vectors as the shot saw them (rows; Å; nanoBragg lab).
    image_path : str
        The HDF5/NXmx file holding the shots (made absolute).
    indices : sequence of int, optional
        0-based image index of each experiment in that file (default ``0..N-1``).
    image_format, content : see :func:`experiment_list`.
    wavelengths_m : sequence of float, optional
        Each shot's wavelength (one beam per experiment); default the geometry's.

    Returns
    -------
    dict : the experiment list (JSON document): no goniometer or scan; one
    ``ImageSet`` per experiment (``images: [image_path]``, ``single_file_indices:
    [index]``), as ``dials.stills_process`` writes.
    """
    n = len(cells_angstrom)
    indices = list(range(n)) if indices is None else [int(i) for i in indices]
    if len(indices) != n:
        raise ValueError("one image index per crystal")
    path = os.path.abspath(image_path)
    imagesets = [{"__id__": "ImageSet", "images": [path], "single_file_indices": [i],
                  "mask": None, "gain": None, "pedestal": None, "dx": None, "dy": None,
                  "params": _imageset_params()} for i in indices]
    return experiment_list(geometry, cells_angstrom, imagesets=imagesets,
                           experiment_imagesets=list(range(n)), image_format=image_format,
                           content=content, wavelengths_m=wavelengths_m,
                           space_group_hall=space_group_hall)


def write_experiment_list(path: str, doc: dict) -> None:
    """Write ``doc`` as JSON, atomically (``io.atomic_write``)."""
    from ..io import atomic_write

    atomic_write(os.fspath(path), (json.dumps(doc, indent=1) + "\n").encode("ascii"))
