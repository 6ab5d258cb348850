"""Rotation series and tiled images on a Dask distributed cluster.

``series``: frame ``i`` is the single run ``ARGS -phi (start + i*osc) -seed (S + i)``,
computed by one task on a worker and written atomically under a file-name template;
a JSON manifest (sha256 and size per frame) makes runs restartable, and Dask
reschedules the frames of a worker that dies. ``tiles``: one image whose pixel
rectangle is cut into tiles computed on the cluster; the sequential effects of
``nbnumba.simulate.render`` (φ=0 first pass, interpolation switch-off) are applied by
that same function on the client (the ``tiles`` engine of ``nbnumba.engines``), so
files and stdout equal a single-process run.

Dask, distributed, fabio and h5py are imported only when used. ``specs/series.md``
describes the rules (seeds, manifest, formats).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import EXIT_USAGE, CParityWarning, NbError, shown
from .errors import warn as issue_warnings
from .kernels.tiles import count_cores, numba_threads_for, use_numba_threads

__all__ = [
    "SeriesError",
    "SeriesRun",
    "check_main_guard",
    "check_scheduler",
    "client_for",
    "kill_local_workers",
    "parse_checked",
    "frame_command",
    "local_cluster_client",
    "series",
    "tiles",
]

FORMATS = {".cbf": "cbf", ".edf": "edf", ".img": "img", ".bin": "bin", ".h5": "h5",
           ".hdf5": "h5"}
CONTENTS = ("auto", "float", "int", "noise")
# which image contents each format can hold
_FORMAT_CONTENTS = {"cbf": ("int", "noise"), "img": ("int", "noise"), "bin": ("float",),
                    "edf": ("float", "int", "noise"), "h5": ("float", "int", "noise")}
MANIFEST_KIND = "nbnumba-series-manifest"
MANIFEST_VERSION = 1
# a frame whose worker died this many times (each time after Dask's own retries)
# is reported as failed instead of being resubmitted again
MAX_RESUBMITS = 2
_MANIFEST_INTERVAL_S = 2.0
_FIELD = re.compile(r"\{[^{}]*\}")
# more frames than this in one series is a typo (its manifest alone would be ~100 MB)
MAX_FRAMES = 1_000_000
# a template field's width or precision above this is a typo, not a file name
MAX_FIELD_WIDTH = 255


def _check_fields(template: str) -> None:
    """Only ``{frame}`` fields, with a format spec of sane width (a file name is at
    most 255 bytes): ``{frame:>100000000}`` would build a 100 MB name."""
    import string

    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise SeriesError(f"--template {shown(template)}: {exc}", exit_code=2) from exc
    for _, name, spec, _ in fields:
        if name is None:
            continue
        if name != "frame":
            raise SeriesError(f"--template {shown(template)}: the only field is {{frame}} "
                              f"(with a format such as {{frame:05d}}), not "
                              f"{shown('{' + name + '}')[1:-1]}", exit_code=2)
        if "{" in (spec or "") or any(len(n) > 3 or int(n) > MAX_FIELD_WIDTH
                                      for n in re.findall(r"[0-9]+", spec or "")):
            raise SeriesError(f"--template {shown(template)}: a field width or precision "
                              f"over {MAX_FIELD_WIDTH} (or a nested field) makes no file "
                              "name", exit_code=2)
    name = os.path.basename(template)
    if len(name.encode("utf-8", "surrogateescape")) > MAX_FIELD_WIDTH:
        raise SeriesError(f"--template {shown(template)}: a file name is at most "
                          f"{MAX_FIELD_WIDTH} bytes", exit_code=2)


class SeriesError(NbError, ValueError):
    """A series or tiles request that cannot run; the message is one line, ``exit_code``
    what ``nanobragg-nb series`` exits with (that of a single run for bad ARGS, else 2)."""

    exit_code = EXIT_USAGE


def _require(what: str, extra: str, *modules: str) -> None:
    """:func:`nbnumba.extras.require` as a :class:`SeriesError` (exit code 4)."""
    from .errors import ResourceError
    from .extras import require

    try:
        require(what, extra, *modules)
    except ResourceError as exc:
        raise SeriesError(str(exc), exc.exit_code) from None


# --------------------------------------------------------------------------- cluster


GUARD_ADVICE = ("put the script's code under `if __name__ == \"__main__\":` (Dask's "
                "LocalCluster starts worker processes that import the main script again)")


def check_main_guard(what: str, starts_workers: bool = False) -> None:
    """Refuse a cluster run that a script without a ``__main__`` guard would repeat.

    Dask's LocalCluster starts its workers with multiprocessing's *spawn*, which runs the
    main script again in each worker (as module ``__mp_main__``): a script whose
    top-level code calls :func:`series` there calls it again in every worker.
    Two checks, both before anything is written or started:

    - the call comes from the top-level code of ``__mp_main__`` (this is a worker
      process re-running the script);
    - ``starts_workers`` and the main script (``sys.modules["__main__"].__file__``) has
      no ``__main__`` in its text: its workers would re-run it. An interactive session
      or ``python -c`` has no such file and is never refused.

    Raises
    ------
    SeriesError
        Exit code 2, naming the script and the guard to add.
    """
    import inspect

    frame = inspect.currentframe()
    while frame is not None:
        if frame.f_code.co_name == "<module>" and \
                frame.f_globals.get("__name__") == "__mp_main__":
            script = frame.f_globals.get("__file__") or "the main script"
            raise SeriesError(f"{what} was called again while a Dask worker process "
                              f"imported {script}: {GUARD_ADVICE}", exit_code=EXIT_USAGE)
        frame = frame.f_back
    if not starts_workers:
        return
    script = getattr(sys.modules.get("__main__"), "__file__", None)
    if not script or not os.path.isfile(script):
        return
    try:
        with open(script, encoding="utf-8", errors="replace") as f:
            text = f.read(1_000_000)
    except OSError:
        return
    if "__main__" not in text:
        raise SeriesError(f"{what}: {script} has no `if __name__ == \"__main__\":` "
                          f"guard, and each worker process would run it again; "
                          f"{GUARD_ADVICE}", exit_code=EXIT_USAGE)


def local_cluster_client(workers: int | None = None, **cluster_kwargs: Any):
    """A ``distributed.Client`` on a new ``LocalCluster`` of single-threaded processes.

    ``workers`` defaults to the number of cores; each worker's Numba pool gets
    ``cores // workers`` threads (at least 1), so workers × threads ≤ cores. Closing
    the client does not stop the cluster: use ``client.cluster.close()`` too.
    """
    from distributed import Client, LocalCluster

    cores = count_cores()
    workers = cores if workers is None else int(workers)
    if workers < 0:
        raise SeriesError("--workers must be at least 0 (0: in this process)", exit_code=2)
    if workers > 0 and cluster_kwargs.get("processes", True):
        check_main_guard("a Dask LocalCluster", starts_workers=True)
    threads = max(1, cores // max(1, workers))
    # no dashboard; its HTTP server (health checks) still starts: on a free port (0), so
    # that no "Port 8787 is already in use" UserWarning reaches the user
    options: dict[str, Any] = {"n_workers": workers, "processes": True,
                               "threads_per_worker": 1, "dashboard_address": ":0",
                               "scheduler_kwargs": {"dashboard": False},
                               "env": {"NUMBA_NUM_THREADS": str(threads)},
                               "preload": [__name__]}
    if workers == 0:  # in this process: one worker thread, no worker processes
        options.update(n_workers=1, processes=False)
        del options["env"], options["preload"]
    options.update(cluster_kwargs)
    # shutdown races log harmless tracebacks; failures reach the caller as exceptions
    options.setdefault("silence_logs", logging.CRITICAL)
    client = None
    with _sigint_held() as interrupted:
        try:
            cluster = LocalCluster(**options)
            try:
                client = Client(cluster)
            except BaseException:
                cluster.close()
                raise
        except Exception:
            # Ctrl-C reaches the starting workers too, and they fail to start
            if not interrupted:
                raise
    if interrupted:
        if client is not None:
            _release(client)
        raise KeyboardInterrupt
    return client


@contextlib.contextmanager
def _sigint_held() -> Iterator[list[bool]]:
    """Hold Ctrl-C until the block ends (Dask's start and stop do not survive being
    interrupted half-way); the yielded list is non-empty if it came."""
    import signal
    import threading

    got: list[bool] = []
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, None):
        yield got
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: got.append(True))
    try:
        yield got
    finally:
        signal.signal(signal.SIGINT, previous)


def dask_setup(worker: Any) -> None:
    """Worker preload of :func:`local_cluster_client`: ignore SIGINT in the workers.

    Ctrl-C in a terminal reaches the whole process group; the client then stops the
    cluster itself, and the workers would only print tracebacks.
    """
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


# how long a --scheduler may take to accept a connection and answer Dask's handshake
CONNECT_TIMEOUT_S = 10.0


def check_scheduler(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Raise :class:`SeriesError` (one line naming ``address``) unless it is a Dask
    scheduler that answers Dask's handshake within ``timeout_s`` seconds.

    A malformed address or an unknown scheme (``nonsense://x``) is a usage error (exit
    2); a refused or silent connection, or a service that answers something else (a
    dashboard's HTTP port, an SSH banner), exit 4. Dask's own ``Client`` would wait for
    minutes or raise a traceback there.
    """
    import asyncio
    import socket

    from distributed.comm import connect
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import backends

    said = shown(address)
    try:
        scheme, location = parse_address(address)
    except (ValueError, TypeError):
        scheme, location = "", ""
    if scheme not in backends or not location:
        known = ", ".join(f"{name}://" for name in sorted(backends))
        raise SeriesError(f"--scheduler {said}: not a Dask scheduler address (schemes: "
                          f"{known}); give one as tcp://HOST:PORT", exit_code=EXIT_USAGE)
    if scheme == "tcp":  # the operating system's answer first: refused, unknown host
        try:
            host, port = parse_host_port(location)
        except (ValueError, TypeError):
            raise SeriesError(f"--scheduler {said}: give the scheduler as tcp://HOST:PORT",
                              exit_code=EXIT_USAGE) from None
        try:
            socket.create_connection((host, port), timeout=timeout_s).close()
        except OSError as exc:
            why = exc.strerror or (f"no answer within {timeout_s:g} s"
                                   if isinstance(exc, TimeoutError) else type(exc).__name__)
            raise SeriesError(f"cannot connect to the Dask scheduler at {said}: {why}",
                              exit_code=4) from None

    async def handshake() -> None:
        comm = await connect(address, timeout=timeout_s)
        await comm.close()

    async def bounded() -> None:
        await asyncio.wait_for(handshake(), timeout_s)

    try:
        _run_coroutine(bounded)
    except (asyncio.TimeoutError, TimeoutError):
        why = f"no Dask handshake within {timeout_s:g} s (a scheduler's port? not its dashboard)"
    except OSError as exc:
        why = shown(str(exc)) or type(exc).__name__
    except Exception:  # noqa: BLE001 - any other answer: not a Dask scheduler
        why = "it answers, but not as a Dask scheduler (a scheduler's port? not its dashboard)"
    else:
        return
    raise SeriesError(f"cannot connect to the Dask scheduler at {said}: {why}",
                      exit_code=4)


