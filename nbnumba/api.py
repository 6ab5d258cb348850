"""The Python API of the spot simulator: :class:`Simulation` → :class:`Result`.

>>> import nbnumba as nb
>>> sim = nb.Simulation(cell=(100, 100, 100, 90, 90, 90), default_F=100, N=5,
...                     lambda_=1.0, detpixels=256, pixel=0.1, distance=100, seed=1)
>>> res = sim.run()                     # doctest: +SKIP
>>> res.image.shape, res.stats.max_I    # doctest: +SKIP

``Simulation.from_args(argv)`` takes nanoBragg.c's command line through the
same parser as ``nanobragg-nb`` (its substring matching, argv order and
warnings); ``Simulation(**flags)`` builds that command line from keywords,
so the two cannot drift.  Nothing here prints or writes a file unless asked
(:meth:`Result.write`); nanoBragg.c's stdout is returned as text.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import numbers
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .config import Options

__all__ = ["Simulation", "Result", "flags_to_argv"]


def _warn(texts: str | Sequence[str] | None, category: type[Warning] | None = None) -> None:
    """The library's warnings, issued the Python way (:func:`nbnumba.errors.warn`)."""
    from .errors import NbnumbaWarning, warn

    warn(texts, category or NbnumbaWarning)


def _g(x: float) -> str:
    """C's ``%g``."""
    from .io import c_format_g

    return c_format_g(x)


def _token(key: str, value: Any) -> str:
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{key}: a value in a sequence cannot be a bool")
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):  # numpy floats too: written so atof reads them back
        value = float(value)
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, str):
        return value
    raise TypeError(f"{key}: {type(value).__name__} is not a flag value (give a number, a "
                    f"string, a path or a sequence of them)")


def flags_to_argv(flags: dict[str, Any]) -> list[str]:
    """nanoBragg.c's command line for keyword flags, in the order given.

    Each keyword is a flag's name without its dash (``lambda_`` for
    ``-lambda``, a trailing ``_`` is dropped); the value is in C's user units
    (mm, degrees, Å, ...): ``True`` gives the bare flag (``nonoise=True`` →
    ``-nonoise``), ``False``/``None`` leaves it out, a sequence gives one
    argument per item (``cell=(100, 100, 100, 90, 90, 90)``), anything else
    one argument (floats written so that C's ``atof`` reads them back exactly).
    """
    argv: list[str] = []
    for key, value in flags.items():
        flag = "-" + key.rstrip("_")
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value.item()
        if value is None or value is False or isinstance(value, np.bool_) and not value:
            continue
        if isinstance(value, np.ndarray) and value.ndim > 1:
            # an hkl list or an A matrix: C reads them from files (-hkl, -mat)
            shape = "x".join(str(n) for n in value.shape)
            raise TypeError(f"{key}=<{shape} array>: {flag} takes a file name, not an array "
                            f"(nanoBragg.c reads it from a file: write it first, e.g. with "
                            f"numpy.savetxt)")
        argv.append(flag)
        if value is True or isinstance(value, np.bool_):
            continue
        if isinstance(value, (list, tuple, np.ndarray)):
            argv.extend(_token(key, v) for v in value)
        else:
            argv.append(_token(key, value))
    return argv


def _is_table(value: Any, key: str = "hkl") -> bool:
    """A 2-D array or nested sequence (an hkl list, an A matrix), not a file name; for
    ``mat`` also a flat sequence of numbers (the nine numbers of an ``-mat`` file)."""
    if value is None or isinstance(value, (str, bytes, os.PathLike)):
        return False
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        return False
    return array.ndim == 2 or (key == "mat" and array.ndim == 1 and array.dtype.kind in "iuf")


def _memory_from_tables(tables: dict[str, Any], o: Options):
    """``hkl=``/``mat=`` arrays as the in-memory inputs of the setup.

    ``hkl``: shape (n, 4), rows h, k, l, F as in an ``-hkl`` file (h, k, l whole
    numbers).  ``mat``: shape (3, 3) or (9,), the nine numbers of an ``-mat`` file in
    its order (mosflm's A matrix: columns a*, b*, c* times the wavelength in Å);
    scaled by ``1e-10/lambda`` as nanoBragg.c scales the file's (line 1890).

    Raises
    ------
    TypeError
        A table of the wrong shape, or not numbers.
    nbnumba.errors.UsageError
        A singular A matrix (the check ``-mat FILE`` gets, exit 3 there).
    """
    from .setup.scene import InMemory

    memory = InMemory()
    if "hkl" in tables:
        table = np.asarray(tables["hkl"], dtype=np.float64)
        if table.shape[1] != 4 or not np.all(np.isfinite(table[:, :3])) or \
                np.any(table[:, :3] != np.round(table[:, :3])):
            raise TypeError(f"hkl=<{table.shape[0]}x{table.shape[1]} array>: an hkl table "
                            f"has rows h, k, l, F with whole-number h, k, l (shape (n, 4))")
        memory.hkl = table[:, :3].astype(np.int64)
        memory.F = table[:, 3].copy()
    if "mat" in tables:
        from .errors import UsageError
        from .validate import mat_problem

        shape = "x".join(map(str, np.shape(tables["mat"])))
        try:
            matrix = np.asarray(tables["mat"], dtype=np.float64)
        except (TypeError, ValueError):
            matrix = None
        if matrix is not None and matrix.shape == (9,):
            matrix = matrix.reshape(3, 3)  # the file's order: three rows of three
        if matrix is None or matrix.shape != (3, 3) or not np.all(np.isfinite(matrix)):
            raise TypeError(f"mat=<{shape} array>: an A matrix is 3x3 (or 9) finite "
                            f"numbers, as in an -mat file")
        why = mat_problem(matrix)
        if why:
            raise UsageError(f"mat=<3x3 array>: {why}")
        # C: a_star[1..3] = the file's columns, then vector_scale(a_star, 1e-10/lambda0)
        memory.reciprocal_vectors_per_angstrom = matrix.T * (1e-10 / o.lambda0)
    return memory


