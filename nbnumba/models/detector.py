"""A detector as one or more flat panels, each what nanoBragg.c calls "the detector".

A :class:`Panel` carries exactly the vectors nanoBragg.c's pixel loop uses
(``fdet_vector``, ``sdet_vector``, ``odet_vector``, ``pix0_vector``, line 2470 ff.)
so that a panel renders through the same kernels as a single-panel run; a
:class:`Detector` places its panels in one output array (the *slab*), as a
CrystFEL geometry file addresses its data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Detector", "Panel", "unit_vector", "UNIT_TOLERANCE"]


# a vector this close to unit length is kept as given: C's unitized (and rotated) vectors
# pass through bit for bit, so a panel packs into the very ``det`` rows C's setup gives
UNIT_TOLERANCE = 1e-12


def unit_vector(v, what: str) -> tuple[float, float, float]:
    """``v`` as a unit 3-tuple, normalised as nanoBragg.c's ``unitize`` does.

    A vector within :data:`UNIT_TOLERANCE` of unit length is returned unchanged
    (bit for bit); any other is divided by ``sqrt(x*x + y*y + z*z)`` (C's
    ``magnitude``).

    Raises
    ------
    ValueError
        Not three finite numbers, or the zero vector.
    """
    a = np.asarray(v, dtype=float).reshape(-1)
    if a.size != 3:
        raise ValueError(f"{what} must be a 3-vector, got {a.tolist()}")
    x, y, z = (float(a[0]), float(a[1]), float(a[2]))
    mag = math.sqrt(x * x + y * y + z * z)
    if not math.isfinite(mag) or mag == 0.0:
        raise ValueError(f"{what} must be a finite non-zero 3-vector, got {[x, y, z]}")
    if abs(mag - 1.0) <= UNIT_TOLERANCE:
        return (x, y, z)
    return (x / mag, y / mag, z / mag)


@dataclass(frozen=True)
class Panel:
    """One flat rectangular panel in nanoBragg's lab frame.

    Parameters
    ----------
    name : str
        The panel's name (CrystFEL's panel name, dxtbx's panel name).
    fdet, sdet : (3,) float
        Unit vectors along the fast and slow pixel axes (C's ``fdet_vector``,
        ``sdet_vector``).
    odet : (3,) float
        Unit normal (C's ``odet_vector``), pointing away from the sample for a
        panel facing it; ``fdet × sdet`` or its opposite (C's conventions use both).
    pix0_m : (3,) float
        C's ``pix0_vector``: the position (m) of the *outer corner* of pixel
        (0, 0), i.e. the point the pixel loop offsets by ``(fpixel + 0.5)`` and
        ``(spixel + 0.5)`` pixels to reach pixel centres.
    pixel_m : float
        Pixel size (m), square pixels.
    fpixels, spixels : int
        Size in pixels along fast and slow.
    thickness_m : float
        Sensor thickness (m); 0 for C's default thin detector.
    material : str
        Sensor material (``"Si"``, ``"CdTe"``, ...), for file metadata.
    slab_origin : (int, int)
        Where pixel (0, 0) of the panel sits in the detector's output array,
        as ``(ss, fs)`` (row, column).
    """

    name: str
    fdet: tuple[float, float, float]
    sdet: tuple[float, float, float]
    odet: tuple[float, float, float]
    pix0_m: tuple[float, float, float]
    pixel_m: float
    fpixels: int
    spixels: int
    thickness_m: float = 0.0
    material: str = "Si"
    slab_origin: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fdet", unit_vector(self.fdet, "fdet"))
        object.__setattr__(self, "sdet", unit_vector(self.sdet, "sdet"))
        object.__setattr__(self, "odet", unit_vector(self.odet, "odet"))
        p = np.asarray(self.pix0_m, dtype=float).reshape(3)
        if not np.all(np.isfinite(p)):
            raise ValueError(f"pix0_m must be finite, got {list(p)}")
        object.__setattr__(self, "pix0_m", (float(p[0]), float(p[1]), float(p[2])))
        if not (np.isfinite(self.pixel_m) and self.pixel_m > 0):
            raise ValueError(f"pixel_m must be a positive size, got {self.pixel_m}")
        if int(self.fpixels) < 1 or int(self.spixels) < 1:
            raise ValueError(f"panel {self.name!r}: {self.fpixels}x{self.spixels} pixels")
        object.__setattr__(self, "fpixels", int(self.fpixels))
        object.__setattr__(self, "spixels", int(self.spixels))
        ss, fs = self.slab_origin
        object.__setattr__(self, "slab_origin", (int(ss), int(fs)))

    def pixel_centres_m(self) -> np.ndarray:
        """Positions (m) of every pixel centre, shape ``(spixels, fpixels, 3)``.

        C's pixel loop: ``pix0_vector + (fpixel+0.5)·pixel·fdet + (spixel+0.5)·pixel·sdet``
        (nanoBragg.c, "position in pixel array").
        """
        f = (np.arange(self.fpixels) + 0.5) * self.pixel_m
        s = (np.arange(self.spixels) + 0.5) * self.pixel_m
        return (np.asarray(self.pix0_m)[None, None, :]
                + f[None, :, None] * np.asarray(self.fdet)[None, None, :]
                + s[:, None, None] * np.asarray(self.sdet)[None, None, :])

    def as_dict(self) -> dict:
        """The panel as ``-panels_out`` lists it (JSON-ready)."""
        return {
            "name": self.name, "fdet": list(self.fdet), "sdet": list(self.sdet),
            "odet": list(self.odet), "pix0_m": list(self.pix0_m), "pixel_m": self.pixel_m,
            "fpixels": self.fpixels, "spixels": self.spixels,
            "thickness_m": self.thickness_m, "material": self.material,
            "slab_origin": list(self.slab_origin),
        }


@dataclass(frozen=True)
class Detector:
    """Panels and the array they are written into.

    Parameters
    ----------
    panels : tuple of Panel
        In file order.
    slab_shape : (int, int), optional
        ``(rows, columns)`` of the output array; by default the smallest array
        holding every panel at its ``slab_origin``.

    Raises
    ------
    ValueError
        No panel, two panels with the same name, a panel outside the slab, or
        two panels overlapping in the slab.
    """

    panels: tuple[Panel, ...]
    slab_shape: tuple[int, int] | None = field(default=None)

    def __post_init__(self) -> None:
        panels = tuple(self.panels)
        if not panels:
            raise ValueError("a detector needs at least one panel")
        names = [p.name for p in panels]
        if len(set(names)) != len(names):
            raise ValueError(f"panel names repeat: {names}")
        need = (max(p.slab_origin[0] + p.spixels for p in panels),
                max(p.slab_origin[1] + p.fpixels for p in panels))
        shape = need if self.slab_shape is None else (int(self.slab_shape[0]),
                                                       int(self.slab_shape[1]))
        if shape[0] < need[0] or shape[1] < need[1]:
            raise ValueError(f"slab {shape} is smaller than the panels need {need}")
        used = np.zeros(shape, dtype=bool)
        for p in panels:
            ss, fs = p.slab_origin
            if ss < 0 or fs < 0:
                raise ValueError(f"panel {p.name!r} has a negative slab origin {p.slab_origin}")
            block = used[ss:ss + p.spixels, fs:fs + p.fpixels]
            if block.any():
                raise ValueError(f"panel {p.name!r} overlaps another panel in the slab")
            block[...] = True
        object.__setattr__(self, "panels", panels)
        object.__setattr__(self, "slab_shape", shape)

    def __len__(self) -> int:
        return len(self.panels)

    def assemble(self, images) -> np.ndarray:
        """The slab from one ``(spixels, fpixels)`` array per panel (zeros between panels)."""
        images = list(images)
        if len(images) != len(self.panels):
            raise ValueError(f"{len(images)} images for {len(self.panels)} panels")
        slab = np.zeros(self.slab_shape, dtype=np.result_type(*images))
        for p, img in zip(self.panels, images, strict=True):
            ss, fs = p.slab_origin
            slab[ss:ss + p.spixels, fs:fs + p.fpixels] = img
        return slab

    def split(self, slab: np.ndarray) -> list[np.ndarray]:
        """One view per panel into a slab of :attr:`slab_shape`."""
        if tuple(slab.shape) != tuple(self.slab_shape):
            raise ValueError(f"slab of shape {slab.shape}, expected {self.slab_shape}")
        return [slab[p.slab_origin[0]:p.slab_origin[0] + p.spixels,
                     p.slab_origin[1]:p.slab_origin[1] + p.fpixels] for p in self.panels]
