"""``nonbragg-nb``: nonBragg.c's command line (amorphous scatter), computed with Numba.

Prints C's stdout, writes C's files (float image, SMV int image, SMV noise
image, PGM, the ``-img`` → ``-stolout`` table).  Every failure ends with one
line ``nonbragg-nb: error: ...`` on stderr and an exit code (2 usage, 3 input
or output file, 4 resources, 130 SIGINT, 143 SIGTERM), never a traceback; a
failed or interrupted run leaves none of its files behind.  See
``specs/nonbragg.md``.
"""

from __future__ import annotations

import sys

from ..errors import EXIT_OK
from .common import (
    Console,
    Outputs,
    exit_without_teardown,
    failure,
    python_warnings_to,
    signals_held,
    sigterm_raises,
)

PROG = "nonbragg-nb"
__all__ = ["main"]


class _Run:
    def __init__(self, argv: list[str], console: Console) -> None:
        self.argv = argv
        self.con = console
        self.job = None
        self.outputs: Outputs | None = None

    def execute(self) -> None:
        from ..companions.nonbragg import NonBragg

        con = self.con
        self.job = NonBragg.from_args(self.argv)
        paths = [path for _, path in self.job.options.outputs()]
        self.outputs = Outputs(paths)
        result = self.job.run(out=con.out, warn=con.warn)
        result.write(warn=con.warn)

    def fail(self, exc: BaseException) -> int:
        from ..errors import InputFileError

        with signals_held():
            if self.outputs is not None:
                self.outputs.remove_written()
            opts = self.job.options if self.job is not None else None
            code, message = failure(exc, PROG, opts.input_flag if opts is not None else None)
            if isinstance(exc, InputFileError):
                for line in exc.messages:  # what C prints before it gives up
                    self.con.out(line if line.endswith("\n") else line + "\n")
            self.con.error(message)
        return code


@exit_without_teardown
def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (called without ``argv``, it exits the process)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    con = Console(PROG)
    job = _Run(argv, con)
    with sigterm_raises(), python_warnings_to(con.warn):
        try:
            job.execute()
            con.flush_stdout()
        except (SystemExit, GeneratorExit):
            raise
        except BaseException as exc:  # every failure ends in one line and an exit code
            return job.fail(exc)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
