"""CrystFEL geometry files (``.geom``) as a :class:`~nbnumba.models.Detector`.

Follows ``crystfel_geometry(5)`` and CrystFEL's own parser (``libcrystfel``
``datatemplate.c``) without importing CrystFEL:

- ``key = value`` lines, ``;`` starts a comment; ``panel/key = value`` sets a panel's
  field; a top-level panel field (``res = 13333.3``) is the default for every panel
  *first mentioned later* in the file.
- Pixel ``(fs, ss)`` of a panel (0-based, panel-relative) has its centre at, in
  CrystFEL's lab frame (metres)::

      x = (corner_x + (fs + 0.5) fs_x + (ss + 0.5) ss_x) / res + detector_shift_x
      y = (corner_y + (fs + 0.5) fs_y + (ss + 0.5) ss_y) / res + detector_shift_y
      z = clen + coffset + ((fs + 0.5) fs_z + (ss + 0.5) ss_z) / res

  The panel becomes a :class:`~nbnumba.models.Panel` in nanoBragg's lab frame through
  :data:`nbnumba.models.frames.CRYSTFEL_TO_LAB`: ``pix0_m`` is the corner,
  ``fdet``/``sdet`` the unit ``fs``/``ss`` directions, ``pixel_m = |fs| / res``,
  ``odet = ±fdet × sdet`` pointing away from the sample.
- The output array (the *slab*) is the array the file addresses: panel ``p`` at rows
  ``min_ss..max_ss`` and columns ``min_fs..max_fs`` (``slab_origin = (min_ss, min_fs)``).
  A file whose panels carry one fixed index dimension (``dim1 = 3``: modules stacked in a
  3-D data block, as extra-geom writes them) is flattened by stacking the modules along
  the slow axis: ``slab row = index * module_rows + ss`` with ``module_rows = max(max_ss) + 1``.
- Bad regions (``bad*/min_fs ...`` in the data's fs/ss, or ``bad*/min_x ...`` in pixel
  units of x/y, strict inequalities, tested at each pixel's first corner as CrystFEL
  does), ``no_index`` panels and ``mask_edge_pixels`` become :attr:`CrystFELGeometry.mask`.

``specs/models.md`` lists what is read and what is ignored (groups, masks and other
values read from data files, peak lists, saturation).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputFileError, InputFileOpenError
from ..models.detector import Detector, Panel
from ..models.frames import to_lab

__all__ = ["CrystFELGeometry", "parse_geom", "read_geom", "HC_EV_A"]

#: nanoBragg.c's ``-energy`` conversion (eV * Angstrom): the wavelength of ``photon_energy``
#: is computed as ``-energy`` would compute it, so ``-geom`` equals ``-energy E``.
HC_EV_A = 12398.42

# Fields CrystFEL accepts for a panel (datatemplate.c, parse_field_for_panel) that do not
# change where pixels are or whether they are bad, and are therefore read and ignored.
_IGNORED_PANEL_FIELDS = {
    "max_adu", "saturation_map", "saturation_map_file", "badrow_direction",
    "flag_equal", "flag_lessthan", "flag_morethan", "mask", "mask_file", "mask_good",
    "mask_bad", "rail_x", "rail_y", "rail_z", "clen_for_centering", "clen_from",
}
_MASK_FIELD = re.compile(r"^mask\d_(data|file|goodbits|badbits)$")
_DIM_FIELD = re.compile(r"^dim(\d+)$")
_TERM = re.compile(r"([+-]?)(\d*\.?\d*(?:[eE][+-]?\d+)?)([xyz])")


@dataclass(frozen=True)
class CrystFELGeometry:
    """What a ``.geom`` file says about a detector and beam.

    Attributes
    ----------
    detector : Detector
        The panels in nanoBragg's lab frame, in file order, with their slab places.
    mask : ndarray of bool, shape ``detector.slab_shape``
        True where CrystFEL would ignore the pixel (bad regions, ``no_index`` panels,
        ``mask_edge_pixels``) and where no panel addresses the slab.
    clen_m : float
        The camera length used (m): the file's literal ``clen``, or the caller's.
    photon_energy_eV : float or None
        ``photon_energy`` (or the energy of ``wavelength``) when the file gives a number.
    wavelength_m : float or None
        The wavelength it means, with nanoBragg's constant (:data:`HC_EV_A`).
    adu_per_photon : float or None
        The panels' common ADU per photon (``adu_per_eV`` times the photon energy when
        that is how the file says it); None when absent or when panels differ.
    bandwidth : float or None
        ``bandwidth`` (fractional, a Gaussian's sigma) where given.
    data_path : str
        The HDF5 location of the first panel's data (``data``, default ``/data/data``).
    notes : tuple of str
        One line for each thing read but not used (groups, values read from data files,
        unknown fields), for a caller to warn with.
    """

    detector: Detector
    mask: np.ndarray
    clen_m: float
    photon_energy_eV: float | None = None
    wavelength_m: float | None = None
    adu_per_photon: float | None = None
    bandwidth: float | None = None
    data_path: str = "/data/data"
    notes: tuple[str, ...] = field(default=())


def read_geom(path: str | os.PathLike, *, clen_m: float | None = None) -> CrystFELGeometry:
    """Read a CrystFEL ``.geom`` file.

    Parameters
    ----------
    path : path-like
    clen_m : float, optional
        Camera length (m) to use instead of the file's ``clen`` (needed when the file
        reads ``clen`` from the data files).

    Raises
    ------
    InputFileOpenError
        The file cannot be read.
    InputFileError
        A line CrystFEL would refuse, a panel missing a position field, a bad region
        outside its panel, or panels overlapping in the slab (exit code 3).
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError as exc:
        raise InputFileOpenError(path, exc) from None
    return parse_geom(text, path=os.fspath(path), clen_m=clen_m)


