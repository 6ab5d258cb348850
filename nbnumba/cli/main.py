"""``nanobragg-nb``: nanoBragg.c's command line, computed with Numba kernels."""

from __future__ import annotations

import os
import sys

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_RESOURCES = 4
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("series", "tiles"):  # Dask subcommands (nbnumba/cli/series.py)
        from .series import main as cluster_main

        return cluster_main(argv)
    from ..cli.args import parse_args

    opts, warnings = parse_args(argv)
    quiet = opts.quiet

    def out(text: str) -> None:
        if not quiet:
            sys.stdout.write(text)

    seen: set[str] = set()

    def warn(text: str) -> None:
        if not quiet and text not in seen:
            seen.add(text)
            sys.stderr.write(text.rstrip("\n") + "\n")

    for w in warnings:
        warn(w)
    # C's GetFrame announces the -mask and -img files before anything else
    for name in (opts.maskfilename, opts.imginfilename):
        if name is not None and os.path.isfile(name):
            out(f"reading {name}\n")
    from ..prepare import SetupExit
    from ..simulate import run

    try:
        run(opts, out, warn, progress=bool(opts.progress_meter) and not quiet)
    except SetupExit as exc:
        sys.stdout.flush()
        sys.stderr.write(f"nanobragg-nb: error: {exc}\n")
        return EXIT_USAGE
    sys.stdout.flush()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
