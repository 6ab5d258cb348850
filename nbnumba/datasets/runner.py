"""Stills datasets on a Dask cluster (or in this process): parts, a resumable log, the truth.

Each shot is a task (:func:`render_still`) that renders the shot
(:func:`nbnumba.datasets.stills.render_shot`), compresses its frame into the HDF5
stack's chunk (bitshuffle/LZ4) and writes it atomically as a part file. The client
keeps at most a few tasks in flight, appends one JSON line per finished shot to the
log (``NAME.shots.jsonl``: the part's size and sha256 and the shot's truth) and keeps
nothing else per shot but one byte (done or not) and the line's offset. When every
shot is done it writes, streaming over the log: the NXmx stack (the parts' bytes
copied into its chunks), the per-shot spectra (``*_spectra.h5``), the CrystFEL stream
(``.stream``) and the DIALS experiment list (``.expt``) when a writer is available.
A run that is interrupted and started again skips the shots whose parts are intact.
``specs/stills.md`` describes the files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
import uuid
import warnings as py_warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..distributed import (
    ManifestLock,
    SeriesError,
    check_detection,
    client_for,
    file_intact,
    publish_file,
    sha256_file,
    write_json,
)
from ..errors import NbError, warnings_silenced
from ..errors import warn as issue_warnings
from ..kernels.tiles import numba_threads_for, use_numba_threads
from .stills import (
    HC_EV_ANGSTROM,
    StillsPlan,
    plan_stills,
    render_shot,
    shot_simulation,
)

__all__ = ["StillJob", "StillResult", "StillsRun", "stills", "render_still",
           "stills_paths", "MANIFEST_KIND", "MAX_SHOTS"]

MANIFEST_KIND = "nbnumba-stills-manifest"
MANIFEST_VERSION = 1
MAX_SHOTS = 10_000_000
CONTENTS = ("auto", "float", "int", "noise")
_LOG_FSYNC_S = 2.0
_PARTS_PER_FOLDER = 1000


def stills_paths(template: str) -> dict[str, str]:
    """The files of a stills run named ``template`` (``out/run.h5``): absolute paths of
    ``stack``, ``manifest``, ``log``, ``parts`` (folder), ``expt``, ``stream``,
    ``spectra``."""
    template = os.path.abspath(template)
    folder, name = os.path.split(template)
    root = os.path.splitext(template)[0]
    return {"stack": template, "manifest": template + ".manifest.json",
            "log": template + ".shots.jsonl", "parts": os.path.join(folder, f".{name}.parts"),
            "expt": root + ".expt", "stream": root + ".stream",
            "spectra": root + "_spectra.h5"}


def _part_path(parts: str, k: int) -> str:
    return os.path.join(parts, f"{k // _PARTS_PER_FOLDER:05d}", f"shot_{k:07d}.bslz4")


@dataclass(frozen=True)
class StillJob:
    """One shot's task."""

    plan: StillsPlan
    shot: int
    content: str  # float, int or noise
    part: str  # absolute path of the compressed chunk
    cwd: str
    numba_threads: int | None = None
    background: str | None = None  # --background (float32 photons), checked by sha256
    background_sha256: str | None = None
    noisify: tuple[str, ...] | None = None  # --noisify's flags (nbnumba.detect)


@dataclass(frozen=True)
class StillResult:
    """What a finished shot reports: its part's size and sha256, and its truth."""

    shot: int
    size: int = 0
    sha256: str = ""
    truth: dict | None = None
    error: str | None = None
    adc_offset: float = 40.0  # of the stored counts (noisify's -adc after --noisify)
    # the shot's warning lines (the run's, noisify's, Python's), the photon note left out
    warnings: tuple[str, ...] = ()
    max_photons: float | None = None  # the brightest pixel before detection (photons)
    photon_knobs: str = ""  # api.photon_knobs of the shot


def render_still(job: StillJob) -> StillResult:
    """Worker task: render shot ``job.shot``, write its compressed frame atomically.

    Silent: the shot's warnings (its run's and noisify's lines, and any Python warning
    such as numpy's) come back in :attr:`StillResult.warnings` for the client to report
    once each; the too-dark note is the client's too, from every shot's brightest pixel.
    """
    with py_warnings.catch_warnings(record=True) as caught, warnings_silenced():
        py_warnings.simplefilter("always")
        got = _render_still_here(job)
    extra = [_warning_line(w.message) for w in caught]
    if extra:
        got = dataclasses.replace(got, warnings=tuple(dict.fromkeys(got.warnings + tuple(extra))))
    return got