def _float(value: str, where: str, path: str, line: int) -> float:
    try:
        out = float(value)
    except ValueError:
        raise InputFileError(path, f"{where}: {value!r} is not a number", line) from None
    if not math.isfinite(out):
        raise InputFileError(path, f"{where}: {value!r} is not finite", line)
    return out


def _direction(value: str, where: str, path: str, line: int) -> tuple[float, float, float]:
    """CrystFEL's ``dir_conv``: '-0.001x +0.9999y' -> (x, y, z) coefficients."""
    text = value.replace(" ", "").replace("\t", "")
    out = {"x": 0.0, "y": 0.0, "z": 0.0}
    pos = 0
    for m in _TERM.finditer(text):
        if m.start() != pos or (m.start() > 0 and not m.group(1)):
            break
        sign = -1.0 if m.group(1) == "-" else 1.0
        coef = m.group(2)
        if coef in ("", "."):
            if coef == ".":
                break
            num = 1.0
        else:
            num = float(coef)
        out[m.group(3)] += sign * num
        pos = m.end()
    if pos != len(text) or not text:
        raise InputFileError(path, f"{where}: {value!r} is not a direction like "
                                   "'-0.001x +1.0y'", line)
    return (out["x"], out["y"], out["z"])


def _length_m(value: str, where: str, path: str, line: int,
              notes: list[str]) -> float | None:
    """CrystFEL's ``im_get_length`` for a literal: 'nnn', 'nnn m', 'nnn mm'; None for a
    location in the data files (noted)."""
    parts = value.split()
    scale = 1.0
    if len(parts) == 2 and parts[1] in ("m", "mm"):
        scale = 1e-3 if parts[1] == "mm" else 1.0
    elif len(parts) != 1:
        raise InputFileError(path, f"{where}: {value!r}: a length is 'nnn', 'nnn m' or "
                                   "'nnn mm'", line)
    try:
        number = float(parts[0])
    except ValueError:
        notes.append(f"{where} = {value} is read from the data files; not used")
        return None
    if not math.isfinite(number):
        raise InputFileError(path, f"{where}: {value!r} is not finite", line)
    return number * scale