class Simulation:
    """One nanoBragg.c run: options resolved as C resolves them, computed on request.

    Parameters
    ----------
    **flags
        One keyword per nanoBragg.c flag, in C's user units (see
        :func:`flags_to_argv`), e.g. ``cell=(100, 100, 100, 90, 90, 90),
        default_F=100, N=5, lambda_=1.0, detpixels=256, pixel=0.1,
        distance=100, seed=1, c_parity=False``.  ``hkl=`` and ``mat=`` also take
        arrays: an (n, 4) table of h, k, l, F rows, and the nine numbers of a
        mosflm ``-mat`` file in its order (3×3, or flat: nine numbers, three rows of
        three); they are used in memory, exactly
        as the same numbers read from a file.

    Raises
    ------
    TypeError
        A keyword that is no nanoBragg.c (or nbnumba) flag, naming it.
    nbnumba.errors.UsageError, nbnumba.errors.InputFileError, nbnumba.errors.ResourceError
        Bad values or input files (the checks ``nanobragg-nb`` makes; exit codes 2, 3, 4).

    Attributes
    ----------
    options : Options
        The parsed flags (C's variables, C's internal units).
    warnings : list of str
        One-line warnings from the parser and the checks (C's surprising behaviour),
        each also issued once with :func:`warnings.warn` as a
        :class:`~nbnumba.errors.NbnumbaWarning` when the simulation is made (the
        setup's when :attr:`scene` is resolved; the run's when it runs).
    bad_pixels : ndarray of bool or None
        The slab's pixels skipped as nanoBragg.c skips ``-mask``'s zeros (a ``-geom``
        file's bad regions, ``no_index`` panels, ``mask_edge_pixels``), or None.

    Notes
    -----
    Output file names in the flags (``-floatfile`` ...) only name the files
    in :attr:`Result.summary`; nothing is written until :meth:`Result.write`.
    Input files are read relative to the current folder when the scene is
    resolved, as C does.
    """

    #: slab-shaped bool mask of the pixels to skip (True), or None: see :meth:`from_models`
    bad_pixels: np.ndarray | None = None
    #: a -geom file's common ADU per photon (its adu_per_photon, or adu_per_eV times its
    #: photon energy), or None: -crystfel_out writes it back; the pixels are not rescaled
    adu_per_photon: float | None = None

    def __init__(self, **flags: Any) -> None:
        # hkl= and mat= may be arrays: C's files' contents, handed over in memory
        tables = {key: flags.pop(key) for key in ("hkl", "mat")
                  if _is_table(flags.get(key), key)}
        self._init_from_flags(flags)
        if tables:
            self._memory = _memory_from_tables(tables, self.options)

    def _init_from_flags(self, flags: dict[str, Any]) -> None:
        from .errors import UsageError

        argv = flags_to_argv(flags)
        # the library reads or writes C's Fdump.bin cache only when asked (dump=...)
        fdump = flags.get("dump") not in (None, False)
        try:
            self._init_from_argv(argv, fdump=fdump)
        except UsageError as exc:
            # "-N -lambda: '-lambda' is not a number": N=True took the next flag as its value
            for key, value in flags.items():
                if value is True and str(exc).startswith(f"-{key.rstrip('_')} -"):
                    raise TypeError(f"{key}=True: -{key.rstrip('_')} takes a value") from None
            raise
        # "-N needs 1 argument", or "-N -lambda: nanoBragg.c's atoi() reads '-lambda' as 0"
        # (N=True took the next flag as its value; C runs that, the API says so)
        needs_value = [key for key, value in flags.items() if value is True and any(
            w.startswith((f"warning: -{key.rstrip('_')} needs ",
                          f"warning: -{key.rstrip('_')} -")) for w in self.warnings)]
        if needs_value:
            raise TypeError(f"{needs_value[0]}=True: -{needs_value[0].rstrip('_')} takes a "
                            f"value")
        unknown = [key for key, value in flags.items()
                   if not (value is None or value is False)
                   and any(w.startswith(f"warning: -{key.rstrip('_')} matches no nanoBragg.c "
                                        f"option") for w in self.warnings)]
        if unknown:
            raise TypeError(f"Simulation() got unknown flag keyword(s): {', '.join(unknown)}")
        _warn(self.warnings)

    @classmethod
    def from_args(cls, argv: Sequence[str]) -> Simulation:
        """A simulation from nanoBragg.c's command line (the arguments after the program name).

        Parses with C's semantics (strstr matching, argv order, C's guards) and
        makes the input checks of ``nanobragg-nb``; see ``specs/cli.md``.  Like
        nanoBragg.c (and unlike ``Simulation(**flags)``), it reads
        ``Fdump.bin`` (``-dump``) when no ``-hkl`` is given, with a warning
        saying so, and writes it after reading ``-hkl``.
        """
        if isinstance(argv, (str, bytes)):
            raise TypeError("from_args takes the arguments as a list (e.g. "
                            "shlex.split(command_line)), not one string")
        sim = cls.__new__(cls)
        sim._init_from_argv([os.fspath(a) if isinstance(a, os.PathLike) else str(a)
                             for a in argv])
        _warn(sim.warnings)
        return sim

    @classmethod
    def from_options(cls, options: Options, warnings: Sequence[str] = (),
                     check: bool = True, structure_factors: Any = None) -> Simulation:
        """A simulation from parsed options (a copy is kept); ``check`` makes the input checks.

        ``warnings`` (the parser's) are kept in :attr:`warnings`, not issued again; the
        checks' own warnings are issued (:class:`~nbnumba.errors.NbnumbaWarning`).
        ``structure_factors``: the :class:`nbnumba.setup.structure_factors.StructureFactors`
        these options name, already read (reused across the shots of a stills dataset);
        None: read when the scene is resolved, as C does.
        """
        sim = cls.__new__(cls)
        sim._structure_factors = structure_factors
        sim.options = copy.deepcopy(options)
        sim.warnings = list(warnings)
        if check:
            from .validate import validate_inputs

            more = validate_inputs(sim.options, list(warnings))
            sim.warnings += more
            _warn(more)
        sim._scene = None
        sim._setup_stdout = ""
        sim._setup_warnings = []
        sim._rng_after_setup = None
        sim._memory = None
        sim.detector = None
        sim._experiment = None
        if sim.options.model_file is not None:
            sim._use_model_file()
        return sim

    @classmethod
    def from_models(cls, experiment, *, bad_pixels: np.ndarray | None = None,
                    **flags: Any) -> Simulation:
        """A simulation of models (:mod:`nbnumba.models`): every panel, in memory.

        Parameters
        ----------
        experiment : nbnumba.models.Experiment
            Beam, detector (one or more panels), crystal (structure factors in
            memory or ``default_F``), scan.
        bad_pixels : ndarray of bool, shape ``experiment.detector.slab_shape``, optional
            True for each pixel to skip, as nanoBragg.c skips a pixel whose ``-mask``
            value is 0: it stays 0 in the float image and out of the statistics' sums
            (e.g. :attr:`nbnumba.readers.crystfel_geom.CrystFELGeometry.mask`; a
            ``-geom`` run applies its file's mask this way).
        **flags
            nanoBragg.c flags (as for ``Simulation(**flags)``) for what the
            models do not hold: ``oversample``, ``water``, ``seed``,
            ``c_parity``, ``engine``, ``hkl`` (a file, when the crystal has no
            structure factors), ... .  The models win over flags for what they
            hold.

        Returns
        -------
        Simulation
            ``run()`` renders each panel as nanoBragg.c renders its one detector
            with that panel's vectors (``Result.panels``), assembled into the
            detector's slab (``Result.image``).

        Raises
        ------
        ValueError
            Models nanoBragg.c's physics cannot take (see
            :func:`nbnumba.setup.experiment.apply_experiment`).
        TypeError
            ``experiment`` is not an :class:`nbnumba.models.Experiment` (a file name:
            use ``Simulation.from_args(['-expt', path])``), or as ``Simulation(**flags)``.
        UsageError
            As ``Simulation(**flags)``.

        Notes
        -----
        Nothing is read from or written to ``Fdump.bin`` unless ``dump=`` is
        given.  ``Simulation.from_args(argv).experiment`` gives a command line
        as models: replace its detector (``dataclasses.replace``) to put the
        same crystal and beam on several panels.
        """
        from .models import Experiment
        from .setup.experiment import apply_experiment
        from .validate import validate_inputs

        if not isinstance(experiment, Experiment):
            what = "a file name" if isinstance(experiment, (str, bytes, os.PathLike)) else \
                type(experiment).__name__
            raise TypeError(f"from_models takes an nbnumba.models.Experiment, not {what}; "
                            "for a file use Simulation.from_args(['-expt', path]) (or "
                            "'-geom') or nbnumba.readers.dials_expt.read_expt")
        sim = cls.__new__(cls)
        sim._init_from_flags(flags)
        sim._memory = apply_experiment(experiment, sim.options)
        sim.warnings += [w for w in validate_inputs(sim.options, []) if w not in sim.warnings]
        sim.detector = experiment.detector
        sim._experiment = experiment
        if bad_pixels is not None:
            bad = np.asarray(bad_pixels, dtype=bool)
            if bad.shape != tuple(experiment.detector.slab_shape):
                raise ValueError(f"bad_pixels of shape {bad.shape}: the detector's slab is "
                                 f"{tuple(experiment.detector.slab_shape)}")
            sim.bad_pixels = bad
        o = sim.options
        if len(experiment.detector) > 1 and (o.mask_image is not None or max(
                o.roi_xmin, o.roi_xmax, o.roi_ymin, o.roi_ymax) >= 0):
            sim.warnings.append(f"warning: -roi and -mask apply to a one-panel detector; "
                                f"ignored for these {len(experiment.detector)} panels (each "
                                f"is rendered whole but for bad_pixels=)")
        return sim

    def _init_from_argv(self, argv: list[str], fdump: bool = True) -> None:
        from .cargs import parse_args
        from .validate import validate_inputs

        opts, parse_warnings = parse_args(argv)
        opts.fdump = fdump
        self._memory = None
        self.detector = None
        self._experiment = None
        self.argv = list(argv)
        self.options = opts
        self.warnings = list(parse_warnings) + validate_inputs(opts, parse_warnings)
        self._scene = None
        self._structure_factors = None
        self._setup_stdout = ""
        self._setup_warnings: list[str] = []
        self._rng_after_setup = None
        if opts.model_file is not None:
            self._use_model_file()

    def _use_model_file(self) -> None:
        """``-geom``/``-expt``: the file's models in place of the flags they replace
        (:mod:`nbnumba.setup.model_files`); reads the file and resolves the remaining flags
        (their input files too) now."""
        from .errors import UsageError
        from .setup.experiment import apply_experiment
        from .setup.model_files import combine, flags_only, read_model_file, settle_options
        from .validate import validate_inputs

        o = self.options
        mf = read_model_file(o)
        self.warnings += [w for w in settle_options(o, mf) if w not in self.warnings]
        base = Simulation.from_options(flags_only(o, mf), check=False).experiment
        experiment = combine(base, o, mf)
        n = len(experiment.detector)
        if n > 1 and (o.geometry_out or o.cbffilename):
            raise UsageError(f"-{o.model_kind} {o.model_file}: -geometry_out/-cbffile "
                             f"describe one flat panel; this detector has {n} (use "
                             f"-nxmx_out or -crystfel_out)")
        if n > 1 and o.expt_out and not o.nxmx_out:
            raise UsageError(f"-{o.model_kind} {o.model_file}: -expt_out of {n} panels points "
                             f"at their NXmx file: give -nxmx_out NAME.h5 too")
        if n == 1:  # one panel: -expt_out may point at C's SMV image, if dxtbx can open it
            from .formats.single import check_expt_image

            check_expt_image(o)
        try:
            self._memory = apply_experiment(experiment, o)
        except ValueError as exc:
            raise UsageError(f"-{o.model_kind} {o.model_file}: {exc}") from None
        self.warnings += [w for w in validate_inputs(o, []) if w not in self.warnings]
        self.detector = experiment.detector
        # the .geom's bad pixels are skipped as nanoBragg.c skips -mask's zeros
        self.bad_pixels = mf.geom.mask if mf.geom is not None else None
        self.adu_per_photon = mf.geom.adu_per_photon if mf.geom is not None else None
        self._experiment = experiment
        self._scene = None

    def __repr__(self) -> str:
        return f"Simulation.from_args({self.argv!r})" if getattr(self, "argv", None) else \
            "Simulation(<options>)"

    # ------------------------------------------------------------------ setup
    @property
    def scene(self):
        """The resolved setup (:class:`nbnumba.setup.scene.Scene`): geometry, crystal, sources.

        Computed on first use, as nanoBragg.c's main does before its pixel loop
        (nanoBragg.c lines 1110-2525); reads the input files and may write
        C's ``Fdump.bin`` cache, as C does.  ``scene.resolved`` holds the
        setup as records (:class:`nbnumba.setup.scene.ResolvedSetup`:
        ``detector``, ``sampling``, ``cell``, ``crystal``,
        ``structure_factors``, ``sources``), from which ``setup_stdout`` is
        rendered.
        """
        if self._scene is None:
            from .errors import CParityWarning
            from .rng import RandomStreams
            from .setup.prepare import prepare
            from .setup.report import setup_report
            from .validate import check_scene_finite, nonfinite_as_usage, nonfinite_flags

            rng = RandomStreams(self.options)
            # C converts an inf/NaN value to an int (undefined) or divides by it
            with nonfinite_as_usage(self.options):
                scene = prepare(self.options, rng, self._memory, self._structure_factors)
            finite_notes = check_scene_finite(scene, nonfinite_flags(self.options))
            self._scene = scene
            self._setup_stdout = setup_report(scene.resolved)
            self._setup_warnings = list(scene.resolved.warnings) + finite_notes
            _warn(self._setup_warnings)
            from .setup.rules import stale_rotation_differs, stale_rotation_note

            if not self.options.c_parity and stale_rotation_differs(scene.phi_values):
                # C's files differ from ours here: said once, as C's quirk (issue 24)
                self._setup_warnings.append(stale_rotation_note())
                _warn(self._setup_warnings[-1], CParityWarning)
            # C's noise draws from the generator state setup left: keep a copy per run
            self._rng_after_setup = copy.deepcopy(rng)
        return self._scene

    @property
    def experiment(self):
        """This run as :class:`nbnumba.models.Experiment`: the models given to
        :meth:`from_models`, or the flags resolved by C's rules
        (:func:`nbnumba.setup.experiment.experiment_from_setup`)."""
        if self._experiment is None:
            from .setup.experiment import experiment_from_setup

            self._experiment = experiment_from_setup(self.scene.resolved)
        return self._experiment

    @property
    def panel_scenes(self) -> list:
        """One scene per panel (:func:`nbnumba.setup.prepare.pack_panel`); the flags' one
        scene for a command line."""
        scene = self.scene
        if self.detector is None:
            return [scene]
        from .setup.prepare import pack_panel

        keep = len(self.detector) == 1 and (self.detector.panels[0].fpixels,
                                            self.detector.panels[0].spixels) == \
            (scene.fpixels, scene.spixels)
        bad = [None] * len(self.detector) if self.bad_pixels is None else \
            self.detector.split(self.bad_pixels)
        return [pack_panel(scene, p, keep_roi=keep, bad_pixels=b)
                for p, b in zip(self.detector.panels, bad, strict=True)]

    @property
    def setup_stdout(self) -> str:
        """What nanoBragg.c prints while it sets up (before the pixel loop), exactly."""
        _ = self.scene
        return self._setup_stdout

    # -------------------------------------------------------------------- run
    def select_engine(self, engine: Any = "auto"):
        """The :class:`nbnumba.engines.Engine` that ``run(engine)`` would use (or an error)."""
        from .engines import select

        o = self.options
        if engine is None:
            engine = "auto"
        if isinstance(engine, str):
            engine = engine.lower()
            if engine == "auto":
                engine = o.engine  # -engine, "auto" unless given
        return select(engine, device=o.device, exact=o.c_parity, precision=o.precision)

    def run(self, engine: Any = "auto", *, progress: bool = False,
            **engine_options: Any) -> Result:
        """Compute the float image.

        Parameters
        ----------
        engine : str or Engine
            ``"auto"`` (``-engine`` if given, else the registry's rule: ``exact``
            under ``-c_parity`` on
            every device, else CUDA when usable, else ``vectorised``), or
            ``"exact"``, ``"vectorised"``, ``"cuda"``, ``"tiles"``, or an
            :class:`nbnumba.engines.Engine`.
        progress : bool
            Show progress on stderr: ``tqdm.auto``'s bar in a notebook, tqdm's bar
            on a terminal, a plain line every 30 s in a log or pipe
            (:func:`nbnumba.progress.progress_bar`).
        **engine_options
            Passed to the engine's loader (``tiles``: ``client``, ``tiles``).

        Returns
        -------
        Result

        Raises
        ------
        UsageError, ResourceError
            An impossible engine request (:func:`nbnumba.engines.select`).
        """
        from .engines import parity_note
        from .errors import CParityWarning
        from .simulate import render
        from .validate import check_memory

        chosen = self.select_engine(engine)
        unknown = sorted(set(engine_options) - set(chosen.options))
        if unknown:
            raise TypeError(f"run(): engine {chosen.name!r} takes no option(s) "
                            f"{', '.join(unknown)} (it takes: "
                            f"{', '.join(chosen.options) or 'none'})")
        check_memory(self.options)  # ResourceError before anything large is allocated
        options = dict(engine_options)
        if chosen.name == "tiles":
            options.setdefault("device", self.options.device)
            options.setdefault("exact", self.options.c_parity)
        renderer = chosen.load(self.options.precision, **options)
        scenes = self.panel_scenes
        # the panel loop: crystal, sources and F table shared, each panel its own det rows
        parts = [render(s, renderer, sliced=chosen.sliced, progress=progress) for s in scenes]
        scene, rendered = self._assemble(scenes, parts)
        trace: list[str] = []
        if self.options.trace_pixel is not None:
            from .trace import trace_lines

            trace = trace_lines(scenes[0], *self.options.trace_pixel)
        result = Result(scene, rendered, self._setup_stdout,
                        self.warnings + self._setup_warnings,
                        copy.deepcopy(self._rng_after_setup), engine=chosen.name, trace=trace,
                        panels=[p.image for p in parts], detector=self.detector)
        result.bad_pixels = self.bad_pixels
        result.adu_per_photon = self.adu_per_photon
        result.timing = dict(getattr(renderer, "last_timing", {}))
        note = parity_note(chosen, bool(self.options.c_parity))
        if note and note not in result.warnings:
            result.warnings.append(note)
            _warn(note, CParityWarning)
        note = photon_warning(result.stats.max_I, photon_knobs(scene))
        if note is not None:
            result.warnings.append(note)
            _warn(note)
        return result

    def _assemble(self, scenes: list, parts: list):
        """The scene and rendering of the whole detector: the one panel's as they are, or
        the slab (panels at their slab origins, pixels between panels masked out)."""
        if self.detector is None or (len(parts) == 1 and tuple(self.detector.slab_shape)
                                     == parts[0].image.shape):
            return scenes[0], parts[0]
        from .simulate import Rendered

        det = self.detector
        slab = det.assemble([p.image for p in parts]).astype(np.float32, copy=False)
        # the statistics skip what no panel covers and each panel's skipped pixels
        covered = det.assemble([np.ones((p.spixels, p.fpixels), dtype=np.uint16)
                                if s.mask.size == 0 else s.mask.reshape(p.spixels, p.fpixels)
                                for p, s in zip(det.panels, scenes, strict=True)])
        rows, cols = det.slab_shape
        mask = np.zeros(0, dtype=np.uint16) if covered.all() else covered.reshape(-1)
        header = {**scenes[0].header, "fpixels": int(cols), "spixels": int(rows)}
        scene = dataclasses.replace(scenes[0], fpixels=int(cols), spixels=int(rows),
                                    roi=(0, int(cols), 0, int(rows)), mask=mask,
                                    header=header)
        fallback = next((p.fallback for p in parts if p.fallback is not None), None)
        return scene, Rendered(image=slab, omega_sum=float(sum(p.omega_sum for p in parts)),
                               fallback=fallback)

    # ----------------------------------------------------------------- series
    def frame(self, index: int, start_phi: float | None = None) -> Simulation:
        """Frame ``index`` of a rotation series, as its own simulation.

        Frame *i* is this run with ``-phi START+i*OSC -seed SEED+i`` (START:
        ``start_phi`` in degrees or this run's ``-phi``; OSC: one frame's φ
        range; SEED: this run's ``-seed`` as typed), ``misset_seed`` kept;
        exactly what ``nanobragg-nb series`` computes (``specs/series.md``).
        """
        from .constants import RTD
        from .io import wrap_int32

        o = copy.deepcopy(self.options)
        start_deg = degrees_as_typed(o.phi0) if start_phi is None else float(start_phi)
        phi_deg = start_deg + index * degrees_as_typed(frame_oscillation(o))
        o.phi0 = phi_deg / RTD  # what "-phi <phi_deg>" gives
        o.seed = wrap_int32(self.options.seed - index)  # C stores -seed: "-seed S+i"
        # a -geom/-expt run's models are already in the options and _memory: applying the
        # file again would put its scan's start back in place of this frame's -phi
        o.model_file = None
        sim = Simulation.from_options(o, self.warnings, check=False)
        sim._memory, sim.detector = self._memory, self.detector
        sim.bad_pixels, sim.adu_per_photon = self.bad_pixels, self.adu_per_photon
        if self._experiment is not None and self.detector is not None:
            sim._experiment = dataclasses.replace(
                self._experiment, scan=dataclasses.replace(self._experiment.scan,
                                                           phi_start_rad=o.phi0))
        return sim

    def series(self, frames: int, start_phi: float | None = None, *,
               engine: Any = "auto", background: Any = None,
               noisify: Any = None) -> Iterator[Result]:
        """Each frame's :class:`Result` of a rotation series, in order, in this process.

        Frame *i* equals frame *i* of ``nanobragg-nb series --frames N ARGS``
        (see :meth:`frame`); with ``background`` (an array or a raw float32 file) and
        ``noisify`` (noisify.c's flags) each frame is :meth:`Result.detected` with them
        and noisify's seed SEED+i, as ``series --background FILE --noisify 'FLAGS'``
        computes it (:meth:`Result.frame_image` gives what the frame's file holds).
        """
        if isinstance(frames, bool) or not isinstance(frames, numbers.Integral):
            raise TypeError(f"series(frames): a whole number of frames, not {frames!r}")
        if frames < 1:
            from .errors import UsageError

            raise UsageError(f"series: --frames must be at least 1, not {frames}")
        if noisify is not None:
            from .detect import check_noisify_flags

            noisify = check_noisify_flags(noisify)[0]  # refused before any frame runs
        if isinstance(background, (str, os.PathLike)):
            from .detect import read_background
            from .validate import detector_shape

            background = read_background(background, *detector_shape(self.options))
        from .errors import warnings_silenced

        for i in range(int(frames)):
            if i == 0:  # the frames share their warnings: issued once, each result lists them
                result = self.frame(i, start_phi).run(engine)
            else:
                with warnings_silenced():
                    result = self.frame(i, start_phi).run(engine)
            if background is not None or noisify is not None:
                result = result.detected(background, noisify)
            if frame_oscillation(self.options) == 0.0:
                same = ("warning: the frames' phi range is 0 (no -osc, -phistep or -phisteps): "
                        "every frame has the same angle")
                result.warnings.append(same)
                if i == 0:
                    _warn(same)
            yield result