def _warning_line(message: Warning | str) -> str:
    """A Python warning as the one-line ``warning: ...`` the CLI prints."""
    text = " ".join(str(message).split())
    return text if text.startswith("warning: ") else f"warning: {text}"


def _render_still_here(job: StillJob) -> StillResult:
    from .. import io as nbio
    from ..api import photon_knobs, photon_warning
    from ..formats.nxmx import compress_frame

    use_numba_threads(job.numba_threads)
    if job.cwd and os.path.isdir(job.cwd) and os.getcwd() != job.cwd:
        os.chdir(job.cwd)  # relative input paths in ARGS are the client's
    try:
        result, truth = render_shot(job.plan, job.shot)
        max_photons = float(result.stats.max_I)
        knobs = photon_knobs(result.scene)
        dark = photon_warning(max_photons, knobs)  # the client's to give, over all shots
        if job.background is not None or job.noisify is not None:
            # background photons, then noisify.c with the shot's own seed
            result = result.detected(_background(job, result.scene), job.noisify,
                                     noisify_seed=truth.seed)
        data = result.frame_image(job.content)
        raw = compress_frame(data, job.content, result.adc_offset)
        os.makedirs(os.path.dirname(job.part), exist_ok=True)
        nbio.atomic_write(job.part, raw, durable=True)
    except (NbError, OSError) as exc:
        return StillResult(job.shot, error=f"shot {job.shot}: {exc}")
    return StillResult(job.shot, len(raw), hashlib.sha256(raw).hexdigest(), truth.to_dict(),
                       adc_offset=float(result.adc_offset),
                       warnings=tuple(w for w in dict.fromkeys(result.warnings) if w != dark),
                       max_photons=max_photons, photon_knobs=knobs)


_BACKGROUND: dict[tuple, np.ndarray] = {}


def _background(job: StillJob, scene) -> np.ndarray | None:
    """--background, read once per process and checked against the client's sha256."""
    if job.background is None:
        return None
    key = (job.background, job.background_sha256)
    got = _BACKGROUND.get(key)
    if got is None:
        from ..detect import read_background
        from ..errors import InputFileError

        if sha256_file(job.background)[1] != job.background_sha256:
            raise InputFileError(job.background, "changed since the run started "
                                 "(--background); run again")
        got = read_background(job.background, scene.fpixels, scene.spixels)
        _BACKGROUND.clear()
        _BACKGROUND[key] = got
    return got


@dataclass
class StillsRun:
    """A stills run: its plan, files, and what it computed."""

    plan: StillsPlan
    shots: int
    content: str
    paths: dict[str, str]
    detection: tuple = (None, None, None)  # background path, its sha256, noisify flags
    computed: int = 0
    skipped: int = 0
    written: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    warn: Callable[[str], None] | None = None  # receives each warning line once
    warnings: list[str] = field(default_factory=list)  # every warning given, in order
    # the brightest pixel of the shots computed (photons; None: none computed), its
    # shot's photon knobs, and the first shots of zeros (O(1) memory per run)
    brightest: float | None = None
    photon_knobs: str = ""
    empty_shots: list[int] = field(default_factory=list)

    def warn_once(self, text: str) -> None:
        """Give a warning line once per run: as a Python warning
        (:class:`~nbnumba.errors.NbnumbaWarning`, silent inside
        :func:`~nbnumba.errors.warnings_silenced`) and to ``warn``."""
        if text in self.warnings:
            return
        self.warnings.append(text)
        issue_warnings(text)
        if self.warn is not None:
            self.warn(text)

    def check_photons(self) -> None:
        """One warning for a dataset too dark for spots (its brightest shot under about
        1 photon) or with shots of zeros (:func:`nbnumba.api.photon_warning`)."""
        from ..api import photon_warning

        if self.brightest is None:
            return  # every shot was done already
        note = photon_warning(self.brightest, self.photon_knobs, self.empty_shots)
        if note is not None:
            self.warn_once(note.replace("frame(s)", "shot(s)"))