def _energy_eV(key: str, value: str, path: str, line: int, notes: list[str]) -> float | None:
    parts = value.split()
    if key == "photon_energy":
        units = {"eV": 1.0, "keV": 1e3}
        unit = parts[1] if len(parts) == 2 else "eV"
    elif key == "wavelength":
        units = {"m": 1.0, "A": 1.0}
        unit = parts[1] if len(parts) == 2 else ""
    else:  # electron_voltage
        notes.append(f"{key} = {value}: electron diffraction is not simulated; ignored")
        return None
    if len(parts) not in (1, 2) or unit not in units:
        raise InputFileError(path, f"{key}: {value!r}: the units must be one of "
                                   f"{', '.join(units)}", line)
    try:
        number = float(parts[0])
    except ValueError:
        notes.append(f"{key} = {value} is read from the data files; not used")
        return None
    if not (math.isfinite(number) and number > 0):
        raise InputFileError(path, f"{key}: {value!r} must be a positive number", line)
    if key == "photon_energy":
        return number * units[unit]
    angstrom = number * 1e10 if unit == "m" else number
    return HC_EV_A / angstrom


_REQUIRED = ("min_fs", "max_fs", "min_ss", "max_ss", "corner_x", "corner_y", "fs", "ss", "res")


def _new_panel(defaults: dict) -> dict:
    p = dict(defaults)
    p["dims"] = dict(defaults["dims"])
    return p


def _panel_field(panel: dict, key: str, value: str, where: str, path: str, line: int,
                 notes: list[str]) -> None:
    """Set one panel field (CrystFEL's ``parse_field_for_panel``)."""
    if key in ("min_fs", "max_fs", "min_ss", "max_ss"):
        panel[key] = int(_float(value, where, path, line))  # C: atof, then int
        panel["line"] = line
    elif key in ("corner_x", "corner_y", "coffset", "res", "adu_per_eV", "adu_per_photon"):
        panel[key] = _float(value, where, path, line)
        if key in ("adu_per_eV", "adu_per_photon"):
            panel["adu_key"] = key
    elif key in ("fs", "ss"):
        panel[key] = _direction(value, where, path, line)
    elif key == "clen":  # an old per-panel clen (CrystFEL < 0.10)
        panel["clen"] = _length_m(value, where, path, line, notes)
    elif key == "data":
        panel["data"] = value
    elif key == "no_index":
        panel["no_index"] = bool(value.lower() == "true" or
                                 (value.lower() != "false" and _int0(value)))
    elif key == "mask_edge_pixels":
        panel["mask_edge_pixels"] = int(_float(value, where, path, line))
    elif _DIM_FIELD.match(key):
        n = int(_DIM_FIELD.match(key).group(1))
        if value not in ("%", "ss", "fs"):
            try:
                int(value)
            except ValueError:
                raise InputFileError(path, f"{where}: {value!r}: a dimension is %, ss, fs "
                                           "or an index", line) from None
        panel["dims"][n] = value
    elif key in _IGNORED_PANEL_FIELDS or _MASK_FIELD.match(key):
        if key.startswith("mask") and key != "mask_edge_pixels":
            panel.setdefault("ignored", set()).add("bad-pixel masks read from data files")
        else:
            panel.setdefault("ignored", set()).add(key)
    else:
        notes.append(f"{where}: unknown field, ignored")


def _int0(value: str) -> int:
    m = re.match(r"\s*[+-]?\d+", value)
    return int(m.group(0)) if m else 0


