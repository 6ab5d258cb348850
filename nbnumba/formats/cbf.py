"""miniCBF images (``PILATUS_1.2`` header convention), as DIALS and XDS read them.

The header is the Dectris miniCBF ``# Key value`` block that dxtbx's ``FormatCBFMini``
and XDS's ``DETECTOR=PILATUS`` read: pixel size, distance, wavelength, beam centre,
start angle and increment, exposure, count cut-off. The pixels are int32 counts with
nanoBragg's ADC offset removed (a zero baseline, as a counting detector), written by
fabio's CBF writer (byte-offset compression). ``specs/formats.md`` gives each key.
"""

from __future__ import annotations

import numpy as np

from .geometry import DetectorGeometry, adc_baseline, saturation_of
from .nxmx import counts_from_raw

__all__ = ["minicbf_header", "write_minicbf"]


def _num(x: float) -> str:
    """A number with every digit that matters (round-trips a double)."""
    return repr(float(x))


def minicbf_header(geometry: DetectorGeometry) -> tuple[str, list[str]]:
    """The ``_array_data.header_contents`` text and warnings for ``geometry``.

    Returns
    -------
    (text, warnings) : str, list of str
        ``text``: ``# Key value`` lines joined by CR LF. ``warnings``: one line when
        miniCBF cannot describe the detector (rotations, two-theta, curved, a spindle
        other than the fast axis); the header then gives the beam spot and the
        perpendicular distance, the nearest honest values.
    """
    g = geometry
    px = g.pixel_size_m
    fbeam, sbeam = g.beam_spot_m()
    if not np.isfinite(fbeam):  # the beam runs parallel to the detector
        fbeam = -float(np.dot(g.pix0_m, g.fdet))
        sbeam = -float(np.dot(g.pix0_m, g.sdet))
    lines = [
        "# Detector: nanoBragg simulation (nbnumba), S/N 0",
        f"# Pixel_size {_num(px)} m x {_num(px)} m",
    ]
    if g.thickness_m > 0:
        lines.append(f"# Silicon sensor, thickness {_num(g.thickness_m)} m")
    lines += [
        f"# Exposure_time {_num(g.exposure_s)} s",
        f"# Exposure_period {_num(g.exposure_s)} s",
        "# Tau = 0 s",
        f"# Count_cutoff {saturation_of(g.adc_offset)} counts",
        f"# Wavelength {_num(g.wavelength_m * 1e10)} A",
        f"# Detector_distance {_num(g.close_distance_m)} m",
        f"# Beam_xy ({_num(fbeam / px)}, {_num(sbeam / px)}) pixels",
        f"# Start_angle {_num(g.phi_start_deg)} deg.",
        f"# Angle_increment {_num(g.osc_deg)} deg.",
        f"# Phi {_num(g.phi_start_deg)} deg.",
        "# N_oscillations 1",
        f"# Detector_2theta {_num(g.twotheta_deg)} deg.",
        f"# ADC_offset_subtracted {adc_baseline(g.adc_offset)} counts",
    ]
    problems = g.minicbf_problems()
    warnings = []
    if problems:
        warnings.append("warning: miniCBF cannot describe this geometry ("
                        + "; ".join(problems) + "): its header gives the beam spot and the "
                        "perpendicular distance; use the .h5 (NXmx) format or -geometry_out "
                        "for the exact geometry")
    return "\r\n".join(lines), warnings


def write_minicbf(path: str, raw: np.ndarray, geometry: DetectorGeometry, *,
                  raw_has_offset: bool = True) -> list[str]:
    """Write one miniCBF image; returns the warnings of :func:`minicbf_header`.

    Parameters
    ----------
    path : str
        Output file, written in place (the CBF data block is named after it).
    raw : ndarray (slow, fast)
        C's uint16 int/noise pixels (``raw_has_offset``: the ADC offset is removed),
        or counts already on a zero baseline.
    geometry : DetectorGeometry
        This image's geometry (``phi_start_deg`` is its start angle).
    """
    import fabio.cbfimage

    counts = counts_from_raw(raw, geometry.adc_offset) if raw_has_offset \
        else np.asarray(raw, dtype=np.int32)
    text, warnings = minicbf_header(geometry)
    header = {"_array_data.header_convention": "PILATUS_1.2",
              "_array_data.header_contents": text}
    fabio.cbfimage.CbfImage(data=np.ascontiguousarray(counts, dtype=np.int32),
                            header=header).write(path)
    return warnings
