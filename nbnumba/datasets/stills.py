"""Serial-crystallography stills: one crystal orientation, spectrum and jitter per shot.

Shot ``k`` of a dataset is one nanoBragg.c run: the dataset's ARGS followed by the
shot's own flags::

    ARGS -mat SHOT.mat [-sourcefile SHOT.src] [-Na .. -Nb .. -Nc ..] [-mosaic ..]
         [-fluence ..|-flux ..] -seed S_k -mosaic_seed M_k

where ``SHOT.mat`` holds the shot's A matrix (MOSFLM style: reciprocal vectors as
columns, times λ in Å, as C's ``-mat`` reads it) and ``SHOT.src`` its spectrum (C's
``-sourcefile`` columns X Y Z weight λ). The shot is computed through exactly that
command line (the two files' text is given to the parser as read, see
:func:`nbnumba.inputs.run_inputs`), so :func:`explain` prints a command line that
nanoBragg.c runs to the same image. Every random choice of shot ``k`` comes from
``numpy.random.SeedSequence(seed, spawn_key=(k, aspect))``: a shot is the same
whichever process computes it, in whatever order.

Only the per-shot arrays change between shots (the ``cells`` and ``sources`` of the
scene and a few scalars); the structure-factor table is read once per process
(:func:`structure_factors_for`) and the compiled kernels are reused.
``specs/stills.md`` gives the distributions and file formats.
"""

from __future__ import annotations

import math
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputFileError, InputFileOpenError, UsageError, shown

__all__ = ["HC_EV_ANGSTROM", "Jitter", "Spectrum", "StillsPlan", "Shot", "ShotTruth",
           "plan_stills", "make_shot", "shot_argv", "explain", "render_shot", "shot_simulation",
           "structure_factors_for", "random_rotation", "parse_jitter", "parse_spectrum",
           "read_orientations", "read_spectra"]

# C's h·c (eV·Å), as nanoBragg.c's -energy converts
HC_EV_ANGSTROM = 12398.42
# the independent random streams of one shot (SeedSequence spawn_key=(shot, aspect))
_ORIENTATION, _SPECTRUM, _JITTER, _C_SEEDS = 0, 1, 2, 3
# C's seeds are ints; drawn in [1, 2**31 - 1)
_C_SEED_MAX = 2**31 - 1
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


@dataclass(frozen=True)
class Jitter:
    """Per-shot spreads (log-normal, relative): ``N`` per crystal axis, ``mosaic`` spread,
    ``flux``.

    Shot values: ``N_axis = max(1, round(N0·exp(N·z)))`` (one z per axis),
    ``mosaic = mosaic0·exp(mosaic·z)``, ``fluence = fluence0·exp(flux·z − flux²/2)``
    (mean kept), z standard normal. 0 leaves the flags' value.
    """

    N: float = 0.0
    mosaic: float = 0.0
    flux: float = 0.0


def parse_jitter(text: str | None) -> Jitter:
    """``"N=0.1,mosaic=0.2,flux=0.3"`` (any subset) → :class:`Jitter`; usage error if bad."""
    if not text:
        return Jitter()
    values: dict[str, float] = {}
    for part in text.split(","):
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or key not in ("N", "mosaic", "flux"):
            raise UsageError(f"--jitter {text!r}: give KEY=SIGMA pairs with KEY one of N, "
                             "mosaic, flux (e.g. N=0.1,mosaic=0.2,flux=0.3)")
        try:
            v = float(value)
        except ValueError:
            raise UsageError(f"--jitter {key}={value!r}: not a number") from None
        if not math.isfinite(v) or v < 0:
            raise UsageError(f"--jitter {key}={value}: a spread must be a finite number >= 0")
        values[key] = v
    return Jitter(**values)


@dataclass(frozen=True)
class Spectrum:
    """Which spectrum each shot gets: ``mono`` (the flags' λ, dispersion and divergence),
    ``sase`` (``spikes`` lines, energies normal about the flags' energy with FWHM
    ``fwhm_eV``, new per shot) or ``file`` (shot k's rows of ``path``)."""

    kind: str = "mono"
    spikes: int = 0
    fwhm_eV: float = 0.0
    path: str | None = None

    def record(self) -> str:
        if self.kind == "sase":
            return f"sase:{self.spikes}:{self.fwhm_eV!r}"
        return self.path if self.kind == "file" else "mono"