def parse_geom(text: str, *, path: str = "<geom>",
               clen_m: float | None = None) -> CrystFELGeometry:
    """Parse the text of a ``.geom`` file; see :func:`read_geom`."""
    notes: list[str] = []
    defaults: dict = {"coffset": 0.0, "data": "/data/data", "dims": {0: "ss", 1: "fs"},
                      "no_index": False, "mask_edge_pixels": 0}
    panels: dict[str, dict] = {}
    bad: dict[str, dict] = {}
    top: dict[str, tuple[str, int]] = {}
    groups = False
    defaults_unused = False
    for lineno, raw in enumerate(text.replace("\r", "\n").split("\n"), start=1):
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if "=" not in line:
            raise InputFileError(path, f"bad line {line[:40]!r}: expected 'key = value'",
                                 lineno)
        key, value = (s.strip() for s in line.split("=", 1))
        if "/" not in key:
            if key in ("clen", "photon_energy", "wavelength", "electron_voltage",
                       "detector_shift_x", "detector_shift_y", "bandwidth"):
                top[key] = (value, lineno)
            elif key.startswith(("rigid_group", "group_")):
                groups = True
            elif key in ("peak_list", "peak_list_type"):
                notes.append(f"{key} is not used")
            else:
                _panel_field(defaults, key, value, key, path, lineno, notes)
                defaults_unused = True
            continue
        name, field_ = key.split("/", 1)
        if name.startswith("bad"):
            region = bad.setdefault(name, {"line": lineno})
            if field_ in ("min_x", "max_x", "min_y", "max_y"):
                region.setdefault("kind", "xy")
                region[field_] = _float(value, key, path, lineno)
                if region["kind"] != "xy":
                    raise InputFileError(path, f"bad region {name}: x/y and fs/ss "
                                               "limits mixed", lineno)
            elif field_ in ("min_fs", "max_fs", "min_ss", "max_ss"):
                region.setdefault("kind", "fsss")
                region[field_] = int(_float(value, key, path, lineno))
                if region["kind"] != "fsss":
                    raise InputFileError(path, f"bad region {name}: x/y and fs/ss "
                                               "limits mixed", lineno)
            elif field_ == "panel":
                region["panel"] = value
            else:
                notes.append(f"{key}: unknown field, ignored")
            continue
        if name not in panels:
            panels[name] = _new_panel(defaults)
            panels[name]["first_line"] = lineno
            defaults_unused = False
        _panel_field(panels[name], field_, value, key, path, lineno, notes)
    if not panels:
        raise InputFileError(path, "no panel descriptions in the geometry file")
    if defaults_unused:
        notes.append("statements at the end of the file apply to no panel (CrystFEL "
                     "refuses such a file)")
    if groups:
        notes.append("panel groups (group_*, rigid_group*) only matter for refinement; "
                     "ignored")

    # --- global values
    def length(key: str) -> float | None:
        if key not in top:
            return None
        value, line = top[key]
        return _length_m(value, key, path, line, notes)

    shift = (length("detector_shift_x") or 0.0, length("detector_shift_y") or 0.0)
    energy = None
    for key in ("photon_energy", "wavelength", "electron_voltage"):
        if key in top:
            energy = _energy_eV(key, top[key][0], path, top[key][1], notes)
    bandwidth = None
    if "bandwidth" in top:
        bandwidth = _float(top["bandwidth"][0], "bandwidth", path, top["bandwidth"][1])
    clen_file = length("clen")
    # an old file may give clen per panel (CrystFEL < 0.10); the caller's clen wins
    z0 = {}
    for name, p in panels.items():
        own = p.get("clen")
        z0[name] = clen_m if clen_m is not None else (own if own is not None else clen_file)
        if z0[name] is None:
            raise InputFileError(path, "no camera length: clen is missing or read from the "
                                       "data files; give one (-distance, or clen_m=)")
    for name, p in panels.items():
        missing = [k for k in _REQUIRED if k not in p]
        if missing:
            raise InputFileError(path, f"panel {name}: {', '.join(missing)} not given",
                                 p["first_line"])
        if p["res"] <= 0:
            raise InputFileError(path, f"panel {name}: res must be positive", p["first_line"])
        if p["max_fs"] < p["min_fs"] or p["max_ss"] < p["min_ss"] or p["min_fs"] < 0 \
                or p["min_ss"] < 0:
            raise InputFileError(path, f"panel {name}: empty or negative fs/ss range",
                                 p["first_line"])
        for ignored in sorted(p.get("ignored", ())):
            note = f"{ignored}: ignored (no effect on a simulation)"
            if note not in notes:
                notes.append(note)
    index = _module_indices(panels, path)
    module_rows = max(p["max_ss"] for p in panels.values()) + 1

    built = [_panel(name, p, z0[name], shift, index[name] * module_rows, path)
             for name, p in panels.items()]
    try:
        detector = Detector(tuple(built))
    except ValueError as exc:
        raise InputFileError(path, f"the panels cannot form one data array: {exc}") from None

    mask = _mask(detector, panels, bad, index, module_rows, shift, path)
    wavelength = None if energy is None else HC_EV_A / energy * 1e-10
    return CrystFELGeometry(
        detector=detector, mask=mask, clen_m=float(next(iter(z0.values()))),
        photon_energy_eV=energy,
        wavelength_m=wavelength, adu_per_photon=_adu_per_photon(panels, energy),
        bandwidth=bandwidth, data_path=next(iter(panels.values()))["data"],
        notes=tuple(notes))


