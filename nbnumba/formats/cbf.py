"""miniCBF images, as DIALS and XDS read them.

The header is the Dectris miniCBF ``# Key value`` block that dxtbx's ``FormatCBFMini``
and XDS's ``DETECTOR=PILATUS`` read: a timestamp line, pixel size, silicon sensor
thickness, distance, wavelength, beam centre, start angle and increment, exposure,
count cut-off. Its convention is ``PILATUS_1.2`` when the size is a Pilatus module
layout (dxtbx then masks the module gaps, as for a real Pilatus) and ``GENERIC_MINI``
otherwise (dxtbx's convention for simulated pixel arrays of any size). The pixels are
int32 counts with nanoBragg's ADC offset removed (a zero baseline, as a counting
detector), written by fabio's CBF writer (byte-offset compression).
``specs/formats.md`` gives each key.
"""

from __future__ import annotations

import datetime

import numpy as np

from .expt import pilatus_gap_mask
from .geometry import DetectorGeometry, adc_baseline, saturation_of
from .nxmx import counts_from_raw

__all__ = ["minicbf_header", "write_minicbf", "header_convention", "timestamp_line",
           "numbered_name"]

# the clock of the files: frame i was taken i exposures after this instant, so dxtbx's
# epochs (from the timestamps) are those of the NXmx file and of the .expt scan
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def numbered_name(path: str) -> str:
    """``path`` if dxtbx finds an image number in its name, else the name with
    ``_0001`` before its suffix (``one.cbf`` → ``one_0001.cbf``; no suffix: ``_0001.cbf``
    appended): dxtbx's miniCBF reader takes the image number from the file name
    (``ScanFactory.single_file``) and cannot read a file without one."""
    import os

    from .expt import dxtbx_template

    if dxtbx_template(path) is not None:
        return path
    stem, suffix = os.path.splitext(path)
    if not suffix or os.sep in suffix:
        return path + "_0001.cbf"
    return f"{stem}_0001{suffix}"


def header_convention(fast_pixels: int, slow_pixels: int) -> str:
    """``PILATUS_1.2`` for a Pilatus module layout, else ``GENERIC_MINI``."""
    if pilatus_gap_mask(fast_pixels, slow_pixels) is not None:
        return "PILATUS_1.2"
    return "GENERIC_MINI"


def timestamp_line(seconds: float) -> str:
    """``# YYYY-MM-DDThh:mm:ss.sss`` (Pilatus's form), ``seconds`` after 1970-01-01 UTC."""
    t = _EPOCH + datetime.timedelta(milliseconds=round(seconds * 1000.0))
    return f"# {t.strftime('%Y-%m-%dT%H:%M:%S')}.{t.microsecond // 1000:03d}"


def _num(x: float) -> str:
    """A number with every digit that matters (round-trips a double)."""
    return repr(float(x))


def minicbf_header(geometry: DetectorGeometry, frame: int = 0) -> tuple[str, list[str]]:
    """The ``_array_data.header_contents`` text and warnings for ``geometry``.

    ``frame`` (the image's index in its series) sets the timestamp line:
    ``frame * exposure_s`` after 1970-01-01T00:00:00 UTC.

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
        timestamp_line(frame * g.exposure_s),
        f"# Pixel_size {_num(px)} m x {_num(px)} m",
        # the run's sensor, else the nominal one (geometry.NOMINAL_SENSOR_THICKNESS_M)
        f"# Silicon sensor, thickness {_num(g.sensor_thickness_m)} m",
    ]
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
                  raw_has_offset: bool = True, frame: int = 0) -> list[str]:
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
    frame : int
        The image's index in its series (its timestamp, :func:`minicbf_header`).
    """
    import fabio.cbfimage

    counts = counts_from_raw(raw, geometry.adc_offset) if raw_has_offset \
        else np.asarray(raw, dtype=np.int32)
    text, warnings = minicbf_header(geometry, frame)
    convention = header_convention(geometry.fast_pixels, geometry.slow_pixels)
    header = {"_array_data.header_convention": convention,
              "_array_data.header_contents": text}
    fabio.cbfimage.CbfImage(data=np.ascontiguousarray(counts, dtype=np.int32),
                            header=header).write(path)
    return warnings