def parse_spectrum(text: str | None) -> Spectrum:
    """``mono``, ``sase:SPIKES:FWHM_EV`` or a file name → :class:`Spectrum`."""
    if not text or text == "mono":
        return Spectrum()
    if text.startswith("sase:") or text == "sase":
        parts = text.split(":")
        try:
            if len(parts) != 3:
                raise ValueError
            spikes, fwhm = int(parts[1]), float(parts[2])
        except ValueError:
            raise UsageError(f"--spectrum {text!r}: write sase:SPIKES:FWHM_EV "
                             "(e.g. sase:20:25)") from None
        if spikes < 1 or not (math.isfinite(fwhm) and fwhm >= 0):
            raise UsageError(f"--spectrum {text!r}: SPIKES must be >= 1 and FWHM_EV a "
                             "finite number >= 0")
        return Spectrum("sase", spikes, fwhm)
    _require_file("--spectrum", text, "mono, sase:SPIKES:FWHM_EV or a file")
    return Spectrum("file", path=os.path.abspath(text))


def _require_file(flag: str, text: str, choices: str) -> None:
    """A name that is none of ``choices``' words must be a readable regular file: else an
    :class:`InputFileError` (exit 3, a missing or unreadable input) naming ``flag``."""
    if os.path.isfile(text):
        return
    why = "is a folder, not a file" if os.path.isdir(text) else (
        "no such file" if not os.path.lexists(text) else "not a regular file")
    raise InputFileError(text, f"{flag}: {why} (give {choices})")


@dataclass(frozen=True)
class StillsPlan:
    """What every shot shares: ARGS, the seed and the per-shot rules, and the base values
    the rules vary (taken from ARGS' resolved setup)."""

    args: tuple[str, ...]
    seed: int  # the dataset's seed (ARGS' -seed as typed, else a clock seed)
    orientations: str  # "random" or an absolute file name
    spectrum: Spectrum
    jitter: Jitter
    base_A: tuple[float, ...]  # 9 floats, row-major 3×3: columns a*, b*, c* (1/Å, lab frame)
    lambda0_A: float  # the flags' wavelength (Å)
    beam: tuple[float, float, float]  # unit beam vector (lab frame)
    spindle: tuple[float, float, float]  # unit rotation axis (lab frame): dxtbx's frame
    N0: tuple[float, float, float]
    mosaic0_deg: float
    fluence0: float  # photons/m² (rules.fluence)
    flux_given: bool  # ARGS set the fluence by -flux/-exposure/-beamsize
    flux0: float
    c_parity: bool = False

    def record(self) -> dict[str, Any]:
        """The plan as the manifest records it (what makes two runs the same dataset)."""
        return {"args": list(self.args), "seed": self.seed, "orientations": self.orientations,
                "spectrum": self.spectrum.record(),
                "jitter": {"N": self.jitter.N, "mosaic": self.jitter.mosaic,
                           "flux": self.jitter.flux}}


def _given(args: Sequence[str], flag: str) -> bool:
    """Whether nanoBragg.c's strstr matching sees ``flag`` among ``args``' flags."""
    return any(a.startswith("-") and flag in a for a in args)