def _run_coroutine(make: Callable[[], Any]) -> None:
    """``asyncio.run(make())``; inside a running event loop (Jupyter) in a thread of its
    own, whose exception is raised here."""
    import asyncio
    import threading

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(make())
        return
    failure: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(make())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            failure.append(exc)

    worker = threading.Thread(target=target, name="nbnumba-scheduler-check", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.05)
    if failure:
        raise failure[0]


def _connect(workers: int | None, scheduler: str | None):
    """A client on ``scheduler`` (checked first: :func:`check_scheduler`), or on a new
    LocalCluster of ``workers`` processes."""
    _require("a Dask cluster", "dask", "dask", "distributed")
    if not scheduler:
        return local_cluster_client(workers)
    from distributed import Client

    check_scheduler(scheduler)
    try:
        return Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S:g}s")
    except (OSError, ValueError, TypeError) as exc:
        raise SeriesError(f"cannot connect to the Dask scheduler at {shown(scheduler)}: "
                          f"{shown(str(exc)) or type(exc).__name__}", exit_code=4) from None


def _kill_workers(cluster) -> None:
    """SIGKILL the worker processes of our own LocalCluster (a signal has come: their
    frames are abandoned, and a busy worker would otherwise hold the close for as long
    as its kernel runs). Their nannies are told first not to restart them."""
    import signal

    from distributed.core import Status

    for nanny in list(getattr(cluster, "workers", {}).values()):
        pid = getattr(nanny, "pid", None)
        if not pid:
            continue
        with contextlib.suppress(Exception):
            nanny.status = Status.closing_gracefully  # no restart of the killed worker
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def kill_local_workers(client) -> None:
    """After SIGINT/SIGTERM: kill the worker processes of the LocalCluster ``client`` was
    made with (nothing for a client of a ``--scheduler`` cluster), so that closing it
    does not wait for their tasks."""
    cluster = getattr(client, "cluster", None)
    if cluster is not None:
        _kill_workers(cluster)