def _read_log(log: str, shots: int, parts: str, done: bytearray,
              offsets: np.ndarray) -> None:
    """Mark the shots whose log line and part agree; a torn last line is ignored."""
    try:
        f = open(log, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return
    with f:
        offset = 0
        for line in f:
            start, offset = offset, offset + len(line)
            try:
                entry = json.loads(line)
                k = int(entry["shot"])
                size, sha = int(entry["size"]), str(entry["sha256"])
            except (ValueError, KeyError, TypeError):
                continue
            if 0 <= k < shots and file_intact(_part_path(parts, k), size, sha):
                done[k] = 1
                offsets[k] = start


def stills(args: Sequence[str], shots: int, *, template: str = "stills.h5",
           orientations: str = "random", spectrum: str = "mono", jitter: str | None = None,
           content: str = "auto", seed: int | None = None, client=None,
           workers: int | None = None, scheduler: str | None = None, force: bool = False,
           progress: bool = False, warn: Callable[[str], None] | None = None,
           background: str | os.PathLike | None = None,
           noisify: str | Sequence[str] | None = None) -> StillsRun:
    """Simulate ``shots`` stills of ``nanobragg-nb ARGS`` into ``template`` (an ``.h5``).

    Shot ``k`` is the single run of :func:`nbnumba.datasets.stills.explain` (ARGS, its
    A matrix, spectrum, jitter and C seeds drawn from ``seed`` and ``k``). ``client``:
    a ``distributed.Client``; else one on ``scheduler``; else a LocalCluster of
    ``workers`` processes; ``workers=0``: every shot in this process, no Dask.
    Intact shots of an earlier run of the same dataset are kept unless ``force``.
    ``background`` (a raw float32 file of photons/pixel) is added to every shot and
    ``noisify`` (noisify.c's flags) run on it with the shot's seed, as the series'
    ``--background``/``--noisify`` (:meth:`nbnumba.api.Result.detected`); the frames
    then hold noisify's counts (``content`` noise, or int).

    Returns
    -------
    StillsRun
        ``paths``: the stack, truth files, manifest and log.

    Raises
    ------
    nbnumba.distributed.SeriesError
        Bad options (exit 2), a manifest of another dataset or failed shots (exit 3),
        no scheduler (exit 4). ARGS' own errors keep a single run's message and code.
    """
    if isinstance(shots, bool) or not isinstance(shots, int) or not 1 <= shots <= MAX_SHOTS:
        raise SeriesError(f"--shots must be a whole number from 1 to {MAX_SHOTS}",
                          exit_code=2)
    if content not in CONTENTS:
        raise SeriesError(f"--content must be one of {', '.join(CONTENTS)}", exit_code=2)
    if noisify is not None:
        if content == "auto":
            content = "noise"
        if content == "float":
            raise SeriesError("--noisify: the frames hold noisify's counts (--content noise "
                              "or int)", exit_code=2)
    content = "float" if content == "auto" else content
    from ..distributed import check_main_guard  # a script without its __main__ guard

    check_main_guard("nbnumba.stills",
                     starts_workers=client is None and not scheduler and workers != 0)
    template = os.path.abspath(os.fspath(template))
    if os.path.splitext(template)[1].lower() not in (".h5", ".hdf5"):
        raise SeriesError(f"--template {template}: a stills dataset is one .h5 file",
                          exit_code=2)
    paths = stills_paths(template)
    os.makedirs(os.path.dirname(template), exist_ok=True)
    lock = ManifestLock(paths["manifest"]).acquire()
    try:
        old = None
        if not force and os.path.exists(paths["manifest"]):
            try:
                old = json.loads(Path(paths["manifest"]).read_text())
            except (OSError, ValueError):
                old = None
            if not isinstance(old, dict) or old.get("kind") != MANIFEST_KIND:
                raise SeriesError(f"{paths['manifest']}: not a stills manifest; use --force "
                                  "to start over", exit_code=3)
        if seed is None and old is not None and not any(
                a.startswith("-") and "-seed" in a for a in args):
            seed = old.get("command", {}).get("seed")  # the clock seed it started with
        try:
            plan, warnings = plan_stills(args, seed=seed, orientations=orientations,
                                         spectrum=spectrum, jitter=jitter)
        except NbError as exc:
            raise SeriesError(str(exc), exc.exit_code) from exc
        _check_counts(plan, shots)
        from ..cargs import parse_args
        from ..validate import detector_shape

        detection, notes = check_detection(  # ARGS are parsed again only for a background
            background, noisify, lambda: detector_shape(parse_args(list(plan.args))[0]))
        run = StillsRun(plan, shots, content, paths, detection, warn=warn)
        for w in warnings + notes:
            run.warn_once(w)
        command = {**plan.record(), "content": content, "shots": shots}
        if detection[0] is not None:
            command["background"] = {"file": detection[0], "sha256": detection[1]}
        if detection[2] is not None:
            command["noisify"] = list(detection[2])
        if old is not None and old.get("command") != command:
            raise SeriesError(f"{paths['manifest']} records another dataset (ARGS, seed, "
                              "options or shot count); use --force to overwrite it",
                              exit_code=3)
        if old is None:
            for stale in (paths["log"],):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(stale)
            shutil.rmtree(paths["parts"], ignore_errors=True)
        manifest = old or {"kind": MANIFEST_KIND, "version": MANIFEST_VERSION,
                           "command": command, "template": os.path.basename(template)}
        if manifest.get("complete") and all(
                file_intact(paths[k], *manifest["outputs"][k])
                for k in manifest.get("outputs", {})):
            run.skipped = shots
            return run
        manifest.pop("complete", None)
        if "geometry" not in manifest:
            from ..formats import DetectorGeometry

            with warnings_silenced():  # the shots report their warnings
                _, sim = shot_simulation(plan, 0)
            manifest["geometry"] = DetectorGeometry.from_scene(
                sim.scene, phi_start_deg=0.0, osc_deg=0.0).to_dict()
        write_json(paths["manifest"], manifest)
        done = bytearray(shots)
        offsets = np.full(shots, -1, dtype=np.int64)
        _read_log(paths["log"], shots, paths["parts"], done, offsets)
        run.skipped = sum(done)
        started = time.monotonic()
        todo = (k for k in range(shots) if not done[k])
        if run.skipped < shots:
            if workers == 0 and client is None and not scheduler:
                _run_here(run, todo, done, offsets, progress)
            else:
                with client_for(client, workers, scheduler) as c:
                    _run_cluster(run, c, todo, done, offsets, progress)
        run.elapsed_s = time.monotonic() - started
        run.check_photons()
        run.written = _write_outputs(run, manifest, offsets)
        return run
    finally:
        lock.release()


def _check_counts(plan: StillsPlan, shots: int) -> None:
    """An orientation or spectrum file must have every shot (a usage error, now)."""
    from .stills import read_orientations, read_spectra

    try:
        if plan.orientations != "random":
            have = len(read_orientations(plan.orientations))
            if have < shots:
                raise SeriesError(f"--orientations {plan.orientations}: {have} matrices for "
                                  f"{shots} shots", exit_code=2)
        if plan.spectrum.kind == "file":
            read_spectra(plan.spectrum.path, shots - 1)
    except NbError as exc:
        raise SeriesError(str(exc), exc.exit_code) from exc


class _Log:
    """The append-only shot log: one JSON line per finished shot, fsync'd every 2 s."""

    def __init__(self, path: str) -> None:
        self.f = open(path, "ab")  # noqa: SIM115 - closed by close()
        self.last_sync = time.monotonic()

    def add(self, result: StillResult) -> int:
        line = json.dumps({"shot": result.shot, "size": result.size,
                           "sha256": result.sha256, "truth": result.truth,
                           "adc_offset": result.adc_offset},
                          sort_keys=True).encode() + b"\n"
        offset = self.f.tell()
        self.f.write(line)
        self.f.flush()
        if time.monotonic() - self.last_sync > _LOG_FSYNC_S:
            os.fsync(self.f.fileno())
            self.last_sync = time.monotonic()
        return offset

    def close(self) -> None:
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()


def _bar(run: StillsRun, progress: bool):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=run.shots, initial=run.skipped, unit="shot", desc="stills",
                file=sys.stderr, smoothing=0.1)