def plan_stills(args: Sequence[str], *, seed: int | None = None,
                orientations: str = "random", spectrum: str | Spectrum | None = "mono",
                jitter: str | Jitter | None = None) -> tuple[StillsPlan, list[str]]:
    """Check ARGS and the stills options; the plan and ARGS' warnings.

    Parameters
    ----------
    args : sequence of str
        nanoBragg.c's command line (a cell from -cell or -mat, the detector, the beam).
    seed : int, optional
        The dataset's seed; default ARGS' -seed as typed, else the clock's (as C
        takes it; the runner records it so that a resumed run keeps it).
    orientations : str
        ``"random"`` (uniform on SO(3)) or a file of matrices (:func:`read_orientations`).
    spectrum : str or Spectrum
        ``"mono"``, ``"sase:SPIKES:FWHM_EV"`` or a file (:func:`read_spectra`).
    jitter : str or Jitter, optional
        ``"N=0.1,mosaic=0.2,flux=0.3"`` (:class:`Jitter`).

    Raises
    ------
    nbnumba.errors.UsageError
        -misset in ARGS (the orientation is the dataset's), bad options (exit 2).
    nbnumba.errors.NbError
        What a single run of ARGS would raise (bad flags, unreadable inputs).
    """
    from ..api import Simulation
    from ..cargs import parse_args
    from ..setup import rules
    from ..validate import validate_inputs

    args = tuple(os.fspath(a) for a in args)
    opts, warnings = parse_args(list(args))
    warnings = warnings + validate_inputs(opts, warnings)
    if opts.misset_flag != 0:
        raise UsageError("stills: -misset cannot be used (each shot's orientation comes from "
                         "--orientations)")
    if seed is None:
        seed = -opts.seed  # ARGS' -seed as typed, else the clock's (C's rule)
    spec = spectrum if isinstance(spectrum, Spectrum) else parse_spectrum(spectrum)
    jit = jitter if isinstance(jitter, Jitter) else parse_jitter(jitter)
    if orientations != "random":
        _require_file("--orientations", orientations, "random, or a file of matrices")
        orientations = os.path.abspath(orientations)
        read_orientations(orientations)  # a malformed file now, not in a worker
    scene = Simulation.from_options(opts, check=False).scene
    cell = scene.resolved.cell
    A = np.array([cell.a_star_per_angstrom[1:], cell.b_star_per_angstrom[1:],
                  cell.c_star_per_angstrom[1:]], dtype=np.float64).T
    d = scene.resolved.detector
    plan = StillsPlan(
        args=args, seed=int(seed), orientations=orientations, spectrum=spec, jitter=jit,
        base_A=tuple(float(v) for v in A.reshape(-1)), lambda0_A=opts.lambda0 * 1e10,
        beam=tuple(float(v) for v in d.beam_vector[1:]),
        spindle=tuple(float(v) for v in scene.spindle_vector),
        N0=(float(scene.params.Na), float(scene.params.Nb), float(scene.params.Nc)),
        mosaic0_deg=math.degrees(scene.resolved.sampling.mosaic_spread),
        fluence0=rules.fluence(opts),
        flux_given=bool(opts.flux != 0.0 and opts.exposure > 0.0 and opts.beamsize >= 0),
        flux0=opts.flux, c_parity=bool(opts.c_parity))
    if spec.kind == "file":
        read_spectra(spec.path, 0)  # a usage error now, not in a worker
    if jit.mosaic and plan.mosaic0_deg <= 0:
        warnings.append("warning: --jitter mosaic: ARGS give no -mosaic spread, so there "
                        "is nothing to vary")
    return plan, warnings


# ------------------------------------------------------------------- random draws