def _release(client, kill: bool = False) -> None:
    """Close a client made by :func:`_connect`, and its LocalCluster if it has one
    (``kill``: its workers are killed first, as after SIGINT/SIGTERM)."""
    cluster = getattr(client, "cluster", None)
    if kill and cluster is not None:
        _kill_workers(cluster)
    with _sigint_held() as interrupted:
        client.close()
        if cluster is not None:
            cluster.close()
    if interrupted:
        raise KeyboardInterrupt


@contextlib.contextmanager
def client_for(client, workers: int | None, scheduler: str | None) -> Iterator[Any]:
    """The client given, or one made for the block (closed after)."""
    if client is not None:
        yield client
        return
    own = _connect(workers, scheduler)
    try:
        yield own
    finally:  # after SIGINT/SIGTERM our own workers are killed, not waited for
        _release(own, kill=isinstance(sys.exc_info()[1], KeyboardInterrupt))


# ---------------------------------------------------------------------- frame plans


def parse_checked(args: Sequence[str]):
    """``parse_args`` and the checks of a single run's inputs (``validate_inputs``); their
    errors keep a single run's message and exit code. Returns (options, warnings)."""
    from .cargs import parse_args
    from .errors import InputFileError, NbError
    from .validate import input_flag, nonfinite_flags, validate_inputs

    opts = None
    try:
        opts, warnings = parse_args(list(args))
        warnings = warnings + validate_inputs(opts, warnings)
        if nonfinite_flags(opts):
            # whether an inf/NaN value reaches C's pixel loop shows in the resolved
            # setup: judge it once here, before any frame is sent
            from .api import Simulation

            _ = Simulation.from_options(opts, check=False).scene
        return opts, warnings
    except InputFileError as exc:
        flag = input_flag(opts, exc.path) if opts is not None else None
        raise SeriesError(f"{flag} {exc}" if flag else str(exc), exc.exit_code) from exc
    except NbError as exc:
        raise SeriesError(str(exc), exc.exit_code) from exc


def _gives(args: Sequence[str], flag: str) -> bool:
    """Whether C's strstr matching sees ``flag`` in ``args``."""
    return any(a.startswith("-") and flag in a for a in args)


@dataclass(frozen=True)
class SeriesPlan:
    """What every frame shares: the command and the per-frame rule's constants."""

    args: tuple[str, ...]
    start_phi: float  # deg
    osc: float  # deg per frame
    seed: int  # -seed of frame 0, as typed (C negates it)
    misset_seed: int  # C's internal misset_seed, the same for every frame
    content: str  # float, int or noise
    fmt: str
    template: str  # absolute
    background: str | None = None  # absolute path of --background (float32 photons)
    background_sha256: str | None = None
    noisify: tuple[str, ...] | None = None  # --noisify's flags (nbnumba.detect)


def _stale_rotation_frames(plan: SeriesPlan, opts, frames: int) -> list[int]:
    """The frames whose φ steps meet C's stale rotation (:mod:`nbnumba.setup.rules`); each
    frame's φ start is what its worker sets (``-phi start+i*osc``)."""
    from .constants import RTD
    from .setup.rules import phi_sampling, stale_rotation_frames

    phisteps, _, phistep = phi_sampling(opts.phisteps, opts.osc, opts.phistep)
    phi0s = [(plan.start_phi + i * plan.osc) / RTD for i in range(frames)]
    return stale_rotation_frames(phi0s, phisteps, phistep, bool(opts.c_parity))


def frame_command(args: Sequence[str], frame: int, start_phi: float, osc: float,
                  seed: int) -> list[str]:
    """The single-run command line that frame ``frame`` of a series equals.

    Angles in degrees, ``seed`` as typed for frame 0. (The series also keeps
    ``misset_seed`` fixed across frames: give ``-misset_seed`` for an exact match of
    ``-misset random``.)
    """
    return list(args) + ["-phi", repr(start_phi + frame * osc), "-seed", str(seed + frame)]


@dataclass(frozen=True)
class FrameJob:
    """One frame's task: the plan's command with this frame's φ and seed, and its file."""

    frame: int
    args: tuple[str, ...]
    phi: float  # deg
    seed: int  # as typed
    misset_seed: int  # C's internal value
    content: str
    fmt: str
    target: str  # absolute; for .h5 the frame's part file
    cwd: str
    numba_threads: int | None
    # inputs the client read from pipes/FIFOs (path, bytes): a worker cannot read them
    streams: tuple[tuple[str, bytes], ...] = ()
    background: str | None = None  # read by the worker, checked against its sha256
    background_sha256: str | None = None
    noisify: tuple[str, ...] | None = None


@dataclass(frozen=True)
class FrameResult:
    """What a finished frame task reports back to the client."""

    frame: int
    path: str
    size: int
    sha256: str
    header: str = ""  # the frame's SMV header text (geometry)
    error: str | None = None
    geometry: dict | None = None  # DetectorGeometry.to_dict() (nbnumba.formats)
    warnings: tuple[str, ...] = ()  # the format's (miniCBF cannot describe ...)
    max_photons: float | None = None  # the crystal's brightest pixel (before --background)
    photon_knobs: str = ""  # api.photon_knobs of the frame


def _smv_fields(header: str) -> dict[str, str]:
    """KEY=VALUE pairs of an SMV header (the ``;`` dropped)."""
    fields: dict[str, str] = {}
    for line in header.split("\n"):
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.startswith("{"):
            fields[key.strip()] = value.strip().rstrip(";").strip()
    return fields


# values that describe the file layout rather than the experiment
_LAYOUT_KEYS = {"HEADER_BYTES", "DIM", "BYTE_ORDER", "TYPE", "SIZE1", "SIZE2"}


def sha256_file(path: str | os.PathLike) -> tuple[int, str]:
    """(size in bytes, sha256 hex digest) of the file ``path``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def publish_file(tmp: str, target: str) -> None:
    """Make a finished temporary file ``target``: fsync, rename, fsync the folder."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, target)
    from .io import fsync_folder

    fsync_folder(os.path.dirname(target))


def _write_fabio(fmt: str, target: str, data: np.ndarray, header: dict[str, str]) -> None:
    """A CBF (int32) or EDF file, atomically; written under its own name so that the
    bytes (CBF's data block is named after the file) do not depend on the temp name."""
    import fabio.cbfimage
    import fabio.edfimage

    folder, name = os.path.split(target)
    tmp_dir = os.path.join(folder, f".{name}.{uuid.uuid4().hex[:8]}.d.tmp")
    os.mkdir(tmp_dir)
    try:
        tmp = os.path.join(tmp_dir, name)
        if fmt == "cbf":
            fabio.cbfimage.CbfImage(data=data.astype(np.int32), header=header).write(tmp)
        else:
            fabio.edfimage.EdfImage(data=data, header=header).write(tmp)
        publish_file(tmp, target)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