def _job(run: StillsRun, k: int, threads: int | None) -> StillJob:
    return StillJob(run.plan, k, run.content, _part_path(run.paths["parts"], k), os.getcwd(),
                    threads, *run.detection)


def _record(run: StillsRun, log: _Log, result: StillResult, done: bytearray,
            offsets: np.ndarray) -> None:
    if result.error:
        raise SeriesError(f"{result.error}; finished shots are kept: run again to compute "
                          "the rest", exit_code=3)
    offsets[result.shot] = log.add(result)
    done[result.shot] = 1
    run.computed += 1
    for w in result.warnings:
        run.warn_once(w)
    m = result.max_photons
    if m is not None:
        if run.brightest is None or m > run.brightest or not run.brightest > 0.0:
            run.brightest, run.photon_knobs = m, result.photon_knobs  # the brightest's
        if not m > 0.0:  # photon_warning names 10 and says "..." after
            run.empty_shots = sorted([*run.empty_shots, result.shot])[:11]


def _run_here(run, todo, done, offsets, progress) -> None:
    log = _Log(run.paths["log"])
    bar = _bar(run, progress)
    try:
        for k in todo:
            _record(run, log, render_still(_job(run, k, None)), done, offsets)
            if bar is not None:
                bar.update(1)
    finally:
        log.close()
        if bar is not None:
            bar.close()


