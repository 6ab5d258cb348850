"""``nanobragg-nb stills``: a serial-crystallography dataset (specs/stills.md)."""

from __future__ import annotations

import os
import sys

from ..errors import EXIT_OK, EXIT_USAGE, NbError, UsageError
from .common import sigterm_raises
from .series import cluster_options, error, int_option, report_failure, split_options, usage_error

STILLS_USAGE = """\
usage: nanobragg-nb stills --shots N --template out/run.h5 [--orientations random|FILE|.expt]
                           [--spectrum mono|sase:SPIKES:FWHM_EV|FILE]
                           [--jitter N=S,mosaic=S,flux=S] [--content auto|float|int|noise]
                           [--background FILE] [--noisify 'NOISIFY FLAGS']
                           [--workers K | --scheduler ADDRESS] [--force] [--no-progress]
                           [--explain K] ARGS

Shot k is one still of 'nanobragg-nb ARGS' with its own crystal orientation (uniform
on SO(3), or FILE's k-th A/U matrix or DIALS .expt crystal), spectrum (ARGS' lambda;
SPIKES lines normal about ARGS' energy with FWHM_EV; or FILE's shot k) and jitter
(log-normal spreads of N, mosaic spread and fluence), every draw from -seed and k.
Writes the frames (NXmx stack), the truth (run.expt, run.stream, run_spectra.h5) and a
resumable log. --explain K prints the nanoBragg.c command line of shot K and writes
its -mat and -sourcefile beside the template. --background FILE (float32 photons) is
added to every shot and --noisify runs noisify.c's model on it with the shot's seed.
--workers 0: no Dask, this process. specs/stills.md"""

STILLS_OPTIONS = {"--shots": 1, "--template": 1, "--orientations": 1, "--spectrum": 1,
                  "--jitter": 1, "--content": 1, "--workers": 1, "--scheduler": 1,
                  "--force": 0, "--no-progress": 0, "--explain": 1, "--help": 0,
                  "--background": 1, "--noisify": 1}


def stills_main(argv: list[str]) -> int:
    """``nanobragg-nb stills ...`` (argv without the word ``stills``)."""
    from ..errors import warnings_silenced

    # the library's Python warnings stay silent: the lines are printed from the lists,
    # once each (-quiet: none), as a series prints them
    with sigterm_raises(), warnings_silenced():
        try:
            return _stills_main(argv)
        except KeyboardInterrupt as exc:  # also Terminated (SIGTERM, SIGHUP)
            return report_failure("stills", exc, "; finished shots are kept: run again to go on")


def _stills_main(argv: list[str]) -> int:
    from ..distributed import SeriesError

    try:
        found, args = split_options(argv, STILLS_OPTIONS)
        if "--help" in found:
            print(STILLS_USAGE)
            return EXIT_OK
        shots = int_option(found, "--shots")
        explain_shot = int_option(found, "--explain", minimum=0)
        if shots is None and explain_shot is None:
            raise UsageError("--shots N is required")
        if shots is not None and explain_shot is not None and explain_shot >= shots:
            raise UsageError(f"--explain {explain_shot}: the dataset's shots are 0 to "
                             f"{shots - 1} (--shots {shots})")
        if "--template" not in found:
            raise UsageError("--template out/NAME.h5 is required")
        template = found["--template"][0]
        workers, scheduler = cluster_options(found, min_workers=0)  # 0: no Dask
        options = {"orientations": found.get("--orientations", ["random"])[0],
                   "spectrum": found.get("--spectrum", ["mono"])[0],
                   "jitter": found.get("--jitter", [None])[0]}
        content = found.get("--content", ["auto"])[0]
    except UsageError as exc:
        return usage_error("stills", exc)
    quiet = "-quiet" in args
    warn = None if quiet else (lambda w: sys.stderr.write(w.rstrip("\n") + "\n"))
    if explain_shot is not None:
        code = _explain(args, explain_shot, template, options, content, warn)
        if code == EXIT_OK and ("--background" in found or "--noisify" in found):
            sys.stderr.write("nanobragg-nb stills: note: --background and --noisify act on "
                             "nanoBragg.c's float image afterwards (noisify-nb -add FILE "
                             "... -seed S_k, specs/stills.md)\n")
        return code
    progress = not (quiet or "--no-progress" in found or "-noprogress" in args)
    from ..datasets.runner import stills

    try:
        run = stills(args, shots, template=template, content=content,
                     force="--force" in found, workers=workers, scheduler=scheduler,
                     progress=progress, warn=warn,
                     background=found.get("--background", [None])[0],
                     noisify=found.get("--noisify", [None])[0], **options)
    except (SeriesError, OSError) as exc:  # ours: its exit code; OSError: 3 or 4
        return report_failure("stills", exc)
    if not quiet:
        rate = run.computed / run.elapsed_s if run.elapsed_s > 0 else 0.0
        print(f"stills: {run.computed} shot(s) computed ({rate:.3g} shots/s), "
              f"{run.skipped} already done; frames {run.paths['stack']}, truth "
              + ", ".join(p for p in run.written[1:]))
    return EXIT_OK


def _explain(args, k, template, options, content, warn) -> int:
    from ..datasets.runner import stills_paths
    from ..datasets.stills import command_line, explain, plan_stills
    from ..io import atomic_write

    seed = None
    if not any(a.startswith("-") and "-seed" in a for a in args):
        import json

        try:
            recorded = json.loads(open(stills_paths(template)["manifest"]).read())
            seed = recorded["command"]["seed"]
        except (OSError, ValueError, KeyError, TypeError):
            error("stills", "--explain: give ARGS' -seed (or run the dataset first: its "
                   "manifest records the clock seed)")
            return EXIT_USAGE
    try:
        plan, warnings = plan_stills(args, seed=seed, **options)
        argv, files = explain(plan, k, os.path.abspath(template),
                              noise=content == "noise")
        for path, text in files.items():
            atomic_write(path, text.encode())
    except (NbError, OSError) as exc:  # ours: its exit code; OSError: 3 or 4
        return report_failure("stills", exc)
    if warn is not None:
        for w in dict.fromkeys(warnings):
            warn(w)
    print(command_line(argv))
    return EXIT_OK


__all__ = ["stills_main", "STILLS_USAGE"]