# ---- processing formats (nbnumba.formats): miniCBF frames, the NXmx stack, geometry files


def _frame_geometry(scene, phi_deg: float):
    """The frame's DetectorGeometry, its start angle the series' φ for the frame."""
    from .api import degrees_as_typed
    from .formats import DetectorGeometry

    return DetectorGeometry.from_scene(scene, phi_start_deg=phi_deg,
                                       osc_deg=degrees_as_typed(scene.header["osc"]))


def _formats_hook(job: FrameJob, data: np.ndarray, geometry) -> list[str]:
    """A ``.cbf`` frame as a miniCBF (PILATUS_1.2 header), atomically, under its own name."""
    from .formats.cbf import write_minicbf

    folder, name = os.path.split(job.target)
    tmp_dir = os.path.join(folder, f".{name}.{uuid.uuid4().hex[:8]}.d.tmp")
    os.mkdir(tmp_dir)
    try:
        tmp = os.path.join(tmp_dir, name)
        warnings = write_minicbf(tmp, data, geometry, frame=job.frame)
        publish_file(tmp, job.target)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return warnings


def _write_nxmx_stack(path: str, plan: SeriesPlan, manifest: dict, frames: int) -> None:
    """The ``.h5`` stack as an NXmx master from the frames' verified raw parts."""
    from .formats import DetectorGeometry
    from .formats.nxmx import write_nxmx

    if not manifest.get("geometry"):
        raise SeriesError(f"{manifest.get('template')}: the manifest has no geometry "
                          "(written by an older version); run again with --force")
    geometry = DetectorGeometry.from_dict({**manifest["geometry"],
                                           "phi_start_deg": plan.start_phi,
                                           "osc_deg": plan.osc})
    entries = manifest["frames"]

    def parts():  # each part is its frame's compressed chunk (render_frame)
        for i in range(frames):
            part = _frame_path(plan, i)
            raw = Path(part).read_bytes()
            if hashlib.sha256(raw).hexdigest() != entries[str(i)]["sha256"]:
                raise SeriesError(f"{part}: changed since frame {i} was written; run again",
                                  exit_code=3)
            yield raw

    write_nxmx(path, geometry, parts(), frames, content=plan.content,
               command=list(plan.args), compressed=True)


def write_series_geometry(name: str, run: SeriesRun) -> list[str]:
    """``--geometry-out NAME``: NAME.XDS.INP and NAME.poni for a finished series."""
    from .formats import DetectorGeometry
    from .formats.geometry_files import write_geometry_files

    plan = run.plan
    geometry = DetectorGeometry.from_dict({**run.manifest["geometry"],
                                           "phi_start_deg": plan.start_phi,
                                           "osc_deg": plan.osc})
    folder, base = os.path.split(plan.template)
    if plan.fmt == "h5":
        stem = base[:-len("_master.h5")] if base.endswith("_master.h5") else None
        template = os.path.join(folder, stem + "_??????.h5") if stem else None
        first, last = 1, run.frames
    else:
        template = _FIELD.sub(lambda m: "?" * len(m.group(0).format(frame=0)), base)
        template = os.path.join(folder, template)
        first, last = 0, run.frames - 1
    return write_geometry_files(name, geometry, template=template, first_frame=first,
                                last_frame=last, image_format=plan.fmt)


def write_series_expt(name: str, run: SeriesRun) -> str:
    """``--expt-out NAME``: the DIALS experiment list of a finished series (the true
    crystal at φ = 0, dxtbx's scan from the series' start angle and oscillation),
    pointing at its NXmx master or its frames' template; returns NAME."""
    from .api import Simulation
    from .cargs import parse_args
    from .formats import DetectorGeometry
    from .formats.expt import (
        cell_vectors_angstrom,
        dxtbx_template,
        image_template,
        rotation_experiment_list,
        write_experiment_list,
    )

    plan = run.plan
    geometry = DetectorGeometry.from_dict({**run.manifest["geometry"],
                                           "phi_start_deg": plan.start_phi,
                                           "osc_deg": plan.osc})
    # the crystal every frame starts from (φ = 0): the frames' setup, without a render
    opts, _ = parse_args(list(plan.args))
    opts.misset_seed = plan.misset_seed
    opts.trace_pixel = None
    cell = cell_vectors_angstrom(Simulation.from_options(opts, check=False).scene)
    if plan.fmt == "h5":
        images, image_format, first = plan.template, "nxmx", 1
    else:
        numbered = dxtbx_template(plan.template.format(frame=0))
        images, first = numbered if numbered else (image_template(plan.template), 0)
        image_format = "cbf" if plan.fmt == "cbf" else "other"
    doc = rotation_experiment_list(geometry, cell, images=images, n_images=run.frames,
                                   image_format=image_format, content=plan.content,
                                   first_image=first)
    write_experiment_list(name, doc)
    return name


def render_frame(job: FrameJob) -> FrameResult:
    """Worker task: one frame, computed as a single run would, written atomically; the
    inputs the client read from pipes (``job.streams``) stand for those files here."""
    from .errors import warnings_silenced
    from .inputs import run_inputs

    # ARGS' warnings are the client's to give (series() issues them once): none per frame
    with run_inputs() as inputs, warnings_silenced():
        inputs.preload(dict(job.streams))
        return _render_frame_here(job)


def _detected(job: FrameJob, result):
    """The frame plus ``--background``, through ``--noisify`` (seed: the frame's)."""
    if job.background is None and job.noisify is None:
        return result
    background = None
    if job.background is not None:
        from .detect import read_background
        from .errors import InputFileError

        raw = Path(job.background).read_bytes()
        if hashlib.sha256(raw).hexdigest() != job.background_sha256:
            raise InputFileError(job.background, "changed since the series started "
                                 "(--background); run again")
        background = read_background(job.background, result.scene.fpixels,
                                     result.scene.spixels)
    return result.detected(background, job.noisify, noisify_seed=job.seed)