def _run_cluster(run, client, todo, done, offsets, progress) -> None:
    from distributed import as_completed

    threads = numba_threads_for(client)
    slots = sum(client.nthreads().values()) or 1
    window = 2 * slots + 2  # bounded: the client holds at most this many futures
    log = _Log(run.paths["log"])
    bar = _bar(run, progress)
    pending = as_completed()

    def submit() -> bool:
        k = next(todo, None)
        if k is None:
            return False
        pending.add(client.submit(render_still, _job(run, k, threads), pure=False,
                                  retries=2, key=f"nbnumba-still-{k}-{uuid.uuid4().hex[:8]}"))
        return True

    try:
        for _ in range(window):
            if not submit():
                break
        for future in pending:
            result = future.result()
            future.release()
            _record(run, log, result, done, offsets)
            if bar is not None:
                bar.update(1)
            submit()
    finally:
        with contextlib.suppress(Exception):
            client.cancel(list(pending.futures))
        log.close()
        if bar is not None:
            bar.close()


def _truths(log_path: str, offsets: np.ndarray):
    """Each shot's truth in shot order, read line by line from the log."""
    with open(log_path, "rb") as f:
        for k in range(len(offsets)):
            f.seek(int(offsets[k]))
            entry = json.loads(f.readline())
            yield k, entry