# the brightest pixel of a useful image holds at least this many photons
PHOTON_FLOOR = 1.0


def photon_knobs(scene) -> str:
    """The flags that bring more photons per pixel, with this run's values (one clause)."""
    p = scene.params
    return (f"more photons per pixel come with a bigger crystal (-xtalsize mm or -N cells; "
            f"now {_g(p.Na)}x{_g(p.Nb)}x{_g(p.Nc)} cells) or more photons per area "
            f"(-flux ph/s, a longer -exposure s, a smaller -beamsize mm; or -fluence; now "
            f"{_g(p.fluence)} photons/m^2)")


def photon_warning(max_photons: float, knobs: str,
                   empty_frames: Sequence[int] = ()) -> str | None:
    """The one warning that a run's image is too dark to hold spots, or None.

    Parameters
    ----------
    max_photons : float
        The brightest pixel (photons) of the run, or of a whole series.
    knobs : str
        :func:`photon_knobs` of the run.
    empty_frames : sequence of int
        Frames of a series whose every pixel is 0.

    Returns
    -------
    str or None
        A warning when ``max_photons`` is under :data:`PHOTON_FLOOR` (about 1 photon:
        no spot can stand out of a background or detector noise) or a frame is all
        zeros; it names the flags that bring photons up.
    """
    if not max_photons > 0.0:  # NaN too
        return (f"warning: every pixel holds 0 photons: either no reflection reaches the "
                f"detector (see -distance, -detpixels, -dmin, the phi range) or there are "
                f"too few photons: {knobs}")
    if max_photons < PHOTON_FLOOR:
        return (f"warning: the brightest pixel holds {_g(max_photons)} photons (under "
                f"{_g(PHOTON_FLOOR)}: spots will not stand out of a background or noise); "
                f"{knobs}")
    if empty_frames:
        shown_frames = ", ".join(str(i) for i in list(empty_frames)[:10])
        more = ", ..." if len(empty_frames) > 10 else ""
        return (f"warning: frame(s) {shown_frames}{more} hold 0 photons in every pixel: "
                f"either no reflection reaches the detector there (see -distance, "
                f"-detpixels, -dmin, the phi range) or there are too few photons: {knobs}")
    return None