def _render_frame_here(job: FrameJob) -> FrameResult:
    from . import io as nbio
    from .api import Simulation
    from .cargs import parse_args
    from .constants import RTD
    from .errors import NbError
    from .io import wrap_int32

    use_numba_threads(job.numba_threads)
    if job.cwd and os.path.isdir(job.cwd) and os.getcwd() != job.cwd:
        os.chdir(job.cwd)  # relative input paths in ARGS are the client's
    folder = os.path.dirname(job.target)
    try:
        os.makedirs(folder, exist_ok=True)
        opts, _ = parse_args(list(job.args))
        opts.phi0 = job.phi / RTD  # what "-phi <job.phi>" gives
        opts.seed = wrap_int32(-job.seed)  # what "-seed <job.seed>" gives
        opts.misset_seed = job.misset_seed
        opts.trace_pixel = None
        result = Simulation.from_options(opts, check=False).run()
        header = result.smv_header_bytes().decode("latin-1").split("}")[0]
        max_photons = result.stats.max_I
        result = _detected(job, result)
        geometry = _frame_geometry(result.scene, job.phi)
        if result.noisified is not None:  # the counts hold noisify's ADC offset
            geometry = dataclasses.replace(geometry, adc_offset=result.adc_offset)
        warnings: list[str] = []
        if result.noisified is not None:  # its run's notes (the client saw the flags')
            from .detect import check_noisify_flags

            seen = check_noisify_flags(job.noisify)[1]
            warnings = [w for w in result.noisified.warnings if w not in seen]
        data = result.frame_image(job.content)
        if job.fmt == "img":  # C's own file, byte for byte
            nbio.write_smv(job.target, result.smv_header_bytes(noise=job.content == "noise"),
                           data, durable=True)
        elif job.fmt == "bin":
            nbio.write_float_image(job.target, data, durable=True)
        elif job.fmt == "h5":  # the NXmx file's chunk, compressed here (in parallel)
            from .formats.nxmx import compress_frame

            nbio.atomic_write(job.target, compress_frame(data, job.content,
                                                         geometry.adc_offset), durable=True)
        elif job.fmt == "cbf":
            warnings = _formats_hook(job, data, geometry)
        else:
            fields = {k: v for k, v in _smv_fields(header).items() if k not in _LAYOUT_KEYS}
            _write_fabio(job.fmt, job.target, data, fields)
        size, sha = sha256_file(job.target)
    except (NbError, OSError) as exc:
        # bad input or an unwritable folder: the same on every worker, so no retry
        return FrameResult(job.frame, job.target, 0, "", error=f"frame {job.frame}: {exc}")
    from .api import photon_knobs

    return FrameResult(job.frame, job.target, size, sha, header=header,
                       geometry=geometry.to_dict(), warnings=tuple(warnings),
                       max_photons=max_photons, photon_knobs=photon_knobs(result.scene))


# ------------------------------------------------------------------------- manifest


def _manifest_path(template: str) -> str:
    folder, name = os.path.split(template)
    return os.path.join(folder, _FIELD.sub("#", name) + ".manifest.json")


def write_json(path: str, data: dict) -> None:
    """``data`` as indented, key-sorted JSON in ``path``, written atomically and durably
    (a manifest survives a crash of the machine)."""
    from .io import atomic_write

    atomic_write(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode(),
                 durable=True)


def _read_manifest(path: str) -> dict | None:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        why = " ".join(str(exc).split())
        why = why if len(why) <= 80 else why[:80] + "..."
        raise SeriesError(f"{path}: unreadable manifest ({why}); use --force to start over",
                          exit_code=3) from exc
    if not _manifest_shape_ok(data):
        raise SeriesError(f"{path}: not a series manifest; use --force to start over",
                          exit_code=3)
    return data


def _entry_ok(entry: Any) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("file", ""), str)
            and type(entry.get("size")) is int and isinstance(entry.get("sha256"), str))


def _manifest_shape_ok(data: Any) -> bool:
    """Valid JSON is not enough: every field this module reads has its type."""
    if not isinstance(data, dict) or data.get("kind") != MANIFEST_KIND:
        return False
    frames = data.get("frames", {})
    if not isinstance(frames, dict) or not all(
            isinstance(k, str) and k.isdigit() and _entry_ok(v) for k, v in frames.items()):
        return False
    if not isinstance(data.get("command", {}), dict):
        return False
    if not isinstance(data.get("header", ""), str):
        return False
    return "stack" not in data or _entry_ok(data["stack"])


class ManifestLock:
    """One series at a time per template: an exclusive POSIX lock (``lockf``, which NFS
    carries) on ``.NAME.manifest.json.lock`` next to the manifest, held from before the
    manifest is read until the run is closed; a second series on the same template
    is refused at once (exit 3) instead of silently replacing the first one's frames.
    """

    def __init__(self, manifest_path: str) -> None:
        folder, name = os.path.split(manifest_path)
        self.path = os.path.join(folder, f".{name}.lock")
        self.fd: int | None = None

    def acquire(self) -> ManifestLock:
        import errno
        import fcntl

        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EACCES, errno.EAGAIN):
                    raise SeriesError(f"{self.path} is locked: another series is writing "
                                      "these frames now; wait for it to end (or use "
                                      "another --template)", exit_code=3) from None
                raise
            # the holder before us may have removed the file after we opened it
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except OSError:
                same = False
            if same:
                self.fd = fd
                return self
            os.close(fd)

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # still ours: removed before the lock goes
        os.close(self.fd)
        self.fd = None


def _command_record(plan: SeriesPlan, frames: int) -> dict:
    record = {"args": list(plan.args), "start_phi_deg": plan.start_phi,
              "osc_deg": plan.osc, "seed": plan.seed, "misset_seed": plan.misset_seed,
              "content": plan.content, "format": plan.fmt}
    if plan.fmt == "h5":
        record["frames"] = frames  # the stack's shape
    # only when given, so that the manifests of plain series keep their command
    if plan.background is not None:
        record["background"] = {"file": plan.background, "sha256": plan.background_sha256}
    if plan.noisify is not None:
        record["noisify"] = list(plan.noisify)
    return record


def _frame_path(plan: SeriesPlan, frame: int) -> str:
    if plan.fmt == "h5":
        folder, name = os.path.split(plan.template)
        return os.path.join(folder, f".{name}.parts", f"frame_{frame:06d}.bslz4")
    return plan.template.format(frame=frame)


def _has_complete_frames(manifest: dict, folder: str) -> bool:
    """Whether any frame (or the stack) a manifest records is still there."""
    entries = [manifest.get("stack")] + list(manifest.get("frames", {}).values())
    return any(_complete(os.path.join(folder, e.get("file", "")), e) for e in entries if e)


def file_intact(path: str, size: int | None, sha256: str | None) -> bool:
    """The file ``path`` has ``size`` bytes and that sha256 (size first: cheap); False
    when it cannot be read."""
    try:
        if os.path.getsize(path) != size:
            return False
        return sha256_file(path)[1] == sha256
    except OSError:
        return False


def _complete(path: str, entry: dict | None) -> bool:
    """The file holds what the manifest recorded (size first, then sha256)."""
    return bool(entry) and file_intact(path, entry.get("size"), entry.get("sha256"))


# --------------------------------------------------------------------------- series


