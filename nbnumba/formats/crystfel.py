"""CrystFEL-style HDF5 images: ``/data/data`` holds the slab, a ``.geom`` beside it.

:func:`geom_text` writes a detector (:class:`nbnumba.models.Detector`) as a CrystFEL
geometry file that :mod:`nbnumba.readers.crystfel_geom`, CrystFEL and extra-geom read back
to the same pixel positions: per panel ``min_fs/max_fs/min_ss/max_ss`` (its place in the
slab), ``fs``/``ss`` (unit vectors), ``corner_x/corner_y`` (pixels) and ``coffset`` (m,
from a common ``clen``), ``res``; top level ``photon_energy``, ``clen``,
``adu_per_photon``, ``data`` and, with a mask, ``mask``/``mask_good``/``mask_bad``. The
vectors are taken from nanoBragg's lab frame to CrystFEL's (McStas: beam along +z) by
:func:`nbnumba.formats.geometry.lab_to_mcstas` of the run's beam and spindle: for the
usual beam along +x and spindle along +z that is exactly the inverse of the reader's
:data:`nbnumba.models.frames.CRYSTFEL_TO_LAB`. Numbers are written with 17 significant
digits, the direction coefficients in fixed point (CrystFEL's direction parser splits
"1e-05x" at the exponent's sign).

:func:`write_crystfel` writes ``NAME.h5`` (``/data/data``: float32 photons, or int32
counts with the ADC offset removed; 2-D for one image, 3-D with ``dim0 = %`` for several;
``/data/mask`` when a mask is given) and ``NAME.geom``.
"""

from __future__ import annotations

import os
import re

import numpy as np

__all__ = ["geom_text", "crystfel_panel_names", "write_crystfel", "write_result_crystfel"]

_SAFE = re.compile(r"[^A-Za-z0-9_.:-]")


def crystfel_panel_names(detector) -> list[str]:
    """Names CrystFEL accepts (no ``/ = ; space``, not starting with ``bad``/``group``/
    ``rigid_group``), unique, as close to the panels' names as possible."""
    out: list[str] = []
    for i, p in enumerate(detector.panels):
        name = _SAFE.sub("_", p.name) or f"p{i}"
        if name.startswith(("bad", "group", "rigid_group")):
            name = "p_" + name
        while name in out:
            name = f"{name}_{i}"
        out.append(name)
    return out


def _n(x: float) -> str:
    return repr(float(x) + 0.0)


def _dir(v) -> str:
    # fixed point: CrystFEL's assplode_algebraic would split an exponent's sign
    return " ".join(f"{float(c) + 0.0:+.17f}{axis}" for c, axis in zip(v, "xyz", strict=True))


def geom_text(detector, *, rotation: np.ndarray | None = None,
              photon_energy_eV: float | None = None, clen_m: float | None = None,
              adu_per_photon: float = 1.0, data_path: str = "/data/data",
              mask_path: str | None = None, frames: int = 1) -> str:
    """The ``.geom`` text of ``detector``.

    Parameters
    ----------
    detector : nbnumba.models.Detector
    rotation : (3, 3) float, optional
        nanoBragg lab → CrystFEL (McStas) frame; default the fixed mapping of
        :mod:`nbnumba.models.frames` (beam along +x).
    photon_energy_eV : float, optional
        ``photon_energy`` (else a commented placeholder: CrystFEL wants one).
    clen_m : float, optional
        The common ``clen``; default panel 0's corner z (each panel's ``coffset`` is its
        corner's z minus ``clen``).
    adu_per_photon : float
        Written as given: 1 for photons (the float image) and counts; a ``-geom`` run
        passes its file's value back.
    data_path, mask_path : str
        HDF5 locations of the image and the mask (``mask`` omitted when None).
    frames : int
        More than one: ``dim0 = %`` (frames), ``dim1 = ss``, ``dim2 = fs``.
    """
    from ..models.frames import CRYSTFEL_TO_LAB

    R = CRYSTFEL_TO_LAB.T if rotation is None else np.asarray(rotation, dtype=np.float64)
    corners = [R @ np.asarray(p.pix0_m) for p in detector.panels]
    clen = float(corners[0][2]) if clen_m is None else float(clen_m)
    lines = ["; CrystFEL geometry written by nbnumba for a nanoBragg simulation",
             "; frame: CrystFEL's (beam along +z, +y up); pixel centres as the panels'"]
    if photon_energy_eV is not None:
        lines.append(f"photon_energy = {_n(photon_energy_eV)}")
    else:
        lines.append("; photon_energy = SET ME")
    lines += [f"clen = {_n(clen)}", f"adu_per_photon = {_n(adu_per_photon)}",
              f"data = {data_path}"]
    if frames > 1:
        lines += ["dim0 = %", "dim1 = ss", "dim2 = fs"]
    else:
        lines += ["dim0 = ss", "dim1 = fs"]
    if mask_path is not None:
        lines += [f"mask = {mask_path}", "mask_good = 0x0", "mask_bad = 0x1"]
    lines.append("")
    for name, p, corner in zip(crystfel_panel_names(detector), detector.panels, corners,
                               strict=True):
        res = 1.0 / p.pixel_m
        ss0, fs0 = p.slab_origin
        lines += [
            f"{name}/min_fs = {fs0}", f"{name}/max_fs = {fs0 + p.fpixels - 1}",
            f"{name}/min_ss = {ss0}", f"{name}/max_ss = {ss0 + p.spixels - 1}",
            f"{name}/res = {_n(res)}",
            f"{name}/fs = {_dir(R @ np.asarray(p.fdet))}",
            f"{name}/ss = {_dir(R @ np.asarray(p.sdet))}",
            f"{name}/corner_x = {_n(corner[0] * res)}",
            f"{name}/corner_y = {_n(corner[1] * res)}",
            f"{name}/coffset = {_n(corner[2] - clen)}",
            "",
        ]
    return "\n".join(lines)