def degrees_as_typed(radians: float) -> float:
    """A parsed angle back in degrees as typed: C's /RTD undone, then rounded to 15 digits."""
    from .constants import RTD

    return float(f"{radians * RTD:.15g}")


def frame_oscillation(o: Options) -> float:
    """The φ range of one frame (rad), chosen from -osc/-phistep/-phisteps as C does (1389)."""
    from .constants import RTD

    if o.osc >= 0.0:
        return o.osc
    if o.phistep > 0.0:
        return o.phistep
    return 0.0 if o.phisteps < 0 else 1.0 / RTD


@dataclasses.dataclass(frozen=True)
class ImageFiles:
    """File names for :meth:`Result.write` (None: not written)."""

    floatfile: str | None = None
    intfile: str | None = None
    pgmfile: str | None = None
    noisefile: str | None = None


class Result:
    """The float image of a run and everything C derives from it.

    Attributes
    ----------
    image : numpy.ndarray
        float32 [slow, fast], photons/pixel (C's ``floatimage``); pixels outside
        the ROI and masked pixels are 0.  For a multi-panel detector, the slab
        (:meth:`nbnumba.models.Detector.assemble`): each panel at its
        ``slab_origin``, 0 between panels (statistics, SMV and noise images
        cover the panels' pixels only).
    panels : list of numpy.ndarray
        One float32 [spixels, fpixels] image per panel, in the detector's order
        (for a command line: ``[image]``).
    detector : nbnumba.models.Detector or None
        The panels (None for a command line's one detector).
    scene : Scene
        The resolved setup that made it.
    stats : nbnumba.output.Stats
        max_I and where, mean, rms, rmsd over the ROI (C lines 3035-3130).
    header : dict
        The SMV header's fields as C writes them (``nbnumba.io.smv_header``'s
        keyword arguments: geometry in C's internal units).
    warnings : list of str
        Parser, check, setup and run warnings (already issued as Python warnings,
        :class:`~nbnumba.errors.NbnumbaWarning`; kept here as ``"warning: ..."`` lines).
    engine : str
        The engine that computed the image.
    trace : list of str
        ``-trace_pixel``'s ``TRACE_PY:`` lines (empty without it).
    omega_sum : float
        Solid angle of the detector summed over sub-pixels and layers (sr).
    bad_pixels : numpy.ndarray of bool or None
        The slab's pixels skipped as ``-mask``'s zeros (:attr:`Simulation.bad_pixels`).
    adu_per_photon : float or None
        A ``-geom`` file's ADU per photon (:attr:`Simulation.adu_per_photon`), or None.
    timing : dict
        What the engine measured of its last call (the CUDA engine: ``"kernel"``
        and ``"call"`` seconds, ``"tiles"``); empty for the CPU engines.
    """

    def __init__(self, scene, rendered, setup_stdout: str, warnings: list[str], rng,
                 engine: str = "", trace: list[str] | None = None,
                 panels: list[np.ndarray] | None = None, detector=None) -> None:
        from .output import statistics

        self.scene = scene
        self.image: np.ndarray = rendered.image
        self.panels: list[np.ndarray] = list(panels) if panels is not None else [self.image]
        for p in self.panels:
            p.flags.writeable = False
        self.detector = detector
        self.bad_pixels: np.ndarray | None = None
        self.adu_per_photon: float | None = None
        # what is derived from it (counts, noise, statistics) is cached: keep it as computed
        self.image.flags.writeable = False
        self.omega_sum: float = rendered.omega_sum
        self.fallback = rendered.fallback
        self.stats = statistics(self.image, scene.mask, scene.row_range, scene.col_range)
        self.header: dict = dict(scene.header)
        self.warnings = list(warnings)
        self.engine = engine
        self.trace = list(trace or [])
        self.timing: dict = {}
        self._setup_stdout = setup_stdout
        self._rng = rng
        self._int_image: np.ndarray | None = None
        self._noise: tuple[np.ndarray, float, int] | None = None
        # noisify.c's result on this image, when made by detected(noisify=...)
        self.noisified = None

    # ----------------------------------------------------------- quantities
    @property
    def options(self) -> Options:
        return self.scene.opts

    @property
    def intfile_scale(self) -> float:
        """C's scale from photons to SMV counts (``-scale``, else 55000 at the maximum)."""
        from .output import int_scale

        return int_scale(self.options.intfile_scale, self.stats.max_I)

    @property
    def pgm_scale(self) -> float:
        """C's scale from photons to PGM grey levels (``-pgmscale``, else 250 at 5 rmsd)."""
        from .output import pgm_scale

        return pgm_scale(self.options.pgm_scale, self.intfile_scale, self.stats.rmsd)

    def int_image(self) -> np.ndarray:
        """C's SMV pixels: uint16 [slow, fast], ``floorf(photons·scale + adc + 0.5)`` clipped
        to 0..65535 inside the ROI, 0 outside (nanoBragg.c lines 3150-3170)."""
        if self._int_image is None:
            from .output import smv_counts

            s = self.scene
            (r0, r1), (c0, c1) = s.row_range, s.col_range
            counts = np.zeros((s.spixels, s.fpixels), dtype=np.uint16)
            smv_counts(self.image, self.intfile_scale, self.options.adc_offset, r0, r1, c0, c1,
                       counts)
            self._int_image = counts
        return self._int_image.copy()

    def pgm_image(self) -> np.ndarray:
        """C's PGM bytes: uint8 [slow, fast], ``min(photons·pgm_scale, 255)`` (C 3180-3200)."""
        from .output import pgm_levels

        s = self.scene
        (r0, r1), (c0, c1) = s.row_range, s.col_range
        levels = np.zeros((s.spixels, s.fpixels), dtype=np.uint8)
        pgm_levels(self.image, self.pgm_scale, r0, r1, c0, c1, levels)
        return levels

    def _noise_counts(self) -> tuple[np.ndarray, float, int]:
        if self._noise is None:
            from .output import noise_counts

            s = self.scene
            (r0, r1), (c0, c1) = s.row_range, s.col_range
            rng = copy.deepcopy(self._rng)  # every call draws C's same stream
            values = np.ascontiguousarray(self.image[r0:r1, c0:c1]).reshape(-1)
            photons = rng.gen.poisson_noise(values, rng.seed)
            counts = np.zeros((s.spixels, s.fpixels), dtype=np.uint16)
            total, overloads = noise_counts(photons, self.options.adc_offset, r0, r1, c0, c1,
                                            counts)
            self._noise = (counts, float(total), int(overloads))
        return self._noise

    def noise_image(self) -> np.ndarray:
        """C's noise image: uint16 [slow, fast], Poisson photons (C's ``poidev`` stream from
        ``-seed``, drawn after setup as C draws it) plus the ADC offset (C 3230-3288)."""
        return self._noise_counts()[0].copy()

    @property
    def noise_photons(self) -> tuple[float, int]:
        """(photons on the noise image, overloads), as C prints them."""
        _, total, overloads = self._noise_counts()
        return total, overloads

    # ------------------------------------------------------------ detection
    def detected(self, background: Any = None, noisify: Any = None,
                 noisify_seed: int | None = None) -> Result:
        """This image as a detector records it: background photons, then noisify.c.

        Parameters
        ----------
        background : array or path, optional
            float32 photons/pixel of the detector's shape ([slow, fast] or flat; a path:
            a raw float32 file as ``nonbragg-nb -floatfile`` writes), added to every
            pixel in float32 (``noisify-nb -add``'s rule).
        noisify : str, sequence of str or mapping, optional
            noisify.c's flags (``'-readout 3 -psf gauss -psf_fwhm 100 -flicker 0.02'``,
            an argv, or :class:`nbnumba.Noisify`'s keywords), run on the image (plus
            background) with this detector's size and pixel
            (:func:`nbnumba.detect.noisify_argv`).
        noisify_seed : int, optional
            noisify's ``-seed`` as typed; default this run's ``-seed`` as typed, so frame
            i of a series gets SEED+i.

        Returns
        -------
        Result
            A new result: ``image`` the sum (statistics, ``int_image`` and C's
            ``noise_image`` follow it) and ``noisified`` the
            :class:`~nbnumba.companions.noisify.NoisifyResult` (None without ``noisify``).

        Raises
        ------
        UsageError
            Flags ``--noisify`` refuses (:func:`nbnumba.detect.check_noisify_flags`) or a
            background of another size.
        InputFileError
            A background file that cannot be read or has another size.
        """
        from .detect import add_background, check_noisify_flags, noisify_frame, read_background
        from .io import wrap_int32
        from .output import statistics

        s = self.scene
        new = copy.copy(self)
        new.warnings = list(self.warnings)
        if background is not None:
            if isinstance(background, (str, os.PathLike)):
                background = read_background(background, s.fpixels, s.spixels)
            image = add_background(self.image, background)
            image.flags.writeable = False
            new.image = image
            new.stats = statistics(image, s.mask, s.row_range, s.col_range)
            new._int_image = None
            new._noise = None
        new.noisified = None
        if noisify is not None:
            flags, notes = check_noisify_flags(noisify)
            seed = wrap_int32(-self.options.seed) if noisify_seed is None else noisify_seed
            new.noisified = noisify_frame(new.image, flags, s.params.pixel_size, seed)
            for w in notes + new.noisified.warnings:
                if w not in new.warnings:
                    new.warnings.append(w)
        return new

    def frame_image(self, content: str = "noise") -> np.ndarray:
        """The image a series frame of this ``content`` holds.

        ``"float"``: :attr:`image` (photons/pixel); ``"int"``: noisify's noiseless
        counts if :meth:`detected` ran noisify, else C's :meth:`int_image`;
        ``"noise"``: noisify's counts (its noise image, or its int image with
        ``-nonoise``), else C's :meth:`noise_image`.
        """
        if content == "float":
            return self.image
        if content == "int":
            return self.noisified.int_image if self.noisified is not None \
                else self.int_image()
        if content == "noise":
            return self.noisified.image if self.noisified is not None \
                else self.noise_image()
        raise ValueError(f"content must be float, int or noise, not {content!r}")

    @property
    def adc_offset(self) -> float:
        """The ADC offset in :meth:`frame_image`'s counts: noisify's ``-adc`` after
        :meth:`detected` ran noisify, else this run's ``-adc``."""
        if self.noisified is not None:
            return float(self.noisified.options.adc_offset)
        return float(self.options.adc_offset)

    # ------------------------------------------------------------- stdout
    def _default_files(self) -> ImageFiles:
        o = self.options
        return ImageFiles(o.floatfilename, o.intfilename,
                          o.pgmfilename if o.write_pgm else None,
                          o.noisefilename if o.calculate_noise else None)

    def report(self, files: ImageFiles | None = None) -> str:
        """What nanoBragg.c prints after its pixel loop, for writing ``files`` (C 3097-3288)."""
        files = files or self._default_files()
        o = self.options
        s = self.scene
        lines: list[str] = []
        if self.fallback is not None:
            h, k, l = self.fallback
            h0, k0, l0 = (math.ceil(h - 0.5), math.ceil(k - 0.5), math.ceil(l - 0.5))
            lines.append("WARNING: out of range for three point interpolation: h,k,l,h0,k0,l0: "
                         f"{_g(h)},{_g(k)},{_g(l)},{h0},{k0},{l0} \n")
            lines.append("WARNING: further warnings will not be printed! ")
        lines.append("\n")
        steps = s.params.steps
        lines.append(f"solid angle subtended by detector = {_g(self.omega_sum / steps)} "
                     f"steradian ( {_g(100 * self.omega_sum / steps / 4 / math.pi)}% sphere)\n")
        if files.floatfile is not None:
            lines.append(f"writing {files.floatfile} as {s.fpixels * s.spixels} 4-byte floats\n")
        from .output import max_position

        max_x, max_y = max_position(self.stats.max_index, s.fpixels, s.params.oversample,
                                    s.params.subpixel_size)
        lines.append(f"max_I = {_g(self.stats.max_I)}  at {_g(max_x)} {_g(max_y)}\n")
        lines.append(f"mean= {_g(self.stats.mean)} rms= {_g(self.stats.rms)} "
                     f"rmsd= {_g(self.stats.rmsd)}\n")
        lines.append(f"intfile_scale = {_g(self.intfile_scale)}\n")
        if files.intfile is not None:
            lines.append(f"writing {files.intfile} as 2-byte integers\n")
        if files.pgmfile is not None:
            lines.append(f"pgm_scale = {_g(self.pgm_scale)}\n")
            lines.append(f"writing {files.pgmfile} as 1-byte integers\n")
        if files.noisefile is not None and o.calculate_noise:
            total, overloads = self.noise_photons
            lines.append(f"{total:.0f} photons on noise image ({overloads} overloads)\n")
            lines.append(f"writing {files.noisefile} as 2-byte integers\n")
        return "".join(lines)

    @property
    def stdout(self) -> str:
        """nanoBragg.c's whole stdout for this run and its default file names, exactly."""
        trace = "".join(line + "\n" for line in self.trace)
        return self._setup_stdout + trace + self.report()

    @property
    def summary(self) -> list[str]:
        """nanoBragg.c's stdout, as lines."""
        return self.stdout.splitlines()

    # -------------------------------------------------------------- files
    def smv_header_bytes(self, noise: bool = False) -> bytes:
        """The 512-byte SMV header C writes (``noise``: the noise image's, one signed zero
        differs)."""
        from .io import smv_header

        return smv_header(**self.header, noise=noise)

    def write(self, floatfile: str | os.PathLike | None = None,
              intfile: str | os.PathLike | None = None,
              noisefile: str | os.PathLike | None = None,
              pgmfile: str | os.PathLike | None = None) -> list[str]:
        """Write C's files, each atomically, byte for byte what ``nanobragg-nb`` writes.

        Parameters
        ----------
        floatfile, intfile, noisefile, pgmfile : path, optional
            Raw float32 image, SMV uint16 image with C's header, SMV noise image,
            PGM preview; None: not written.  Written in C's order (float, int,
            PGM, noise).

        Returns
        -------
        list of str
            The paths written.

        Raises
        ------
        nbnumba.errors.OutputPathError
            A name is empty, its folder does not exist, or the file could not be
            written (exit code 3; nothing half-written is left).
        nbnumba.errors.ResourceError
            The disk is full (exit code 4).
        """
        from . import io as nbio
        from .errors import write_error

        s = self.scene
        jobs = []
        if floatfile is not None:
            jobs.append((floatfile, lambda p: nbio.write_float_image(p, self.image)))
        if intfile is not None:
            jobs.append((intfile, lambda p: nbio.write_smv(p, self.smv_header_bytes(),
                                                           self.int_image())))
        if pgmfile is not None:
            jobs.append((pgmfile, lambda p: nbio.write_pgm(p, self.pgm_image(), s.fpixels,
                                                           s.spixels, self.pgm_scale)))
        if noisefile is not None:
            jobs.append((noisefile, lambda p: nbio.write_smv(
                p, self.smv_header_bytes(noise=True), self.noise_image())))
        for path, _ in jobs:
            _check_output_path(path)
        written: list[str] = []
        for path, job in jobs:
            try:
                job(path)
            except OSError as exc:
                raise write_error(path, exc) from exc
            written.append(os.fspath(path))
        return written

    def write_default_files(self) -> list[str]:
        """Write the files C writes for these options (their names, -nopgm, -nonoise)."""
        f = self._default_files()
        return self.write(floatfile=f.floatfile, intfile=f.intfile, pgmfile=f.pgmfile,
                          noisefile=f.noisefile)

    def __repr__(self) -> str:
        return (f"Result(image={self.image.shape[0]}x{self.image.shape[1]} float32, "
                f"max_I={self.stats.max_I:g}, engine={self.engine!r})")


def _check_output_path(path: str | os.PathLike) -> None:
    from .errors import OutputPathError

    name = os.fspath(path)
    if not name:
        raise OutputPathError("an output file name is empty")
    folder = os.path.dirname(name) or "."
    if not os.path.isdir(folder):
        raise OutputPathError(f"{name}: folder {folder} does not exist")
    if os.path.isdir(name):
        raise OutputPathError(f"{name}: is a folder")