def _resolve_plan(args: Sequence[str], opts, template: str, start_phi: float | None,
                  content: str, manifest: dict | None, force: bool,
                  detection: tuple = (None, None, None)) -> SeriesPlan:
    from .api import degrees_as_typed, frame_oscillation

    suffix = os.path.splitext(template)[1].lower()
    fmt = FORMATS.get(suffix)
    if fmt is None:
        raise SeriesError(f"--template {shown(template)}: the suffix must be one of "
                          + ", ".join(sorted(FORMATS)), exit_code=2)
    folder, name = os.path.split(template)
    if _FIELD.search(folder):
        raise SeriesError("--template: the frame number belongs in the file name, "
                          "not in its folder", exit_code=2)
    if fmt == "h5":
        if _FIELD.search(name):
            raise SeriesError("--template: an .h5 series is one file; give its name "
                              "without {frame}", exit_code=2)
    else:
        _check_fields(template)
        try:
            names = {template.format(frame=0), template.format(frame=1)}
        except (KeyError, IndexError, ValueError, TypeError, AttributeError) as exc:
            raise SeriesError(f"--template {shown(template)}: use {{frame}} or "
                              f"{{frame:05d}} for the frame number "
                              f"({shown(str(exc))[1:-1]})", exit_code=2) from exc
        if len(names) < 2:
            raise SeriesError(f"--template {shown(template)} names the same file for every "
                              "frame: put {frame} or {frame:05d} in it", exit_code=2)
    writer = {"cbf": ("fabio",), "edf": ("fabio",), "h5": ("h5py", "hdf5plugin")}.get(fmt)
    if writer:
        _require(f"a {suffix} series", "formats", *writer)
    if content not in CONTENTS:
        raise SeriesError(f"--content must be one of {', '.join(CONTENTS)}", exit_code=2)
    background, background_sha256, noisify = detection
    if noisify is not None:
        # the frames hold noisify's counts (its noise image, or its int image)
        if content == "auto":
            content = "noise"
        if content == "float" or content not in _FORMAT_CONTENTS[fmt]:
            raise SeriesError(f"--noisify: the frames hold noisify's counts, which a "
                              f"{suffix} file with --content {content} cannot (use .cbf, "
                              ".img, .h5 or .edf)", exit_code=2)
    if content == "auto":
        if fmt in ("bin", "edf", "h5"):
            content = "float"
        else:
            content = "noise" if opts.calculate_noise else "int"
    if content not in _FORMAT_CONTENTS[fmt]:
        raise SeriesError(f"a {suffix} file cannot hold the {content} image "
                          f"(it takes: {', '.join(_FORMAT_CONTENTS[fmt])})", exit_code=2)
    seed = -opts.seed
    misset_seed = opts.misset_seed
    recorded = (manifest or {}).get("command", {}) if not force else {}
    # clock seeds: a restarted series keeps the ones it started with
    if not _gives(args, "-seed") and "seed" in recorded:
        seed = int(recorded["seed"])
    if not _gives(args, "-misset_seed") and "misset_seed" in recorded:
        misset_seed = int(recorded["misset_seed"])
    start = degrees_as_typed(opts.phi0) if start_phi is None else float(start_phi)
    return SeriesPlan(tuple(args), start, degrees_as_typed(frame_oscillation(opts)), seed,
                      misset_seed, content, fmt, os.path.abspath(template),
                      background, background_sha256, noisify)


