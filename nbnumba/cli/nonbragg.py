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

from .common import Job, Outputs, check_companion_outputs, exit_without_teardown

PROG = "nonbragg-nb"
__all__ = ["main"]


class _Run(Job):
    prog = PROG

    job = None

    def execute(self) -> None:
        from ..companions.nonbragg import NonBragg
        from ..progress import notice_when_compiling

        con = self.con
        self.job = NonBragg.from_args(self.argv)
        o = self.job.options
        inputs = [(flag, path) for flag, path in (("-stol", o.stolfilename),
                                                  ("-sourcefile", o.sourcefilename),
                                                  ("-img", o.imginfilename)) if path]
        # the outputs are checked before anything is read or computed
        for w in check_companion_outputs(o.outputs(), inputs, "nonBragg.c"):
            con.warn(w)
        self.outputs = Outputs([path for _, path in o.outputs()])
        with notice_when_compiling(PROG):
            result = self.job.run(out=con.out, warn=con.warn)
        with self.outputs.recording():  # the clean-up removes only what this run put
            result.write(warn=con.warn)

    def input_flag(self, path: str) -> str | None:
        return self.job.options.input_flag(path) if self.job is not None else None


@exit_without_teardown
def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (called without ``argv``, it exits the process)."""
    from .companion_help import companion_main

    return companion_main(list(sys.argv[1:] if argv is None else argv), PROG, _Run)


if __name__ == "__main__":
    sys.exit(main())