def _publish_tmp(target: str, write: Callable[[str], None]) -> None:
    folder, name = os.path.split(target)
    tmp = os.path.join(folder, f".{name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        publish_file(tmp, target)  # fsync, rename, fsync the folder: as a series' frames
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_outputs(run: StillsRun, manifest: dict, offsets: np.ndarray) -> list[str]:
    """Stack, spectra, stream, .expt, each atomically; then the manifest says done."""
    from ..formats import DetectorGeometry
    from ..formats.nxmx import write_nxmx

    paths, plan = run.paths, run.plan
    if np.any(offsets < 0):
        raise SeriesError("some shots are missing after the run; run again", exit_code=3)
    geometry = DetectorGeometry.from_dict(manifest["geometry"])
    # the counts' ADC offset: noisify's -adc after --noisify (the same for every shot)
    adc = next(_truths(paths["log"], offsets))[1].get("adc_offset", geometry.adc_offset)
    geometry = dataclasses.replace(geometry, adc_offset=float(adc))

    def parts():
        for k, entry in _truths(paths["log"], offsets):
            raw = Path(_part_path(paths["parts"], k)).read_bytes()
            if hashlib.sha256(raw).hexdigest() != entry["sha256"]:
                raise SeriesError(f"shot {k}: its part changed since it was written; run "
                                  "again", exit_code=3)
            yield raw

    _publish_tmp(paths["stack"], lambda p: write_nxmx(
        p, geometry, parts(), run.shots, content=run.content, command=list(plan.args),
        compressed=True))
    _publish_tmp(paths["spectra"], lambda p: _write_spectra(p, paths["log"], offsets))
    stack_name = os.path.relpath(paths["stack"], os.path.dirname(paths["stream"]))
    _publish_tmp(paths["stream"], lambda p: _write_stream(
        p, paths["log"], offsets, stack_name, geometry.close_distance_m))
    _publish_tmp(paths["expt"], lambda p: _write_expt(
        p, paths["stack"], geometry, run.content, paths["log"], offsets))
    written = [paths["stack"], paths["spectra"], paths["stream"], paths["expt"]]
    manifest["outputs"] = {key: list(sha256_file(paths[key]))
                           for key in ("stack", "spectra", "stream", "expt")
                           if paths[key] in written}
    manifest["complete"] = True
    write_json(paths["manifest"], manifest)
    shutil.rmtree(paths["parts"], ignore_errors=True)
    return written


def _write_expt(path: str, stack: str, geometry, content: str, log: str,
                offsets: np.ndarray) -> None:
    """The DIALS experiment list, one shot at a time (``formats.expt``'s records, spliced
    into one document without holding every shot: four passes over the log)."""
    from ..formats.expt import stills_experiment_list

    # the stack's name relative to the .expt's folder (dxtbx resolves it from there), so
    # that the dataset's folder can be moved or copied whole
    image = os.path.relpath(stack, os.path.dirname(os.path.abspath(path)))

    def one(k: int, t: dict) -> dict:
        doc = stills_experiment_list(geometry, [np.reshape(t["cell_vectors_A"], (3, 3))],
                                     image_path=stack, indices=[k], content=content,
                                     wavelengths_m=[t["mean_wavelength_A"] * 1e-10])
        doc["imageset"][0]["images"] = [image]  # relative (stills_experiment_list: absolute)
        e = doc["experiment"][0]
        e.update(identifier=f"nbnumba-{k}", beam=k, crystal=k, imageset=k)
        return doc

    first = one(0, next(_truths(log, offsets))[1]["truth"])
    with open(path, "w", encoding="ascii") as out:
        out.write('{\n "__id__": "ExperimentList"')
        for key, pick in (("experiment", "experiment"), ("imageset", "imageset"),
                          ("beam", "beam")):
            out.write(f',\n "{key}": [')
            for k, e in _truths(log, offsets):
                out.write((",\n  " if k else "\n  ") + json.dumps(one(k, e["truth"])[pick][0]))
            out.write("\n ]")
        out.write(',\n "detector": ' + json.dumps(first["detector"]))
        out.write(',\n "goniometer": [],\n "scan": [],\n "crystal": [')
        for k, e in _truths(log, offsets):
            out.write((",\n  " if k else "\n  ") + json.dumps(one(k, e["truth"])["crystal"][0]))
        out.write('\n ],\n "profile": [],\n "scaling_model": []\n}\n')


def _write_spectra(path: str, log: str, offsets: np.ndarray) -> None:
    """Per-shot truth arrays; ``wavelength_A``/``weight`` readable by ``--spectrum``."""
    import h5py

    n = len(offsets)
    lines = max(len(e["truth"]["wavelengths_A"]) for _, e in _truths(log, offsets))
    with h5py.File(path, "w", track_order=True) as f:
        lam = f.create_dataset("wavelength_A", (n, lines), "f8", fillvalue=np.nan,
                               chunks=(min(n, 1024), lines))
        w = f.create_dataset("weight", (n, lines), "f8", fillvalue=np.nan,
                             chunks=(min(n, 1024), lines))
        mean = f.create_dataset("mean_wavelength_A", (n,), "f8")
        A = f.create_dataset("A_lab_per_angstrom", (n, 3, 3), "f8")
        cell = f.create_dataset("cell", (n, 6), "f8")
        N = f.create_dataset("N", (n, 3), "f8")
        mosaic = f.create_dataset("mosaic_deg", (n,), "f8")
        fluence = f.create_dataset("fluence", (n,), "f8")
        A.attrs["description"] = ("columns a*, b*, c* (1/Angstrom) in nanoBragg's lab frame "
                                  "(MOSFLM convention: beam along +x)")
        for k, e in _truths(log, offsets):
            t = e["truth"]
            m = len(t["wavelengths_A"])
            lam[k, :m] = t["wavelengths_A"]
            w[k, :m] = 1.0
            mean[k] = t["mean_wavelength_A"]
            A[k] = np.reshape(t["A"], (3, 3))
            cell[k] = t["cell"]
            N[k] = t["N"]
            mosaic[k] = t["mosaic_deg"]
            fluence[k] = t["fluence"]


def _write_stream(path: str, log: str, offsets: np.ndarray, image: str,
                  distance_m: float) -> None:
    from importlib.metadata import PackageNotFoundError, version

    from ..formats.crystfel_stream import write_stream_chunk, write_stream_header

    with open(path, "w") as out:
        try:
            ours = version("nbnumba")
        except PackageNotFoundError:
            ours = "(not installed)"
        write_stream_header(out, f"nbnumba {ours} (nanobragg-nb stills: the true crystals)")
        for k, e in _truths(log, offsets):
            t = e["truth"]
            lam = np.asarray(t["wavelengths_A"])
            energies = HC_EV_ANGSTROM / lam
            bandwidth = float(np.std(energies) * 2.3548 / np.mean(energies)) \
                if lam.size > 1 else 0.0
            write_stream_chunk(out, image=image, event=k, serial=k + 1,
                               photon_energy_eV=HC_EV_ANGSTROM / t["mean_wavelength_A"],
                               camera_length_m=distance_m, cell=t["cell"],
                               A_lab=np.reshape(t["A"], (3, 3)), beam_lab=t["beam"],
                               bandwidth=bandwidth)
