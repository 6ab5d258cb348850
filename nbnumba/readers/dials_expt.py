"""DIALS/dxtbx experiment lists (``.expt``, ``.json``) as nanoBragg-frame models.

Reads the JSON that dxtbx writes (``ExperimentList.as_file``; dxtbx's ``to_dict`` of each
model) without importing dxtbx:

- **detector**: every panel's *local* frame (``fast_axis``, ``slow_axis``, ``origin``, mm)
  composed with its groups' as dxtbx's ``VirtualPanelFrame.update_global_frame`` does:
  ``global = P · local (+ parent origin)``, with ``P = [fast, slow, fast × slow]`` of the
  parent's (already global) frame, axes normalised. Panels keep the file's order and are
  stacked along slow in the output array (``slab_origin = (rows before it, 0)``).
- **beam**: ``direction`` is dxtbx's sample-to-source direction; the beam travels along
  its opposite. ``wavelength`` (Å), ``divergence``/``sigma_divergence`` (deg),
  ``polarization_normal``/``polarization_fraction``, ``flux``.
- **crystal**: ``real_space_a/b/c`` (Å) in dxtbx's lab frame at the goniometer's datum.
- **goniometer**: ``rotation_axis`` with ``fixed_rotation`` F and ``setting_rotation`` S
  (or a multi-axis ``axes``/``angles``/``scan_axis``, reduced to F and S as dxtbx's
  ``MultiAxisGoniometer`` does). dxtbx's crystal at rotation angle φ is
  ``S · R(axis, φ) · F · A`` = ``R(S·axis, φ) · (S·F·A)``: nanoBragg's spindle is
  ``S·axis`` and its crystal at φ = 0 is ``S·F·A`` (both mapped to the lab frame).
- **scan**: ``image_range``, ``oscillation`` ([start, width], deg), ``exposure_time``
  (also inside ``properties`` as newer dxtbx writes it).

Every vector goes into nanoBragg's lab frame through
:data:`nbnumba.models.frames.DXTBX_TO_LAB` (``specs/models.md``).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputFileError, InputFileOpenError
from ..models.detector import Detector, Panel
from ..models.frames import to_lab

__all__ = ["DialsExperiment", "read_expt", "parse_expt", "axis_angle_matrix"]


@dataclass(frozen=True)
class DialsExperiment:
    """One experiment of a DIALS experiment list, in nanoBragg's lab frame (SI units).

    Attributes
    ----------
    detector : Detector or None
        Panels in file order, stacked along slow in the output array.
    wavelength_m : float or None
    beam_direction : (3,) float or None
        Unit direction of travel of the beam (nanoBragg's ``beam_vector``).
    polarization_normal : (3,) float or None
        dxtbx's normal to the polarization plane, mapped to the lab frame.
    polarization_fraction : float or None
    divergence_rad, sigma_divergence_rad : float
    flux : float
    real_space_m : (3, 3) float or None
        Rows a, b, c (m) of the crystal at φ = 0 as nanoBragg sees it (``S·F·A``, see the
        module notes).
    space_group_hall : str or None
    mosaicity_deg : float or None
        dxtbx's Kabsch (2010) mosaicity or Sauter (2014) half mosaicity, where given.
    domain_size_m : float or None
        Sauter (2014) ``ML_domain_size_ang`` in metres, where given.
    spindle : (3,) float or None
        Unit rotation axis (``S · rotation_axis``), lab frame.
    phi_start_deg, osc_deg : float or None
        The scan's first image start angle and width (deg).
    image_range : (int, int) or None
    exposure_time_s : float or None
        The first image's exposure time.
    notes : tuple of str
        What was read and not used.
    """

    detector: Detector | None = None
    wavelength_m: float | None = None
    beam_direction: tuple[float, float, float] | None = None
    polarization_normal: tuple[float, float, float] | None = None
    polarization_fraction: float | None = None
    divergence_rad: float = 0.0
    sigma_divergence_rad: float = 0.0
    flux: float = 0.0
    real_space_m: np.ndarray | None = None
    space_group_hall: str | None = None
    mosaicity_deg: float | None = None
    domain_size_m: float | None = None
    spindle: tuple[float, float, float] | None = None
    phi_start_deg: float | None = None
    osc_deg: float | None = None
    image_range: tuple[int, int] | None = None
    exposure_time_s: float | None = None
    notes: tuple[str, ...] = field(default=())


def read_expt(path: str | os.PathLike, *, index: int = 0) -> DialsExperiment:
    """Read experiment ``index`` of a DIALS experiment list.

    Raises
    ------
    InputFileOpenError
        The file cannot be read.
    InputFileError
        Not JSON, not an experiment list, no such experiment, or a model missing a
        field this reader needs (exit code 3).
    """
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise InputFileOpenError(path, exc) from None
    except UnicodeDecodeError:
        raise InputFileError(path, "not a JSON text file") from None
    return parse_expt(text, path=os.fspath(path), index=index)


def axis_angle_matrix(axis, angle_deg: float) -> np.ndarray:
    """The right-handed rotation (3, 3) by ``angle_deg`` about ``axis`` (Rodrigues;
    scitbx's ``axis_and_angle_as_matrix``)."""
    u = np.asarray(axis, dtype=np.float64)
    u = u / np.linalg.norm(u)
    a = math.radians(angle_deg)
    K = np.array([[0.0, -u[2], u[1]], [u[2], 0.0, -u[0]], [-u[1], u[0], 0.0]])
    return np.eye(3) + math.sin(a) * K + (1.0 - math.cos(a)) * (K @ K)


def _vec(d: dict, key: str, path: str, what: str) -> np.ndarray:
    try:
        v = np.asarray(d[key], dtype=np.float64).reshape(3)
    except KeyError:
        raise InputFileError(path, f"{what}: no {key}") from None
    except (TypeError, ValueError):
        raise InputFileError(path, f"{what}: {key} is not a 3-vector") from None
    if not np.all(np.isfinite(v)):
        raise InputFileError(path, f"{what}: {key} is not finite")
    return v


def _mat(d: dict, key: str, path: str, what: str) -> np.ndarray:
    if key not in d:
        return np.eye(3)
    try:
        m = np.asarray(d[key], dtype=np.float64).reshape(3, 3)
    except (TypeError, ValueError):
        raise InputFileError(path, f"{what}: {key} is not a 3x3 matrix") from None
    return m


def _unit(v: np.ndarray, path: str, what: str) -> np.ndarray:
    n = float(np.linalg.norm(v))
    if n == 0.0:
        raise InputFileError(path, f"{what} is a zero vector")
    return v / n


def parse_expt(text: str, *, path: str = "<expt>", index: int = 0) -> DialsExperiment:
    """Parse the JSON text of an experiment list; see :func:`read_expt`."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise InputFileError(path, f"not JSON ({exc.args[0][:60]})") from None
    if not isinstance(doc, dict):
        raise InputFileError(path, "not a DIALS experiment list (a JSON object)")
    notes: list[str] = []
    if "experiment" not in doc:
        if "panels" in doc:  # a bare detector model
            return DialsExperiment(detector=_detector(doc, path), notes=())
        raise InputFileError(path, "not a DIALS experiment list (no 'experiment')")
    experiments = doc["experiment"]
    if not isinstance(experiments, list) or not experiments:
        raise InputFileError(path, "the experiment list is empty")
    if not 0 <= index < len(experiments):
        raise InputFileError(path, f"no experiment {index} (the file has {len(experiments)})")
    if len(experiments) > 1:
        notes.append(f"experiment {index} of {len(experiments)} used")
    exp = experiments[index]

    def model(kind: str) -> dict | None:
        i = exp.get(kind)
        if i is None:
            return None
        try:
            m = doc[kind][i]
        except (KeyError, IndexError, TypeError):
            raise InputFileError(path, f"experiment {index}: no {kind} {i!r}") from None
        if not isinstance(m, dict):
            raise InputFileError(path, f"{kind} {i}: not a JSON object")
        return m

    out: dict = {}
    det = model("detector")
    if det is not None:
        out["detector"] = _detector(det, path)
    beam = model("beam")
    if beam is not None:
        out.update(_beam(beam, path, notes))
    gonio = model("goniometer")
    F = S = np.eye(3)
    if gonio is not None:
        axis, F, S = _goniometer(gonio, path)
        out["spindle"] = tuple(to_lab(_unit(S @ axis, path, "the rotation axis"), "dxtbx"))
    crystal = model("crystal")
    if crystal is not None:
        abc = np.stack([_vec(crystal, k, path, "crystal")
                        for k in ("real_space_a", "real_space_b", "real_space_c")])
        out["real_space_m"] = to_lab((S @ F @ abc.T).T, "dxtbx") * 1e-10
        out["space_group_hall"] = crystal.get("space_group_hall_symbol")
        for key in ("ML_half_mosaicity_deg", "mosaicity"):
            if crystal.get(key) is not None:
                out["mosaicity_deg"] = float(crystal[key])
        if crystal.get("ML_domain_size_ang") is not None:
            out["domain_size_m"] = float(crystal["ML_domain_size_ang"]) * 1e-10
    scan = model("scan")
    if scan is not None:
        out.update(_scan(scan, path))
    return DialsExperiment(**out, notes=tuple(notes))


def _beam(b: dict, path: str, notes: list[str]) -> dict:
    direction = _unit(_vec(b, "direction", path, "beam"), path, "the beam direction")
    try:
        wavelength = float(b["wavelength"])
    except (KeyError, TypeError, ValueError):
        raise InputFileError(path, "beam: no wavelength") from None
    if not (math.isfinite(wavelength) and wavelength > 0):
        raise InputFileError(path, f"beam: wavelength {wavelength} is not positive")
    out = {
        "wavelength_m": wavelength * 1e-10,
        "beam_direction": tuple(to_lab(-direction, "dxtbx")),
        "divergence_rad": math.radians(float(b.get("divergence", 0.0) or 0.0)),
        "sigma_divergence_rad": math.radians(float(b.get("sigma_divergence", 0.0) or 0.0)),
        "flux": float(b.get("flux", 0.0) or 0.0),
    }
    if "polarization_normal" in b:
        pn = _vec(b, "polarization_normal", path, "beam")
        if np.linalg.norm(pn) > 0:
            out["polarization_normal"] = tuple(to_lab(pn / np.linalg.norm(pn), "dxtbx"))
    if b.get("polarization_fraction") is not None:
        out["polarization_fraction"] = float(b["polarization_fraction"])
    if out["divergence_rad"] > 0 or out["sigma_divergence_rad"] > 0:
        notes.append("the beam's divergence is not used (nanoBragg's divergence grid: "
                     "-divergence, -divsteps)")
    if out["flux"] > 0:
        notes.append("the beam's flux is not used (-flux, -fluence)")
    if b.get("s0_at_scan_points"):
        notes.append("the beam's per-image s0 (s0_at_scan_points) is not used")
    return out


def _goniometer(g: dict, path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(axis, F, S) in dxtbx's frame."""
    if "axes" in g:  # MultiAxisGoniometer: F and S from the axes around the scan axis
        try:
            axes = [np.asarray(a, dtype=np.float64).reshape(3) for a in g["axes"]]
            angles = [float(a) for a in g["angles"]]
            k = int(g.get("scan_axis", 0))
        except (TypeError, ValueError):
            raise InputFileError(path, "goniometer: malformed axes/angles") from None
        if len(axes) != len(angles) or not 0 <= k < len(axes):
            raise InputFileError(path, "goniometer: axes, angles and scan_axis disagree")
        F = np.eye(3)
        for a, t in zip(axes[:k], angles[:k], strict=True):
            F = axis_angle_matrix(a, t) @ F
        S = np.eye(3)
        for a, t in zip(axes[k + 1:], angles[k + 1:], strict=True):
            S = axis_angle_matrix(a, t) @ S
        return axes[k], F, S
    axis = _vec(g, "rotation_axis", path, "goniometer")
    return axis, _mat(g, "fixed_rotation", path, "goniometer"), _mat(
        g, "setting_rotation", path, "goniometer")


def _scan(s: dict, path: str) -> dict:
    props = s.get("properties", {}) if isinstance(s.get("properties"), dict) else {}
    osc = s.get("oscillation", props.get("oscillation"))
    out: dict = {}
    try:
        if osc is not None:
            if isinstance(osc[0], (list, tuple)):  # per-image [start, width] lists
                osc = osc[0]
            out["phi_start_deg"], out["osc_deg"] = float(osc[0]), float(osc[1])
        if "image_range" in s:
            out["image_range"] = (int(s["image_range"][0]), int(s["image_range"][1]))
        exposure = s.get("exposure_time", props.get("exposure_time"))
        if exposure:
            out["exposure_time_s"] = float(exposure[0] if isinstance(exposure, list)
                                           else exposure)
    except (TypeError, ValueError, IndexError):
        raise InputFileError(path, "scan: malformed oscillation/image_range") from None
    return out


def _detector(d: dict, path: str) -> Detector:
    panels = d.get("panels")
    if not isinstance(panels, list) or not panels:
        raise InputFileError(path, "detector: no panels")
    frames: list[tuple[np.ndarray, np.ndarray, np.ndarray] | None] = [None] * len(panels)

    def local(node: dict, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        f = _unit(_vec(node, "fast_axis", path, what), path, f"{what}'s fast axis")
        s = _unit(_vec(node, "slow_axis", path, what), path, f"{what}'s slow axis")
        return f, s, _vec(node, "origin", path, what)

    def compose(parent, child):
        # dxtbx's set_parent_frame normalises the parent's axes; the normal is their
        # cross product (not normalised again)
        pf, ps, po = parent
        pf, ps = pf / np.linalg.norm(pf), ps / np.linalg.norm(ps)
        P = np.column_stack([pf, ps, np.cross(pf, ps)])
        f, s, o = child
        return P @ f, P @ s, P @ o + po

    def walk(node: dict, parent, depth: int) -> None:
        if depth > 64:
            raise InputFileError(path, "detector: hierarchy too deep (a cycle?)")
        if "panel" in node:
            i = node["panel"]
            if not isinstance(i, int) or not 0 <= i < len(panels) or frames[i] is not None:
                raise InputFileError(path, f"detector: hierarchy names panel {i!r} "
                                           "twice or out of range")
            frames[i] = compose(parent, local(panels[i], f"panel {i}"))
            return
        here = compose(parent, local(node, f"group {node.get('name', '')!r}"))
        for child in node.get("children", []):
            walk(child, here, depth + 1)

    identity = (np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), np.zeros(3))
    if "hierarchy" in d:
        walk(d["hierarchy"], identity, 0)
        if any(f is None for f in frames):
            raise InputFileError(path, "detector: a panel is missing from the hierarchy")
    else:
        frames = [local(p, f"panel {i}") for i, p in enumerate(panels)]

    out = []
    row = 0
    names = set()
    for i, (p, (f, s, o)) in enumerate(zip(panels, frames, strict=True)):
        try:
            nfast, nslow = (int(v) for v in p["image_size"])
            px_f, px_s = (float(v) for v in p["pixel_size"])
        except (KeyError, TypeError, ValueError):
            raise InputFileError(path, f"panel {i}: no image_size/pixel_size") from None
        if nfast < 1 or nslow < 1 or not (px_f > 0 and px_s > 0):
            raise InputFileError(path, f"panel {i}: empty, or pixels of size <= 0")
        if abs(px_f - px_s) / max(px_f, px_s) * max(nfast, nslow) > 1e-3 or \
                abs(float(np.dot(f, s))) * max(nfast, nslow) > 1e-3:
            raise InputFileError(path, f"panel {i}: pixels must be square on perpendicular "
                                       "axes (nanoBragg's pixels are)")
        fdet, sdet = to_lab(f, "dxtbx"), to_lab(s, "dxtbx")
        pix0 = to_lab(o, "dxtbx") * 1e-3
        pixel_m = 0.5 * (px_f + px_s) * 1e-3
        centre = pix0 + 0.5 * pixel_m * (nfast * fdet + nslow * sdet)
        odet = np.cross(fdet, sdet)
        if float(np.dot(odet, centre)) < 0:  # C's odet points away from the sample
            odet = -odet
        name = str(p.get("name") or f"panel{i}")
        if name in names:
            name = f"{name}_{i}"
        names.add(name)
        out.append(Panel(name=name, fdet=fdet, sdet=sdet, odet=odet, pix0_m=pix0,
                         pixel_m=pixel_m, fpixels=nfast, spixels=nslow,
                         thickness_m=float(p.get("thickness", 0.0) or 0.0) * 1e-3,
                         material=str(p.get("material") or "Si"), slab_origin=(row, 0)))
        row += nslow
    return Detector(tuple(out))