def _module_indices(panels: dict, path: str) -> dict[str, int]:
    """Each panel's fixed index (0 when the data block is 2-D)."""
    out = {}
    for name, p in panels.items():
        dims = p["dims"]
        fixed = [int(v) for k, v in sorted(dims.items()) if v not in ("%", "ss", "fs")]
        order = [v for k, v in sorted(dims.items()) if v in ("ss", "fs")]
        if order != ["ss", "fs"]:
            raise InputFileError(path, f"panel {name}: dimensions {order}: need one ss "
                                       "before one fs", p["first_line"])
        if len(fixed) > 1:
            raise InputFileError(path, f"panel {name}: more than one fixed index dimension; "
                                       "only 2-D slabs and one module index are supported",
                                 p["first_line"])
        if fixed and fixed[0] < 0:
            raise InputFileError(path, f"panel {name}: negative index dimension",
                                 p["first_line"])
        out[name] = fixed[0] if fixed else 0
    return out


def _panel(name: str, p: dict, clen: float, shift: tuple[float, float], row0: int,
           path: str) -> Panel:
    res = p["res"]
    fs = np.asarray(p["fs"], dtype=np.float64)
    ss = np.asarray(p["ss"], dtype=np.float64)
    nfs, nss = float(np.linalg.norm(fs)), float(np.linalg.norm(ss))
    if nfs == 0 or nss == 0:
        raise InputFileError(path, f"panel {name}: zero fs or ss vector", p["first_line"])
    npix = max(p["max_fs"] - p["min_fs"] + 1, p["max_ss"] - p["min_ss"] + 1)
    # nanoBragg renders square pixels on perpendicular axes: refuse a panel whose pixel
    # centres would move by more than 1/1000 of a pixel across the panel
    if abs(nfs - nss) / max(nfs, nss) * npix > 1e-3 or \
            abs(float(np.dot(fs, ss))) / (nfs * nss) * npix > 1e-3:
        raise InputFileError(path, f"panel {name}: fs and ss must be perpendicular and "
                                   "of equal length (nanoBragg's pixels are square)",
                             p["first_line"])
    pixel_m = 0.5 * (nfs + nss) / res
    corner = np.array([p["corner_x"] / res + shift[0], p["corner_y"] / res + shift[1],
                       clen + p["coffset"]])
    fdet = to_lab(fs / nfs, "crystfel")
    sdet = to_lab(ss / nss, "crystfel")
    pix0 = to_lab(corner, "crystfel")
    nfast = p["max_fs"] - p["min_fs"] + 1
    nslow = p["max_ss"] - p["min_ss"] + 1
    centre = pix0 + 0.5 * pixel_m * (nfast * fdet + nslow * sdet)
    odet = np.cross(fdet, sdet)
    if float(np.dot(odet, centre)) < 0:  # C's odet points away from the sample
        odet = -odet
    return Panel(name=name, fdet=fdet, sdet=sdet, odet=odet, pix0_m=pix0, pixel_m=pixel_m,
                 fpixels=nfast, spixels=nslow,
                 slab_origin=(row0 + p["min_ss"], p["min_fs"]))