@dataclass
class SeriesRun:
    """A series submitted to a cluster: its frames' files and the futures still running.

    ``paths[i]`` is frame i's file (for .h5 the stack, the same for all); ``futures``
    maps frame → Future of a :class:`FrameResult` for the frames being computed;
    ``skipped`` lists the frames found complete. :meth:`wait` collects the results,
    keeps the manifest and (for .h5) writes the stack.
    """

    plan: SeriesPlan
    frames: int
    client: Any
    skipped: list[int]
    manifest_path: str
    manifest: dict
    cwd: str
    numba_threads: int | None = None
    progress: bool = False
    owns_client: bool = False
    lock: ManifestLock | None = None  # released by close()
    streams: tuple[tuple[str, bytes], ...] = ()  # inputs read from pipes (FrameJob)
    futures: dict[int, Any] = field(default_factory=dict)
    warn: Callable[[str], None] | None = None  # the formats' warnings, once each
    format_warnings: list[str] = field(default_factory=list)
    failures: dict[int, str] = field(default_factory=dict)
    done: bool = False
    _resubmits: dict[int, int] = field(default_factory=dict)
    # the computed frames' brightest pixels (photons), for the photon check at the end
    max_photons: dict[int, float] = field(default_factory=dict)
    _photon_knobs: str = ""

    @property
    def paths(self) -> list[Path]:
        if self.plan.fmt == "h5":
            return [Path(self.plan.template)] * self.frames
        return [Path(self.plan.template.format(frame=i)) for i in range(self.frames)]

    @property
    def computed(self) -> list[int]:
        """Frames computed (not skipped) by this run."""
        return sorted(set(range(self.frames)) - set(self.skipped) - set(self.failures))

    def wait(self, progress: bool | None = None) -> list[Path]:
        """Wait for every frame; raises :class:`SeriesError` if any failed."""
        if not self.done:
            try:
                self._collect(self.progress if progress is None else progress)
            finally:
                self.done = True
                self.close()
        if self.failures:
            first = min(self.failures)
            more = f" (and {len(self.failures) - 1} more)" if len(self.failures) > 1 else ""
            raise SeriesError(f"{self.failures[first]}{more}; finished frames are kept: "
                              "run again to compute the rest", exit_code=3)
        return self.paths

    def close(self) -> None:
        """Cancel what still runs; stop the cluster this run started, if any.

        Called while a signal's exception (KeyboardInterrupt, Terminated) unwinds, it
        kills the workers of its own cluster at once instead of waiting for their
        frames, and removes the temporaries they leave."""
        signalled = isinstance(sys.exc_info()[1], KeyboardInterrupt)
        pending = [f for f in self.futures.values() if not f.done()]
        if pending and self.client is not None and self.client.status == "running" \
                and not (signalled and self.owns_client):
            self.client.cancel(pending)
        try:
            if self.owns_client:
                self.owns_client = False
                _release(self.client, kill=signalled)
                if signalled:
                    self._remove_scratch()
        finally:
            if self.lock is not None:
                self.lock.release()

    def _submit(self, frame: int) -> Any:
        p = self.plan
        job = FrameJob(frame, p.args, p.start_phi + frame * p.osc, p.seed + frame,
                       p.misset_seed, p.content, p.fmt, _frame_path(p, frame), self.cwd,
                       self.numba_threads, self.streams, p.background, p.background_sha256,
                       p.noisify)
        key = f"nbnumba-frame-{frame}-{uuid.uuid4().hex[:12]}"
        # earlier frames first; Dask retries a task that raised, and reschedules one
        # whose worker died (the write is atomic, so a half-done frame leaves no file)
        future = self.client.submit(render_frame, job, key=key, pure=False, retries=2,
                                    priority=-frame)
        self.futures[frame] = future
        return future

    def _collect(self, progress: bool) -> None:
        from distributed import as_completed

        bar = None
        if progress:
            from .progress import progress_bar

            bar = progress_bar(self.frames, "frame", "series", initial=len(self.skipped),
                               leave=True)
        frame_of = {f.key: i for i, f in self.futures.items()}
        # nothing submitted (all frames complete): there may be no client at all
        pending = as_completed(list(self.futures.values())) if self.futures else []
        entries = self.manifest.setdefault("frames", {})
        folder = os.path.dirname(self.manifest_path)
        last_write = time.monotonic()
        try:
            for future in pending:
                frame = frame_of[future.key]
                try:
                    result: FrameResult = future.result()
                except Exception as exc:
                    tries = self._resubmits.get(frame, 0)
                    # KilledWorker: its workers died repeatedly; try a fresh task
                    if type(exc).__name__ == "KilledWorker" and tries < MAX_RESUBMITS:
                        self._resubmits[frame] = tries + 1
                        new = self._submit(frame)
                        frame_of[new.key] = frame
                        pending.add(new)
                        continue
                    self.failures[frame] = f"frame {frame}: {type(exc).__name__}: {exc}"
                    continue
                if result.error:
                    self.failures[frame] = result.error
                    # bad input fails every frame alike: stop the others
                    self.client.cancel([f for f in self.futures.values() if not f.done()])
                    break
                entries[str(frame)] = {"file": os.path.relpath(result.path, folder),
                                       "size": result.size, "sha256": result.sha256}
                self.manifest.setdefault("header", result.header)
                if result.geometry is not None:
                    self.manifest.setdefault("geometry", result.geometry)
                for w in result.warnings:
                    self._warn_once(w)
                if result.max_photons is not None:
                    self.max_photons[frame] = result.max_photons
                    self._photon_knobs = result.photon_knobs
                if bar is not None:
                    bar.update(1)
                if time.monotonic() - last_write > _MANIFEST_INTERVAL_S:
                    write_json(self.manifest_path, self.manifest)
                    last_write = time.monotonic()
        finally:
            if bar is not None:
                bar.close()
            write_json(self.manifest_path, self.manifest)
        if self.failures:
            return
        self._check_photons()
        if self.plan.fmt == "h5":
            if not _complete(self.plan.template, self.manifest.get("stack")):
                self._write_stack()
        else:
            self._remove_scratch()

    def _warn_once(self, text: str) -> None:
        if text not in self.format_warnings:
            self.format_warnings.append(text)
            issue_warnings(text)
            if self.warn is not None:
                self.warn(text)

    def _check_photons(self) -> None:
        """One warning for a series too dark for spots (its brightest pixel under about
        1 photon) or with frames of zeros (api.photon_warning)."""
        from .api import photon_warning

        if not self.max_photons:
            return  # every frame was complete already
        empty = sorted(i for i, m in self.max_photons.items() if not m > 0.0)
        note = photon_warning(max(self.max_photons.values()), self._photon_knobs, empty)
        if note is not None:
            self._warn_once(note)

    def _remove_scratch(self) -> None:
        """Temporaries left by workers that died while writing."""
        for i in range(self.frames):
            folder, name = os.path.split(_frame_path(self.plan, i))
            for pattern in (f".{name}.*.tmp", f"..{name}.*.tmp"):
                for stale in Path(folder).glob(pattern):
                    with contextlib.suppress(OSError):
                        if stale.is_dir():
                            shutil.rmtree(stale)
                        else:
                            stale.unlink()

    def _write_stack(self) -> None:
        """Assemble the parts into the NXmx stack, atomically, then drop the parts."""
        stack = self.plan.template
        folder, name = os.path.split(stack)
        tmp = os.path.join(folder, f".{name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            _write_nxmx_stack(tmp, self.plan, self.manifest, self.frames)
            publish_file(tmp, stack)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        size, sha = sha256_file(stack)
        self.manifest["stack"] = {"file": name, "size": size, "sha256": sha}
        write_json(self.manifest_path, self.manifest)
        shutil.rmtree(os.path.join(folder, f".{name}.parts"), ignore_errors=True)


def series(args: Sequence[str], frames: int, *, client=None, start_phi: float | None = None,
           template: str = "img_{frame:05d}.cbf", content: str = "auto",
           force: bool = False, workers: int | None = None, scheduler: str | None = None,
           wait: bool = True, progress: bool = False,
           warn: Callable[[str], None] | None = None,
           background: str | os.PathLike | None = None,
           noisify: str | Sequence[str] | None = None) -> SeriesRun:
    """Simulate ``frames`` rotation images of ``nanobragg-nb ARGS`` on a Dask cluster.

    Frame ``i`` equals the single run ``ARGS -phi start+i*osc -seed S+i`` (degrees;
    ``start`` from ``start_phi`` or ARGS' -phi, ``osc`` the frame's φ range from ARGS,
    ``S`` ARGS' -seed or a clock seed kept in the manifest). ``client``: a
    ``distributed.Client``; else one on ``scheduler``, else a new LocalCluster of
    ``workers`` processes. Frames already complete are skipped unless ``force``.
    With ``wait=False`` the returned run's ``futures`` are live; call ``run.wait()``.
    ARGS get a single run's input checks here, before any worker starts; their
    warnings (and the formats') are issued once each as Python warnings
    (:class:`~nbnumba.errors.NbnumbaWarning`), and ``warn`` receives them too.

    ``background``: a raw float32 file of photons/pixel (the detector's size, read by
    the workers from the shared file system) added to every frame; ``noisify``:
    noisify.c's flags (a string split as a shell would, or an argv) run on each frame
    (plus background) with noisify ``-seed`` S+i: the frames then hold noisify's counts
    (``nbnumba.detect``; ``Result.detected`` in one process).
    """
    if frames < 1:
        raise SeriesError("--frames must be at least 1", exit_code=2)
    check_main_guard("nbnumba.series", starts_workers=client is None and not scheduler)
    if client is None:
        _require("a series on a Dask cluster", "dask", "dask", "distributed")
    if frames > MAX_FRAMES:
        raise SeriesError(f"--frames {frames}: more than {MAX_FRAMES} frames in one series; "
                          "split it (--start-phi) into several", exit_code=2)
    from .inputs import run_inputs

    with run_inputs() as inputs:
        opts, warnings = parse_checked(args)
    if opts.model_file is not None:
        # the frame writers describe one flat panel, and a .expt's scan would replace each
        # frame's -phi: not yet
        raise SeriesError(f"-{opts.model_kind} {opts.model_file}: a series of a model "
                          "file's detector is not supported yet (run single images, or "
                          "Simulation.frame in Python)", exit_code=2)
    from .validate import detector_shape

    detection, notes = check_detection(background, noisify, lambda: detector_shape(opts))
    warnings = warnings + notes
    issue_warnings(warnings)
    if warn is not None:
        for w in dict.fromkeys(warnings):
            warn(w)
    streams = tuple(inputs.streams().items())  # pipes: the workers get the bytes
    _check_fields(os.fspath(template))  # a usage error before any file is touched
    template = os.path.abspath(os.fspath(template))
    manifest_path = _manifest_path(template)
    made = _missing_folders(os.path.dirname(template))  # the lock makes them
    lock = ManifestLock(manifest_path).acquire()
    try:
        run = _start_series(args, opts, frames, template, manifest_path, lock, client,
                            start_phi, content, force, workers, scheduler, wait, progress,
                            streams, warn, detection)
    except BaseException:
        lock.release()
        for folder in made:  # a refused series leaves no empty folder of its own behind
            with contextlib.suppress(OSError):
                os.rmdir(folder)
        raise
    return run


def _missing_folders(folder: str) -> list[str]:
    """The folders of ``folder``'s path that do not exist yet, deepest first (what
    ``os.makedirs(folder)`` would make)."""
    made: list[str] = []
    folder = os.path.abspath(folder)
    while folder and not os.path.exists(folder):
        made.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return made


def check_detection(background, noisify, shape_of: Callable[[], tuple[int, int]]
                    ) -> tuple[tuple, list[str]]:
    """((background path, its sha256, noisify argv), noisify's warnings on the flags),
    checked once in the client: a regular file of the detector's size (exit 3), flags
    ``--noisify`` takes (exit 2). ``shape_of()`` gives the detector's (slow, fast)
    size; it is called only when there is a background to check.

    Raises
    ------
    SeriesError
        A flag or the file fails its check (the message starts ``--background`` for the
        file's errors).
    """
    from .detect import check_noisify_flags, read_background
    from .errors import InputFileError

    path = sha = flags = None
    notes: list[str] = []
    try:
        if noisify is not None:
            flags, notes = check_noisify_flags(noisify)
        if background is not None:
            path = os.path.abspath(os.fspath(background))
            if not os.path.isfile(path):
                raise InputFileError(os.fspath(background), "is not a regular file (the "
                                     "workers read --background from the file system)")
            read_background(path, *shape_of())
            sha = sha256_file(path)[1]
    except NbError as exc:
        where = "--background " if isinstance(exc, InputFileError) else ""
        raise SeriesError(f"{where}{exc}", exc.exit_code) from exc
    return (path, sha, flags), notes


def _start_series(args, opts, frames, template, manifest_path, lock, client, start_phi,
                  content, force, workers, scheduler, wait, progress, streams,
                  warn, detection=(None, None, None)) -> SeriesRun:
    old = None if force else _read_manifest(manifest_path)
    plan = _resolve_plan(args, opts, template, start_phi, content, old, force, detection)
    command = _command_record(plan, frames)
    if old is not None and old.get("command") != command:
        if _has_complete_frames(old, os.path.dirname(manifest_path)):
            raise SeriesError(f"{manifest_path} records a different series (command, "
                              "start, seed, content or frame count); use --force to "
                              "overwrite it", exit_code=3)
        old = None  # nothing of that series is left: start this one afresh
        plan = _resolve_plan(args, opts, template, start_phi, content, None, force,
                             detection)
        command = _command_record(plan, frames)
    manifest = old or {"kind": MANIFEST_KIND, "version": MANIFEST_VERSION,
                       "command": command, "template": os.path.basename(template),
                       "frames": {}}
    stale = _stale_rotation_frames(plan, opts, frames)
    if stale:  # frames whose files differ from C's -phi run (issue 24): said once
        from .setup.rules import stale_rotation_note

        note = stale_rotation_note(stale)
        issue_warnings(note, CParityWarning)
        if warn is not None:
            warn(note)
    entries = manifest.setdefault("frames", {})
    if plan.fmt == "h5" and _complete(plan.template, manifest.get("stack")):
        skipped = list(range(frames))
    else:
        manifest.pop("stack", None)
        skipped = [i for i in range(frames)
                   if _complete(_frame_path(plan, i), entries.get(str(i)))]
        for key in set(entries) - {str(i) for i in skipped}:
            del entries[key]
    todo = sorted(set(range(frames)) - set(skipped))
    owns = client is None and bool(todo)  # nothing to compute: no cluster needed
    if owns:  # connected before any file is written: a failed connection leaves none
        client = _connect(workers, scheduler)
    try:
        os.makedirs(os.path.dirname(template), exist_ok=True)
        write_json(manifest_path, manifest)
    except BaseException:
        if owns:
            _release(client)
        raise
    run = SeriesRun(plan, frames, client, skipped, manifest_path, manifest, os.getcwd(),
                    progress=progress, owns_client=owns, warn=warn, lock=lock,
                    streams=streams)
    try:
        if todo:
            run.numba_threads = numba_threads_for(client)
        for i in todo:
            run._submit(i)
        if wait:
            run.wait()
    except BaseException:
        run.close()
        raise
    return run


# ---------------------------------------------------------------------------- tiles


def tiles(args: Sequence[str], tiles: Sequence[int] = (2, 2), *, client=None,
          workers: int | None = None, scheduler: str | None = None,
          progress: bool = False, out: Callable[[str], None] | None = None,
          warn: Callable[[str], None] | None = None) -> np.ndarray:
    """Run ``nanobragg-nb ARGS`` with its pixels computed as tiles on a Dask cluster.

    Writes the files the single run writes; ``out`` receives its stdout (default:
    sys.stdout); its warnings are issued as Python warnings
    (:class:`~nbnumba.errors.NbnumbaWarning`) and ``warn`` receives them too. Returns the
    float image
    (float32, [slow, fast]), identical to the single-process one.  For the
    image without files, use ``Simulation.run(engine="tiles", client=..., tiles=...)``.
    """
    from .api import Simulation

    check_main_guard("nbnumba.tiles", starts_workers=client is None and not scheduler)
    if client is None:
        _require("tiles on a Dask cluster", "dask", "dask", "distributed")
    opts, warnings = parse_checked(args)
    issue_warnings(warnings)  # the setup's and the run's: issued by Simulation
    out = out or sys.stdout.write
    sim = Simulation.from_options(opts, warnings, check=False)
    with client_for(client, workers, scheduler) as c:
        result = sim.run("tiles", client=c, tiles=tiles, progress=progress)
    if warn is not None:
        for w in result.warnings:
            warn(w)
    for line in result.stdout.splitlines(keepends=True):
        out(line)
    result.write_default_files()
    return result.image
