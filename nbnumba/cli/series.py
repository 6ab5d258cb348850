"""``nanobragg-nb series`` and ``nanobragg-nb tiles``: runs spread over a Dask cluster.

Our options are double-dash words and may stand anywhere; every other argument
belongs to nanoBragg's command line (ARGS), which keeps C's meaning.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from ..errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
    NbError,
    UsageError,
    shown,
)
from .common import HELP_FLAGS, failure, sigterm_raises

EXIT_FAILED = EXIT_INTERNAL
# nanobragg-nb's single run: (argv, engine=..., **engine options) -> exit code
SingleRun = Callable[..., int]

SERIES_USAGE = """\
usage: nanobragg-nb series --frames N [--start-phi DEG] [--workers K | --scheduler ADDRESS]
                           [--template 'img_{frame:05d}.cbf'] [--content auto|float|int|noise]
                           [--force] [--no-progress] [--geometry-out NAME]
                           [--expt-out NAME.expt] [--background FILE] [--noisify 'FLAGS']
                           ARGS

Frame i is the run 'nanobragg-nb ARGS -phi START+i*OSC -seed SEED+i' (OSC: the frame's
phi range from ARGS' -osc/-phistep/-phisteps; START: --start-phi or ARGS' -phi; SEED:
ARGS' -seed, else a clock seed kept in the manifest). The template's suffix picks the
format: .cbf (miniCBF) .edf .img (SMV, C's header) .bin (raw float32) .h5 (NXmx).
--geometry-out NAME also writes NAME.XDS.INP and NAME.poni; --expt-out NAME.expt a DIALS
experiment list with the true models (specs/formats.md).
--background FILE adds a raw float32 image of photons/pixel (e.g. nonbragg-nb's) to
every frame; --noisify 'FLAGS' runs noisify.c (noisify-nb FLAGS, e.g. '-readout 3
-psf gauss -psf_fwhm 100 -flicker 0.02') on each frame with -seed SEED+i: the frames
then hold noisify's counts.
Finished frames (checked against the manifest's size and sha256) are skipped unless
--force. Default cluster: a LocalCluster of K = cores worker processes; --workers 0:
the frames are computed in this process (one in-process Dask worker thread)."""

TILES_USAGE = """\
usage: nanobragg-nb tiles --tiles R C [--workers K | --scheduler ADDRESS] [--no-progress] ARGS

Runs 'nanobragg-nb ARGS' with the image computed as R x C tiles on a Dask cluster;
files and stdout are those of the single-process run."""

# our options: name -> number of values
SERIES_OPTIONS = {"--frames": 1, "--start-phi": 1, "--workers": 1, "--scheduler": 1,
                  "--template": 1, "--content": 1, "--force": 0, "--no-progress": 0,
                  "--help": 0, "--geometry-out": 1, "--expt-out": 1, "--background": 1,
                  "--noisify": 1}
# the frame formats dxtbx reads (an .expt must point at readable images)
EXPT_SUFFIXES = (".h5", ".hdf5", ".cbf", ".img")
TILES_OPTIONS = {"--tiles": 2, "--workers": 1, "--scheduler": 1, "--no-progress": 0,
                 "--help": 0}


def split_options(argv: Sequence[str], spec: dict[str, int]) -> tuple[dict, list[str]]:
    """Our ``--name [values]`` (or ``--name=value``) options, and the rest in order.

    ``-h`` and ``-help`` (nanoBragg's help flags) count as ``--help`` where ``spec``
    has it: the subcommand's usage, as the pointer of :func:`usage_error` promises.
    """
    found: dict[str, list[str] | bool] = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        name, eq, inline = a.partition("=")
        if a in HELP_FLAGS and "--help" in spec:
            found["--help"] = True
        elif not a.startswith("--"):
            rest.append(a)
        elif name not in spec:
            raise UsageError(f"unknown option {name}; nanoBragg's flags take one dash")
        elif spec[name] == 0:
            if eq:
                raise UsageError(f"{name} takes no value")
            found[name] = True
        elif eq and spec[name] == 1:
            found[name] = [inline]
        else:
            values = argv[i + 1:i + 1 + spec[name]]
            if eq or len(values) < spec[name]:
                raise UsageError(f"{name} needs {spec[name]} value(s)")
            found[name] = list(values)
            i += spec[name]
        i += 1
    return found, rest


def int_option(found: dict, name: str, minimum: int = 1) -> int | None:
    """The integer value of option ``name`` in ``found`` (None when absent).

    Raises
    ------
    UsageError
        The value is not an integer, or is below ``minimum``.
    """
    if name not in found:
        return None
    text = found[name][0]
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{name}: expected an integer, got {shown(text)}") from None
    if value < minimum:
        raise UsageError(f"{name} must be at least {minimum}")
    return value


def cluster_options(found: dict, min_workers: int = 1) -> tuple[int | None, str | None]:
    """``--workers K`` (at least ``min_workers``) and ``--scheduler ADDRESS``, not both."""
    workers = int_option(found, "--workers", minimum=min_workers)
    scheduler = found["--scheduler"][0] if "--scheduler" in found else None
    if workers is not None and scheduler:
        raise UsageError("give --workers (a new local cluster) or --scheduler, not both")
    return workers, scheduler


def _quiet(args: Sequence[str]) -> bool:
    return "-quiet" in args


def error(command: str, message: str) -> None:
    """``nanobragg-nb COMMAND: error: LINE`` on stderr: one line (a line break in
    ``message`` becomes a space)."""
    from .common import one_line

    sys.stdout.flush()
    sys.stderr.write(f"nanobragg-nb {command}: error: "
                     f"{one_line(message.replace(chr(10), ' '))}\n")
    sys.stderr.flush()


def usage_error(command: str, exc: UsageError) -> int:
    """A refused command line of ``nanobragg-nb COMMAND``: the one error line, with a
    pointer to ``-h`` instead of the usage text itself; returns :data:`EXIT_USAGE`."""
    error(command, f"{exc} (nanobragg-nb {command} -h for the usage)")
    return EXIT_USAGE


def report_failure(command: str, exc: BaseException, kept: str = "") -> int:
    """One error line for ``exc`` (``kept`` appended), and the exit code
    :func:`~nbnumba.cli.common.failure` gives it: SIGINT 130, SIGTERM/SIGHUP 143, an
    error of ours its ``exit_code``, an OSError 3 or 4."""
    code, message = failure(exc, f"nanobragg-nb {command}")
    error(command, message + kept)
    return code


def series_main(argv: list[str]) -> int:
    """``nanobragg-nb series ...`` (argv without the word ``series``)."""
    with sigterm_raises():
        try:
            return _series_main(argv)
        except KeyboardInterrupt as exc:  # also Terminated (SIGTERM, SIGHUP)
            return report_failure("series", exc, "; finished frames are kept: run again to go on")


def _series_main(argv: list[str]) -> int:
    from ..distributed import SeriesError, series

    try:
        found, args = split_options(argv, SERIES_OPTIONS)
        if "--help" in found:
            print(SERIES_USAGE)
            return EXIT_OK
        frames = int_option(found, "--frames")
        if frames is None:
            raise UsageError("--frames N is required")
        start_phi = None
        if "--start-phi" in found:
            text = found["--start-phi"][0]
            try:
                start_phi = float(text)
            except ValueError:
                raise UsageError(f"--start-phi: expected degrees, got {shown(text)}") from None
        workers, scheduler = cluster_options(found, min_workers=0)  # 0: in this process
        template = found.get("--template", ["img_{frame:05d}.cbf"])[0]
        content = found.get("--content", ["auto"])[0]
        geometry_out = found.get("--geometry-out", [None])[0]
        background = found.get("--background", [None])[0]
        noisify = found.get("--noisify", [None])[0]
        expt_out = found.get("--expt-out", [None])[0]
        for flag, value in (("--geometry-out", geometry_out), ("--expt-out", expt_out)):
            if value is not None and not value:
                raise UsageError(f"{flag}: empty file name")
        if expt_out and os.path.splitext(template)[1].lower() not in EXPT_SUFFIXES:
            raise UsageError(f"--expt-out: dxtbx cannot read {shown(template)}'s frames; "
                             f"use a {', '.join(EXPT_SUFFIXES)} template")
    except UsageError as exc:
        return usage_error("series", exc)
    quiet = _quiet(args)
    progress = not (quiet or "--no-progress" in found or "-noprogress" in args)
    single = [a for a in args if a in ("-cbffile", "-geometry_out", "-expt_out", "-panels_out",
                                       "-nxmx_out", "-crystfel_out")]
    if single and not quiet:
        sys.stderr.write(f"nanobragg-nb series: warning: {', '.join(dict.fromkeys(single))} "
                         "ignored: one run's outputs (a series writes its frames as "
                         "--template, and --geometry-out/--expt-out)\n")
    try:  # before any frame: the files written after the series can be written
        _check_after_outputs(geometry_out, expt_out)
    except NbError as exc:
        return report_failure("series", exc)
    try:
        run = series(args, frames, start_phi=start_phi, template=template, content=content,
                     force="--force" in found, workers=workers, scheduler=scheduler,
                     wait=False, progress=progress,
                     warn=None if quiet else lambda w: sys.stderr.write(w.rstrip("\n") + "\n"),
                     background=background, noisify=noisify)
        try:
            run.wait()
        finally:
            run.close()
        if geometry_out:
            from ..distributed import write_series_geometry

            written = write_series_geometry(geometry_out, run)
            if not quiet:
                print(f"series: geometry in {' and '.join(written)}")
        if expt_out:
            from ..distributed import write_series_expt

            write_series_expt(expt_out, run)
            if not quiet:
                print(f"series: DIALS experiment list (true models) in {expt_out}")
    except (SeriesError, OSError) as exc:  # OSError: 3, or 4 for a full disk, naming the file
        return report_failure("series", exc)
    if not quiet:
        print(f"series: {len(run.computed)} frame(s) computed, {len(run.skipped)} already "
              f"complete, as {template} (manifest {run.manifest_path})")
    return EXIT_OK


def _check_after_outputs(geometry_out: str | None, expt_out: str | None) -> None:
    """--geometry-out's two files and --expt-out, written after the last frame, can be
    written (:func:`nbnumba.validate.check_output_files`: exit 3 for a missing or
    unwritable folder, a folder as name) and are not one file (exit 2); checked before
    any frame is computed."""
    from ..formats.geometry_files import geometry_names
    from ..validate import check_output_files

    outputs = [("--geometry-out", name) for name in geometry_names(geometry_out)] \
        if geometry_out else []
    if expt_out:
        outputs.append(("--expt-out", expt_out))
    if check_output_files(outputs, "series"):  # a warning: a name given twice
        raise UsageError(f"--expt-out {expt_out}: that is one of --geometry-out's files; "
                         "two outputs must not write one file")


def tiles_main(argv: list[str], run_single: SingleRun) -> int:
    """``nanobragg-nb tiles ...`` (argv without the word ``tiles``): the single run
    ``run_single(ARGS, engine="tiles", ...)`` with the ``tiles`` engine on a cluster."""
    from ..inputs import run_inputs

    # the client's checks and its run share one reading of each input (pipes work)
    with sigterm_raises(), run_inputs():
        try:
            return _tiles_main(argv, run_single)
        except KeyboardInterrupt as exc:  # also Terminated (SIGTERM, SIGHUP)
            return report_failure("tiles", exc)


def _tiles_main(argv: list[str], run_single: SingleRun) -> int:
    from ..distributed import SeriesError, client_for, kill_local_workers, parse_checked

    try:
        found, args = split_options(argv, TILES_OPTIONS)
        if "--help" in found:
            print(TILES_USAGE)
            return EXIT_OK
        if "--tiles" not in found:
            raise UsageError("--tiles R C is required")
        counts = []
        for text in found["--tiles"]:
            try:
                counts.append(int(text))
            except ValueError:
                raise UsageError(f"--tiles: expected two integers, got {shown(text)}") from None
        if min(counts) < 1:
            raise UsageError("--tiles counts must be at least 1")
        workers, scheduler = cluster_options(found)
    except UsageError as exc:
        return usage_error("tiles", exc)
    progress = not (_quiet(args) or "--no-progress" in found or "-noprogress" in args)
    try:
        parse_checked(args)  # a single run's checks of ARGS, before a cluster starts
    except SeriesError as exc:
        return report_failure("tiles", exc)
    try:
        with client_for(None, workers, scheduler) as client:
            # the tiles' own bar replaces the row bar (and keeps render to one call)
            code = run_single(list(args) + ["-noprogress"], engine="tiles", client=client,
                              tiles=counts, progress=progress)
            if code in (EXIT_INTERRUPTED, EXIT_TERMINATED):  # the run said it: end now
                kill_local_workers(client)
            return code
    except SeriesError as exc:
        return report_failure("tiles", exc)


def main(argv: Sequence[str], run_single: SingleRun) -> int:
    """Dispatch ``series`` / ``tiles`` (``argv[0]``) to their entry points; ``run_single``
    is ``nanobragg-nb``'s single run (passed in, so that this module needs no import of
    ``cli.main``)."""
    from ..errors import warnings_silenced

    argv = list(argv)
    # the library's Python warnings stay silent: the lines are printed from the lists
    with warnings_silenced():
        if argv and argv[0] == "series":
            return series_main(argv[1:])
        if argv and argv[0] == "tiles":
            return tiles_main(argv[1:], run_single)
    raise ValueError(f"not a cluster subcommand: {argv[:1]}")
