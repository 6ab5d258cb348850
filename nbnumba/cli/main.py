"""``nanobragg-nb``: nanoBragg.c's command line, computed with Numba kernels.

Every failure ends with one line ``nanobragg-nb: error: ...`` on stderr and an
exit code from :data:`EXIT_CODES` (README, "Errors and exit codes"), never a
traceback; a run that fails or is interrupted leaves none of its image files
behind (each is written to a temporary name and renamed when complete, and
the ones already renamed are removed again).
"""

from __future__ import annotations

import sys

from ..errors import (
    EXIT_CODES,
    EXIT_FILE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RESOURCES,
    EXIT_TERMINATED,
    EXIT_USAGE,
)
from .common import (
    Console,
    Job,
    Outputs,
    answer_help,
    exit_without_teardown,
    run_job,
    stdout_reader_gone,
)

EXIT_INPUT = EXIT_FILE
__all__ = ["main", "EXIT_CODES", "EXIT_OK", "EXIT_INTERNAL", "EXIT_USAGE", "EXIT_INPUT",
           "EXIT_RESOURCES", "EXIT_INTERRUPTED", "EXIT_TERMINATED"]

PROG = "nanobragg-nb"


class _Run(Job):
    """One invocation: parse, check, simulate (through :class:`nbnumba.Simulation`), write."""

    prog = PROG
    opts = None

    def execute(self, engine: str = "auto", progress: bool | None = None,
                **engine_options) -> None:
        from ..inputs import run_inputs

        with run_inputs():  # each input file read once: pipes and FIFOs work
            self._execute(engine, progress, **engine_options)

    def _execute(self, engine: str, progress: bool | None, **engine_options) -> None:
        from ..api import Simulation
        from ..cargs import parse_args
        from ..validate import output_paths, validate

        con = self.con
        opts, parse_warnings = parse_args(self.argv)
        self.opts = opts
        con.quiet = opts.quiet
        more = validate(opts, parse_warnings, engine=engine)
        for w in parse_warnings + more:
            con.warn(_with_hint(w))
        from ..formats.single import check_extra_outputs, extra_output_paths, write_extra_outputs

        check_extra_outputs(opts)  # before any computation
        self.outputs = Outputs([path for _, path in output_paths(opts)]
                               + extra_output_paths(opts))
        with self.outputs.recording():  # what the clean-up may remove, by identity
            sim = Simulation.from_options(opts, check=False)
            con.out(sim.setup_stdout)  # C's setup, before the pixel loop: its stdout first
            for w in sim.warnings:
                con.warn(w)
            if progress is None:
                progress = bool(opts.progress_meter) and not con.quiet
            result = sim.run(engine, progress=progress, **engine_options)
            for w in result.warnings:
                con.warn(w)
            for line in result.trace:
                con.always(line + "\n")
            con.out(result.report())
            result.write_default_files()
            write_extra_outputs(result, con.out, con.warn)  # -cbffile, -nxmx_out ...

    def input_flag(self, path: str) -> str | None:
        from ..validate import input_flag

        return input_flag(self.opts, path) if self.opts is not None else None


def run_single(argv: list[str], engine: str = "auto", progress: bool | None = None,
               **engine_options) -> int:
    """One ``nanobragg-nb`` run of ``argv`` with ``engine``; returns the exit code.

    Every failure ends in one error line on stderr and its exit code; the images a
    failed run already wrote are removed.
    """
    return run_job(_Run(list(argv), Console(PROG)), engine, progress, **engine_options)


def _first_contact(argv: list[str]) -> int | None:
    """No arguments: the usage listing on stderr, exit 2; -h/-help/--help: on stdout,
    exit 0; --version. None: an ordinary run."""
    from .usage import usage_text

    if not argv:
        sys.stderr.write(usage_text(PROG))
        return EXIT_USAGE
    return answer_help(argv, PROG, lambda: usage_text(PROG))


def _with_hint(warning: str) -> str:
    """"did you mean -distance?" after the warning about a flag that matches nothing."""
    marker = " matches no nanoBragg.c option; nanoBragg.c ignores it"
    if not warning.endswith(marker):
        return warning
    from .usage import did_you_mean

    flag = warning[len("warning: "):-len(marker)]
    guess = did_you_mean(flag)
    return warning + (f" (did you mean {guess}?)" if guess else "")


@exit_without_teardown
def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (see :data:`EXIT_CODES`).

    Called without ``argv`` (the console script, ``python -m``) it is the
    process: it exits with that code instead of returning.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("series", "tiles"):  # Dask subcommands (nbnumba/cli/series.py)
        from .series import main as cluster_main

        try:
            return cluster_main(argv, run_single)
        except BrokenPipeError:  # e.g. `series --help | head`: the output was not wanted
            stdout_reader_gone()
            return EXIT_OK
    if argv and argv[0] == "stills":  # serial crystallography (nbnumba/cli/stills.py)
        from .stills import stills_main

        try:
            return stills_main(argv[1:])
        except BrokenPipeError:
            stdout_reader_gone()
            return EXIT_OK
    first = _first_contact(argv)
    if first is not None:
        return first
    return run_single(argv)


if __name__ == "__main__":
    sys.exit(main())