def write_crystfel(path: str, detector, images, *, rotation: np.ndarray | None = None,
                   photon_energy_eV: float | None = None, mask: np.ndarray | None = None,
                   adu_per_photon: float = 1.0, geom_path: str | None = None
                   ) -> tuple[str, str]:
    """Write ``images`` (slabs) to ``path`` (HDF5, ``/data/data``) and the ``.geom`` beside it.

    Parameters
    ----------
    path : str
        The HDF5 file (``NAME.h5``); the geometry goes to ``geom_path`` (default
        ``NAME.geom``). Both are written atomically.
    detector : nbnumba.models.Detector
    images : ndarray or list of ndarray
        One slab (``detector.slab_shape``) or several (frames).
    mask : ndarray of bool, optional
        True where a pixel is bad (``/data/mask``, 1 = bad).

    Returns
    -------
    (h5_path, geom_path)

    Raises
    ------
    ValueError
        An image of the wrong shape.
    """
    import h5py

    from ..io import atomic_write, put_in_place

    frames = [np.asarray(images)] if np.ndim(images) == 2 else [np.asarray(a) for a in images]
    shape = tuple(detector.slab_shape)
    for a in frames:
        if a.shape != shape:
            raise ValueError(f"an image of shape {a.shape}, the detector's slab is {shape}")
    if geom_path is None:
        geom_path = os.path.splitext(path)[0] + ".geom"
    data = frames[0] if len(frames) == 1 else np.stack(frames)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with h5py.File(tmp, "w") as h5:
            h5.create_dataset("/data/data", data=data)
            if mask is not None:
                if mask.shape != shape:
                    raise ValueError(f"a mask of shape {mask.shape}, the slab is {shape}")
                h5.create_dataset("/data/mask", data=np.asarray(mask, dtype=np.uint16))
            h5.attrs["creator"] = "nbnumba (nanoBragg.c port)"
        text = geom_text(detector, rotation=rotation, photon_energy_eV=photon_energy_eV,
                         adu_per_photon=adu_per_photon, frames=len(frames),
                         mask_path="/data/mask" if mask is not None else None)
        atomic_write(geom_path, text.encode("ascii"))
        put_in_place(tmp, path)  # recorded, as atomic_write's: a failed run removes it
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path, geom_path


def write_result_crystfel(path: str, result, *, content: str = "float",
                          mask: np.ndarray | None = None) -> tuple[str, str]:
    """A finished run (:class:`nbnumba.api.Result`) as ``NAME.h5`` + ``NAME.geom``.

    ``content``: ``"float"`` (photons, float32) or ``"int"``/``"noise"`` (int32 counts,
    the ADC offset removed as the other counted formats do). ``adu_per_photon`` is the
    ``-geom`` file's (``result.adu_per_photon``: the detector's description carried through;
    the pixels are nanoBragg.c's, not rescaled by it), else 1. The photon energy is the
    run's (``12398.42 / λ[Å]`` eV, nanoBragg's constant); the frame turn is
    :func:`~nbnumba.formats.geometry.lab_to_mcstas` of the run's beam and spindle.
    """
    from .geometry import DetectorGeometry
    from .nxmx import counts_from_raw
    from .panels import detector_of_result

    g = DetectorGeometry.from_scene(result.scene)
    if content == "float":
        image = np.asarray(result.image, dtype=np.float32)
    elif content in ("int", "noise"):
        raw = result.int_image() if content == "int" else result.noise_image()
        image = counts_from_raw(raw, g.adc_offset)
    else:
        raise ValueError(f"content must be float, int or noise, not {content!r}")
    adu = getattr(result, "adu_per_photon", None)
    return write_crystfel(path, detector_of_result(result), image, rotation=g.mcstas(),
                          photon_energy_eV=12398.42 / (g.wavelength_m * 1e10), mask=mask,
                          adu_per_photon=1.0 if adu is None else float(adu))
