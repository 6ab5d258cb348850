"""Geometry beside the images: an XDS.INP fragment and a pyFAI PONI file.

Both state the run's geometry exactly (to the last printed digit: 17 significant
digits): the XDS fragment in nanoBragg's own lab frame (XDS accepts any right-handed
frame), the PONI in pyFAI's frame (axis 3 along the beam, axis 1 up). ``specs/formats.md``
gives the derivations.
"""

from __future__ import annotations

import json
import math

import numpy as np

from .geometry import DetectorGeometry, adc_baseline, saturation_of

__all__ = ["xds_inp", "poni", "poni_parameters", "write_geometry_files", "geometry_names"]


def _n(x: float) -> str:
    return repr(float(x) + 0.0)  # no "-0.0"


def _v(v) -> str:
    return " ".join(_n(c) for c in v)


def xds_inp(g: DetectorGeometry, *, template: str | None = None,
            first_frame: int = 1, last_frame: int | None = None,
            image_format: str | None = None) -> str:
    """An XDS.INP fragment for ``g`` (text, ends with a newline).

    Parameters
    ----------
    template : str, optional
        ``NAME_TEMPLATE_OF_DATA_FRAMES`` (``?`` for the frame digits); a commented
        placeholder without it.
    first_frame, last_frame : int
        The image number whose start angle is ``g.phi_start_deg`` (``STARTING_FRAME``),
        and with ``last_frame`` the ``DATA_RANGE``/``SPOT_RANGE`` (numbers as in the
        file names: a series numbers its ``.cbf`` files from 0, an NXmx stack from 1).
    image_format : {"cbf", "h5", "img", None}
        Picks ``DETECTOR=``, the valid pixel range and, for NXmx, the durin plugin line.
    """
    px_mm = g.pixel_size_m * 1000.0
    beam = np.asarray(g.beam)
    lines = [
        "! XDS.INP fragment written by nbnumba for a nanoBragg simulation",
        f"! convention {g.convention}, pivot {g.pivot}, two-theta {_n(g.twotheta_deg)} deg;",
        "! vectors in nanoBragg's lab frame; pixel centres at integer XDS coordinates",
    ]
    for problem in g.flat_problems():
        lines.append(f"! WARNING: {problem}")
    sat = saturation_of(g.adc_offset)
    if image_format == "img":
        lines.append(f"DETECTOR= ADSC  MINIMUM_VALID_PIXEL_VALUE= {adc_baseline(g.adc_offset)}"
                     f"  OVERLOAD= 65535  ! SMV pixels carry the ADC offset "
                     f"{_n(g.adc_offset)}")
    elif image_format == "h5":
        lines.append(f"DETECTOR= EIGER  MINIMUM_VALID_PIXEL_VALUE= 0  OVERLOAD= {sat}")
        lines.append("LIB= /path/to/durin-plugin.so  ! or the Dectris neggia plugin")
    else:
        lines.append(f"DETECTOR= PILATUS  MINIMUM_VALID_PIXEL_VALUE= 0  OVERLOAD= {sat}")
    lines += [
        f"NX= {g.fast_pixels}  NY= {g.slow_pixels}  QX= {_n(px_mm)}  QY= {_n(px_mm)}",
        f"DIRECTION_OF_DETECTOR_X-AXIS= {_v(g.fdet)}",
        f"DIRECTION_OF_DETECTOR_Y-AXIS= {_v(g.sdet)}",
        f"DETECTOR_DISTANCE= {_n(g.close_distance_m * 1000.0)}",
        f"ORGX= {_n(g.orgx)}  ORGY= {_n(g.orgy)}",
        f"ROTATION_AXIS= {_v(g.spindle)}",
        f"INCIDENT_BEAM_DIRECTION= {_v(beam / (g.wavelength_m * 1e10))}",
        f"X-RAY_WAVELENGTH= {_n(g.wavelength_m * 1e10)}",
        f"OSCILLATION_RANGE= {_n(g.osc_deg)}",
        f"STARTING_FRAME= {int(first_frame)}",
        f"STARTING_ANGLE= {_n(g.phi_start_deg)}",
    ]
    if g.thickness_m > 0:
        lines.append(f"SENSOR_THICKNESS= {_n(g.thickness_m * 1000.0)}")
    else:
        lines.append("SENSOR_THICKNESS= 0.0")
    normal = np.cross(beam, np.asarray(g.polar))
    if np.linalg.norm(normal) > 0:
        lines.append(f"POLARIZATION_PLANE_NORMAL= {_v(normal / np.linalg.norm(normal))}")
    if template:
        lines.append(f"NAME_TEMPLATE_OF_DATA_FRAMES= {template}")
    else:
        lines.append("!NAME_TEMPLATE_OF_DATA_FRAMES= img_?????.cbf")
    if last_frame is not None:
        lines.append(f"DATA_RANGE= {int(first_frame)} {int(last_frame)}")
        lines.append(f"SPOT_RANGE= {int(first_frame)} {int(last_frame)}")
    return "\n".join(lines) + "\n"