def shot_generator(seed: int, shot: int, aspect: int) -> np.random.Generator:
    """The random stream of one aspect of one shot (independent of every other)."""
    ss = np.random.SeedSequence(int(seed) % 2**64, spawn_key=(int(shot), int(aspect)))
    return np.random.Generator(np.random.PCG64(ss))


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A rotation matrix uniform on SO(3) (Haar): a normalised 4-vector of normals as a
    unit quaternion (Shoemake / Muller). Determinant +1."""
    q = rng.standard_normal(4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


_ORIENTATION_CACHE: dict[tuple, np.ndarray] = {}


def read_orientations(path: str) -> np.ndarray:
    """Matrices from a file: ``.npy`` (n, 3, 3), text with 9 numbers per shot (row-major),
    or a DIALS experiment list (``.expt``, JSON: each experiment's crystal, in order).

    From ``.npy``/text, a matrix that is a rotation (``MᵀM = 1``, det +1, to 1e-6) is a U
    matrix applied to ARGS' cell; any other is an A matrix (columns a*, b*, c* in 1/Å,
    nanoBragg's lab frame). From an ``.expt``: the A matrix of each experiment's crystal
    (``real_space_a/b/c``) in dxtbx's frame, flagged by a fourth row (see
    :func:`make_shot`, which turns it into nanoBragg's frame). Read once per process.
    """
    key = _file_key("--orientations", path)
    got = _ORIENTATION_CACHE.get(key)
    if got is not None:
        return got
    if path.endswith(".expt"):
        m = _expt_matrices(path)
        _ORIENTATION_CACHE.clear()
        _ORIENTATION_CACHE[key] = m
        return m
    if path.endswith(".npy"):
        try:
            m = np.load(path, allow_pickle=False)
        except OSError as exc:
            raise InputFileOpenError(path, exc) from None
        except (ValueError, EOFError):
            raise InputFileError(path, "--orientations: not a .npy file of numbers (save "
                                 "an (n, 3, 3) array with numpy.save)") from None
        if m.dtype.kind not in "iuf":
            raise InputFileError(path, f"--orientations: a .npy array of {m.dtype}, not of "
                                 "numbers")
        m = np.asarray(m, dtype=np.float64).reshape(-1)
    else:
        m = read_number_rows(path, "--orientations", "9 numbers per shot, row-major",
                             columns=0).reshape(-1)
    if m.size == 0 or m.size % 9 or not np.all(np.isfinite(m)):
        raise InputFileError(path, f"--orientations: needs 9 finite numbers per shot "
                             f"(found {m.size} numbers)")
    m = m.reshape(-1, 3, 3)
    _ORIENTATION_CACHE.clear()
    _ORIENTATION_CACHE[key] = m
    return m


def _expt_matrices(path: str) -> np.ndarray:
    """(n, 4, 3): each experiment's A matrix in dxtbx's frame, then a row of NaN that
    marks the frame (the reading is checked: JSON, crystals with real-space vectors)."""
    import json

    def bad(why: str, line: int | None = None) -> InputFileError:
        return InputFileError(path, f"--orientations: {why}", line=line)

    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as exc:
        raise InputFileOpenError(path, exc) from None
    except UnicodeDecodeError:
        raise bad("not a DIALS experiment list (not text)") from None
    except json.JSONDecodeError as exc:
        raise bad(f"not a DIALS experiment list (JSON: {exc.msg})", exc.lineno) from None
    if not isinstance(doc, dict):
        raise bad("not a DIALS experiment list (no ExperimentList object)")
    crystals = doc.get("crystal", [])
    out = []
    try:
        for e in doc.get("experiment", []):
            if not isinstance(e, dict) or "crystal" not in e:
                raise bad("an experiment without a crystal")
            c = crystals[int(e["crystal"])]
            rows = np.array([c["real_space_a"], c["real_space_b"], c["real_space_c"]],
                            dtype=np.float64)
            A = np.linalg.inv(rows)  # columns a*, b*, c*: rows · A = 1
            out.append(np.vstack([A, np.full((1, 3), np.nan)]))
    except (KeyError, IndexError, TypeError, ValueError, np.linalg.LinAlgError) as exc:
        if isinstance(exc, InputFileError):
            raise
        raise bad("a crystal without three real-space vectors (real_space_a/b/c) or with "
                  "singular ones") from None
    if not out:
        raise bad("no experiment with a crystal")
    m = np.array(out)
    if not np.all(np.isfinite(m[:, :3])):
        raise bad("a crystal with non-finite vectors")
    return m


def _file_key(flag: str, path: str) -> tuple:
    """(path, size, mtime) of an input file, for the per-process caches; a file gone
    since the plan was made is an :class:`InputFileOpenError` (exit 3)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise InputFileOpenError(path, exc) from None
    return (path, st.st_size, st.st_mtime_ns)


def read_number_rows(path: str, flag: str, what: str, columns: int) -> np.ndarray:
    """The numbers of a text file (``#`` starts a comment; blank lines skipped).

    ``columns``: every row has at least that many numbers (the first ``columns`` are
    kept: a 2-d array); 0: any layout (a flat array of every number, in order).

    Raises
    ------
    InputFileError
        One line naming the file, the line and ``flag``: a word that is not a finite
        number, a row with too few numbers, or a file without numbers (exit 3).
    InputFileOpenError
        The file cannot be read.
    """
    import warnings

    try:  # the fast reader first; the scanner below finds what is wrong, line by line
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy's "input contained no data"
            fast = np.loadtxt(path, ndmin=2, comments="#", dtype=np.float64)
        if fast.size and fast.shape[1] >= columns and np.all(np.isfinite(fast)):
            return fast[:, :columns] if columns else fast.reshape(-1)
    except (OSError, ValueError):
        pass
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise InputFileOpenError(path, exc) from None
    numbers: list[float] = []
    rows = 0
    for number, raw in enumerate(data.splitlines(), start=1):
        text = raw.split(b"#", 1)[0].decode("utf-8", "replace")
        words = text.split()
        if not words:
            continue
        if columns and len(words) < columns:
            raise InputFileError(path, f"{flag}: {len(words)} number(s) on the line; each "
                                 f"row needs {columns}: {what}", line=number)
        for word in words[:columns] if columns else words:
            try:
                value = float(word)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise InputFileError(path, f"{flag}: {shown(word)} is not a finite number "
                                     f"({what})", line=number)
            numbers.append(value)
        rows += 1
    if not rows:
        raise InputFileError(path, f"{flag}: no numbers in the file ({what})")
    out = np.array(numbers, dtype=np.float64)
    return out.reshape(rows, columns) if columns else out


def _is_rotation(m: np.ndarray) -> bool:
    return bool(np.allclose(m.T @ m, np.eye(3), atol=1e-6) and
                abs(np.linalg.det(m) - 1.0) < 1e-6)


_SPECTRA_CACHE: dict[tuple, Any] = {}


def read_spectra(path: str, shot: int) -> tuple[np.ndarray, np.ndarray]:
    """Shot ``shot``'s spectrum from a file: (wavelengths in Å, weights).

    HDF5 (``.h5``/``.hdf5``): datasets ``wavelength_A`` and ``weight``, shape
    (shots, lines), NaN-padded (what a stills run writes as ``*_spectra.h5``). Text:
    rows ``shot wavelength_A weight`` (shot from 0). Raises a usage error for a shot the
    file does not have.
    """
    key = _file_key("--spectrum", path)
    data = _SPECTRA_CACHE.get(key)
    if data is None:
        if path.endswith((".h5", ".hdf5")):
            data = _spectra_h5(path)
        else:
            data = read_number_rows(path, "--spectrum", "shot wavelength_A weight",
                                    columns=3)
        _SPECTRA_CACHE.clear()
        _SPECTRA_CACHE[key] = data
    if isinstance(data, tuple):
        lam, w = data
        if shot >= lam.shape[0]:
            raise UsageError(f"--spectrum {path}: has {lam.shape[0]} spectra, none for "
                             f"shot {shot}")
        keep = np.isfinite(lam[shot]) & np.isfinite(w[shot])
        lam, w = lam[shot][keep], w[shot][keep]
    else:
        sel = data[:, 0] == shot
        lam, w = data[sel, 1], data[sel, 2]
    if lam.size == 0 or np.any(lam <= 0) or np.any(w < 0) or not np.any(w > 0):
        raise InputFileError(path, f"--spectrum: shot {shot} has no usable rows "
                             "(wavelengths > 0, weights >= 0, one > 0)")
    return lam, w


def _spectra_h5(path: str) -> tuple[np.ndarray, np.ndarray]:
    """``wavelength_A`` and ``weight`` of a spectra file (each (shots, lines))."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            got = []
            for name in ("wavelength_A", "weight"):
                d = f.get(name)
                if not isinstance(d, h5py.Dataset) or d.ndim != 2 \
                        or d.dtype.kind not in "iuf":
                    raise InputFileError(path, f"--spectrum: no 2-d dataset {name!r} of "
                                         "numbers (shots, lines), as a stills run writes "
                                         "in *_spectra.h5")
                got.append(np.asarray(d, dtype=np.float64))
    except OSError as exc:
        if exc.errno is not None:
            raise InputFileOpenError(path, exc) from None
        raise InputFileError(path, "--spectrum: not an HDF5 file") from None
    if got[0].shape != got[1].shape:
        raise InputFileError(path, f"--spectrum: wavelength_A {got[0].shape} and weight "
                             f"{got[1].shape} differ in shape")
    return got[0], got[1]


def equal_weight_lines(lam: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Wavelengths of equal weight standing for a weighted spectrum.

    nanoBragg.c's pixel loop gives every source the same weight (it never reads the
    intensity column). Equal weights: the rows as given (zero weights dropped). Else the
    spectrum's weighted CDF sampled at ``(j + 0.5)/L``, ``L`` = rows with weight > 0
    (systematic resampling: lines repeat in proportion to their weight).
    """
    keep = weight > 0
    lam, weight = lam[keep], weight[keep]
    if np.all(weight == weight[0]):
        return lam.copy()
    cdf = np.cumsum(weight) / np.sum(weight)
    L = lam.size
    idx = np.searchsorted(cdf, (np.arange(L) + 0.5) / L, side="left")  # first cdf >= u
    return lam[np.minimum(idx, L - 1)]


# ------------------------------------------------------------------------- shots


@dataclass(frozen=True)
class Shot:
    """One shot's choices: its A matrix, spectrum lines and per-shot flag values."""

    index: int
    A: np.ndarray  # (3, 3) columns a*, b*, c* (1/Å, lab frame), as drawn
    mat_text: str  # the -mat file (A·λ0 in Å, rows x, y, z)
    wavelengths_A: np.ndarray | None  # the spectrum's lines; None: the flags' (mono)
    source_text: str | None  # the -sourcefile (X Y Z weight λ[m]); None for mono
    flags: tuple[str, ...]  # -Na/-Nb/-Nc, -mosaic, -fluence/-flux, -seed, -mosaic_seed
    N: tuple[float, float, float]
    mosaic_deg: float
    fluence: float  # photons/m²
    seed: int  # C's -seed (noise), as typed
    mosaic_seed: int  # C's -mosaic_seed, as typed


def make_shot(plan: StillsPlan, k: int) -> Shot:
    """Shot ``k``'s draws (pure function of the plan and ``k``)."""
    base = np.array(plan.base_A).reshape(3, 3)
    if plan.orientations == "random":
        A = random_rotation(shot_generator(plan.seed, k, _ORIENTATION)) @ base
    else:
        mats = read_orientations(plan.orientations)
        if k >= len(mats):
            raise UsageError(f"--orientations {plan.orientations}: has {len(mats)} "
                             f"matrices, none for shot {k}")
        m = mats[k]
        if m.shape[0] == 4:  # an .expt's A in dxtbx's frame: back to nanoBragg's lab
            from ..formats.geometry import lab_to_dxtbx

            A = lab_to_dxtbx(plan.beam, plan.spindle).T @ m[:3]
        else:
            A = m @ base if _is_rotation(m) else m.copy()
    M = (A * plan.lambda0_A).tolist()
    mat_text = "".join(f"{M[i][0]!r} {M[i][1]!r} {M[i][2]!r}\n" for i in range(3))

    lines: np.ndarray | None = None
    if plan.spectrum.kind == "sase":
        rng = shot_generator(plan.seed, k, _SPECTRUM)
        e0 = HC_EV_ANGSTROM / plan.lambda0_A
        energies = e0 + plan.spectrum.fwhm_eV / FWHM_PER_SIGMA * \
            rng.standard_normal(plan.spectrum.spikes)
        lines = np.sort(HC_EV_ANGSTROM / energies)
    elif plan.spectrum.kind == "file":
        lines = equal_weight_lines(*read_spectra(plan.spectrum.path, k))
    source_text = None
    if lines is not None:
        x, y, z = (-10.0 * b for b in plan.beam)  # C's default: 10 m upstream on the beam
        source_text = "".join(f"{x!r} {y!r} {z!r} 1 {lam * 1e-10!r}\n"
                              for lam in lines.tolist())

    jit = plan.jitter
    rng = shot_generator(plan.seed, k, _JITTER)
    z = rng.standard_normal(5)  # always drawn: a spread of 0 leaves the others alone
    flags: list[str] = []
    N = plan.N0
    if jit.N:
        N = tuple(float(max(1, round(n0 * math.exp(jit.N * zi))))
                  for n0, zi in zip(plan.N0, z[:3], strict=True))
        flags += ["-Na", f"{N[0]:g}", "-Nb", f"{N[1]:g}", "-Nc", f"{N[2]:g}"]
    mosaic = plan.mosaic0_deg
    if jit.mosaic and plan.mosaic0_deg > 0:
        mosaic = plan.mosaic0_deg * math.exp(jit.mosaic * z[3])
        flags += ["-mosaic", repr(mosaic)]
    fluence = plan.fluence0
    if jit.flux:
        factor = math.exp(jit.flux * z[4] - jit.flux**2 / 2)
        if plan.flux_given:
            flags += ["-flux", repr(plan.flux0 * factor)]
        else:
            flags += ["-fluence", repr(plan.fluence0 * factor)]
        fluence = plan.fluence0 * factor
    seeds = shot_generator(plan.seed, k, _C_SEEDS).integers(1, _C_SEED_MAX, size=2)
    flags += ["-seed", str(int(seeds[0])), "-mosaic_seed", str(int(seeds[1]))]
    return Shot(k, A, mat_text, lines, source_text, tuple(flags), N, mosaic, fluence,
                int(seeds[0]), int(seeds[1]))


def shot_argv(plan: StillsPlan, shot: Shot, mat_path: str, source_path: str) -> list[str]:
    """nanoBragg.c's command line of ``shot`` (ARGS, then the shot's flags)."""
    argv = list(plan.args) + ["-mat", mat_path]
    if shot.source_text is not None:
        argv += ["-sourcefile", source_path]
    return argv + list(shot.flags)


def shot_stem(template: str, k: int) -> str:
    """Where ``--explain`` writes shot ``k``'s files: ``out/run.h5`` → ``out/run_shot000017``."""
    root, _ = os.path.splitext(template)
    return f"{root}_shot{k:06d}"


def explain(plan: StillsPlan, k: int, template: str, *, noise: bool = False
            ) -> tuple[list[str], dict[str, str]]:
    """nanoBragg.c's command line for shot ``k`` and the files it reads.

    Returns
    -------
    argv : list of str
        Arguments after the program name; its images go to ``STEM.bin`` (float) and
        ``STEM.img`` (SMV), ``STEM.noise.img`` with ``noise``.
    files : dict
        path → text: ``STEM.mat`` and (not mono) ``STEM.src``, to be written beside.
    """
    shot = make_shot(plan, k)
    stem = shot_stem(template, k)
    files = {stem + ".mat": shot.mat_text}
    if shot.source_text is not None:
        files[stem + ".src"] = shot.source_text
    argv = shot_argv(plan, shot, stem + ".mat", stem + ".src")
    argv += ["-floatfile", stem + ".bin", "-intfile", stem + ".img", "-nopgm"]
    argv += ["-noisefile", stem + ".noise.img"] if noise else ["-nonoise"]
    return argv, files


def command_line(argv: Sequence[str], program: str = "nanoBragg") -> str:
    """A shell line for ``program argv``."""
    return shlex.join([program, *argv])


# ------------------------------------------------------------------------ render

_SF_CACHE: dict[tuple, Any] = {}


def structure_factors_for(opts) -> Any:
    """The :class:`~nbnumba.setup.structure_factors.StructureFactors` these options read,
    read once per process (keyed by the file's name, size and time, and -default_F).

    Unlike a single run, nothing is written (no ``Fdump.bin`` per shot or per worker).
    """
    from .. import io as nbio
    from ..setup.structure_factors import StructureFactors, structure_factor_origin

    origin = structure_factor_origin(opts)
    path = opts.hklfilename if origin == "hkl" else opts.dumpfilename
    ident: tuple = ()
    if origin != "default":
        st = os.stat(path)
        ident = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    key = (origin, ident, opts.default_F)
    got = _SF_CACHE.get(key)
    if got is None:
        if origin == "default":
            got = StructureFactors(nbio.HKLTable.empty(), "default", opts.dumpfilename)
        elif origin == "dump":
            got = StructureFactors(nbio.read_fdump(path), "dump", opts.dumpfilename)
        else:
            table = nbio.read_hkl(path, opts.default_F)
            got = StructureFactors(table, "hkl", opts.dumpfilename,
                                   warnings=list(table.warnings))
        _SF_CACHE.clear()  # one dataset per process at a time
        _SF_CACHE[key] = got
    return got


@dataclass
class ShotTruth:
    """What was simulated for one shot, as the truth files record it.

    ``A``: columns a*, b*, c* (1/Å) in nanoBragg's lab frame, as C's setup left them
    (after reading the -mat file); ``cell``: a, b, c (Å), α, β, γ (deg);
    ``wavelengths_A``: the spectrum's lines (equal weights); ``cell_vectors_A``: the
    real-space vectors (rows a, b, c; Å; lab frame) the kernel rotated (C's ``a``, ``b``,
    ``c``).
    """

    shot: int
    A: list[float]  # 9, row-major
    cell: list[float]  # 6
    wavelengths_A: list[float]
    mean_wavelength_A: float
    N: list[float]
    mosaic_deg: float
    fluence: float
    seed: int
    mosaic_seed: int
    beam: list[float] = field(default_factory=list)  # unit, lab frame
    cell_vectors_A: list[float] = field(default_factory=list)  # 9: rows a, b, c (Å, lab)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def shot_simulation(plan: StillsPlan, k: int):
    """Shot ``k`` as a :class:`nbnumba.api.Simulation` with its scene resolved: (Shot, sim).

    Parsed from :func:`shot_argv` with the -mat and -sourcefile text given as read
    (no file is written), the structure factors from :func:`structure_factors_for`.
    """
    from ..api import Simulation
    from ..cargs import parse_args
    from ..inputs import run_inputs

    shot = make_shot(plan, k)
    mat_path = f"<shot {k}>.mat"
    src_path = f"<shot {k}>.src"
    with run_inputs() as inputs:
        streams = {mat_path: shot.mat_text.encode()}
        if shot.source_text is not None:
            streams[src_path] = shot.source_text.encode()
        # the texts stand for the files --explain writes (regular files): not pipes
        inputs.preload(streams, as_files=True)
        opts, warnings = parse_args(shot_argv(plan, shot, mat_path, src_path))
        sim = Simulation.from_options(opts, warnings, check=False,
                                      structure_factors=structure_factors_for(opts))
        _ = sim.scene  # reads the two texts now, inside this block
    return shot, sim


def render_shot(plan: StillsPlan, k: int, *, engine: Any = "auto"):
    """Compute shot ``k``: its :class:`nbnumba.api.Result` and :class:`ShotTruth`.

    The result is that of ``nanobragg-nb`` with :func:`explain`'s command line (the
    -mat and -sourcefile text given as read).
    """
    shot, sim = shot_simulation(plan, k)
    result = sim.run(engine)
    cell = result.scene.resolved.cell
    A = np.array([cell.a_star_per_angstrom[1:], cell.b_star_per_angstrom[1:],
                  cell.c_star_per_angstrom[1:]]).T
    lengths = [cell.a_angstrom[0], cell.b_angstrom[0], cell.c_angstrom[0]]
    lam = result.scene.sources[:, 3] * 1e10
    truth = ShotTruth(
        shot=k, A=[float(v) for v in A.reshape(-1)],
        cell=[float(v) for v in lengths] + [math.degrees(a) for a in cell.angles],
        wavelengths_A=[float(v) for v in lam], mean_wavelength_A=float(np.mean(lam)),
        N=[float(result.scene.params.Na), float(result.scene.params.Nb),
           float(result.scene.params.Nc)],
        mosaic_deg=math.degrees(result.scene.resolved.sampling.mosaic_spread),
        fluence=float(result.scene.params.fluence), seed=shot.seed,
        mosaic_seed=shot.mosaic_seed,
        beam=[float(v) for v in result.scene.resolved.detector.beam_vector[1:]],
        cell_vectors_A=[float(v) for v in (cell.a_angstrom[1:4] + cell.b_angstrom[1:4]
                                           + cell.c_angstrom[1:4])])
    return result, truth