def _mask(detector: Detector, panels: dict, bad: dict, index: dict, module_rows: int,
          shift: tuple[float, float], path: str) -> np.ndarray:
    mask = np.ones(detector.slab_shape, dtype=bool)
    views = dict(zip(panels, detector.split(mask), strict=True))
    for v in views.values():
        v[...] = False
    for name, p in panels.items():
        v = views[name]
        if p["no_index"]:
            v[...] = True
        n = p["mask_edge_pixels"]
        if n > 0:
            v[:n, :] = True
            v[-n:, :] = True
            v[:, :n] = True
            v[:, -n:] = True
    for bname, region in bad.items():
        kind = region.get("kind")
        if kind is None:
            raise InputFileError(path, f"bad region {bname}: no coordinate range",
                                 region["line"])
        if kind == "fsss":
            lim = [region.get(k) for k in ("min_fs", "max_fs", "min_ss", "max_ss")]
            if None in lim:
                raise InputFileError(path, f"bad region {bname}: needs min/max fs and ss",
                                     region["line"])
            pname = region.get("panel")
            if pname is None:  # CrystFEL's try_guess_panel: the panel holding the region
                hits = [n for n, p in panels.items()
                        if p["min_fs"] <= lim[0] <= p["max_fs"]
                        and p["min_ss"] <= lim[2] <= p["max_ss"]]
                if not hits:
                    raise InputFileError(path, f"bad region {bname}: no panel given",
                                         region["line"])
                pname = hits[0]
            if pname not in panels:
                raise InputFileError(path, f"bad region {bname}: no panel {pname!r}",
                                     region["line"])
            p = panels[pname]
            if lim[0] < p["min_fs"] or lim[1] > p["max_fs"] or lim[2] < p["min_ss"] \
                    or lim[3] > p["max_ss"]:
                raise InputFileError(path, f"bad region {bname} is outside panel {pname}",
                                     region["line"])
            views[pname][lim[2] - p["min_ss"]:lim[3] - p["min_ss"] + 1,
                         lim[0] - p["min_fs"]:lim[1] - p["min_fs"] + 1] = True
        else:
            lim = [region.get(k, math.nan) for k in ("min_x", "max_x", "min_y", "max_y")]
            for name, p in panels.items():
                ss, fs = np.mgrid[0:p["max_ss"] - p["min_ss"] + 1, 0:p["max_fs"] - p["min_fs"] + 1]
                # CrystFEL's draw_bad_region_xy: the pixel's first corner, in pixels,
                # with the overall shift (create_detgeom adds it to cnx/cny)
                x = fs * p["fs"][0] + ss * p["ss"][0] + p["corner_x"] + shift[0] * p["res"]
                y = fs * p["fs"][1] + ss * p["ss"][1] + p["corner_y"] + shift[1] * p["res"]
                views[name][(x > lim[0]) & (x < lim[1]) & (y > lim[2]) & (y < lim[3])] = True
    return mask


def _adu_per_photon(panels: dict, energy_eV: float | None) -> float | None:
    values = set()
    for p in panels.values():
        key = p.get("adu_key")
        if key is None:
            return None
        if key == "adu_per_photon":
            values.add(p["adu_per_photon"])
        elif energy_eV is not None:
            values.add(p["adu_per_eV"] * energy_eV)
        else:
            return None
    return values.pop() if len(values) == 1 else None