def poni_parameters(g: DetectorGeometry) -> dict:
    """pyFAI's geometry for ``g``: dist, poni1, poni2 (m), rot1..3 (rad), orientation.

    pyFAI places pixel centre (d1, d2) = ((i1 + 0.5) p, (i2 + 0.5) p) (i1 slow, i2 fast
    under orientation 3; orientation 2 counts i1 from the other edge) at
    ``R · (d1 - poni1, d2 - poni2, dist)`` with ``R = rot3·rot2·rot1`` (pyFAI's
    ``rotation_matrix``) in its frame (axis 1 up, axis 2 horizontal, axis 3 along the
    beam). The detector's slow and fast axes become R's first two columns; orientation 2
    is chosen when slow × fast points away from the sample, so R stays a rotation and
    both 2θ and χ are exact.
    """
    R_m = g.mcstas()
    # pyFAI axes in McStas: 1 = y (up), 2 = -x, 3 = z (beam)
    to_pyfai = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]) @ R_m
    px = g.pixel_size_m
    u1 = np.asarray(g.sdet, dtype=np.float64)
    u2 = np.asarray(g.fdet, dtype=np.float64)
    p0 = np.asarray(g.pix0_m, dtype=np.float64)
    orientation = 3
    if float(np.dot(p0, np.cross(u1, u2))) < 0:
        orientation = 2  # pyFAI counts the slow index from the far edge
        p0 = p0 + g.slow_pixels * px * u1
        u1 = -u1
    n = np.cross(u1, u2)
    dist = float(np.dot(p0, n))
    poni1 = -float(np.dot(p0, u1))
    poni2 = -float(np.dot(p0, u2))
    R = np.column_stack([to_pyfai @ u1, to_pyfai @ u2, to_pyfai @ n])
    rot2 = math.asin(max(-1.0, min(1.0, R[2, 0])))
    rot1 = math.atan2(-R[2, 1], R[2, 2])
    rot3 = math.atan2(R[1, 0], R[0, 0])
    return {"dist": dist, "poni1": poni1, "poni2": poni2, "rot1": rot1, "rot2": rot2,
            "rot3": rot3, "orientation": orientation}


def poni(g: DetectorGeometry) -> str:
    """A PONI file (version 2.1) for ``g``: pyFAI's ``load()`` reads it."""
    p = poni_parameters(g)
    config = {"pixel1": g.pixel_size_m, "pixel2": g.pixel_size_m,
              "max_shape": [g.slow_pixels, g.fast_pixels], "orientation": p["orientation"]}
    lines = [
        "# PONI file written by nbnumba for a nanoBragg simulation",
        f"# convention {g.convention}, pivot {g.pivot}; pixel (slow, fast) = (dim1, dim2)",
    ]
    for problem in g.flat_problems():
        lines.append(f"# WARNING: {problem}")
    lines += [
        "poni_version: 2.1",
        "Detector: Detector",
        f"Detector_config: {json.dumps(config)}",
        f"Distance: {_n(p['dist'])}",
        f"Poni1: {_n(p['poni1'])}",
        f"Poni2: {_n(p['poni2'])}",
        f"Rot1: {_n(p['rot1'])}",
        f"Rot2: {_n(p['rot2'])}",
        f"Rot3: {_n(p['rot3'])}",
        f"Wavelength: {_n(g.wavelength_m)}",
    ]
    return "\n".join(lines) + "\n"


def geometry_names(name: str) -> tuple[str, str]:
    """The two files ``-geometry_out NAME`` writes: ``NAME.XDS.INP`` and ``NAME.poni``."""
    return f"{name}.XDS.INP", f"{name}.poni"


def write_geometry_files(name: str, g: DetectorGeometry, **xds_options) -> list[str]:
    """Write ``NAME.XDS.INP`` and ``NAME.poni`` atomically; returns their paths."""
    from ..io import atomic_write

    xds_path, poni_path = geometry_names(name)
    atomic_write(xds_path, xds_inp(g, **xds_options).encode("ascii"))
    atomic_write(poni_path, poni(g).encode("ascii"))
    return [xds_path, poni_path]
