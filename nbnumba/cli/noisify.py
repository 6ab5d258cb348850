"""``noisify-nb``: noisify.c's command line (detector noise, PSF, gain, ADC offset).

Same flags, same files, same stdout as serial noisify.c; ``-add FILE`` (repeatable) is
our extension that sums float images onto the input first. Every failure ends with
one line ``noisify-nb: error: ...`` on stderr and an exit code of
:mod:`nbnumba.errors`, never a traceback; a failed or interrupted run leaves none of
its files behind. See ``specs/noisify.md``.
"""

from __future__ import annotations

import sys

from .common import Job, Outputs, check_companion_outputs, exit_without_teardown

PROG = "noisify-nb"


class _Run(Job):
    prog = PROG

    opts = None

    def execute(self) -> None:
        from ..companions.noisify import parse_args, run
        from ..errors import write_error
        from ..inputs import run_inputs
        from ..io import atomic_write
        from ..progress import notice_when_compiling

        con = self.con
        opts, warnings = parse_args(self.argv)
        self.opts = opts
        for w in warnings:
            con.warn(w)
        # the outputs are checked before anything is read or computed
        for w in check_companion_outputs(opts.outputs(), opts.inputs(), "noisify.c"):
            con.warn(w)
        self.outputs = Outputs([path for _, path in opts.outputs()])
        with run_inputs(), notice_when_compiling(PROG):  # each input file read once
            result = run(opts, out=con.out, warn=con.warn)
        if result.header_note:
            con.warn(result.header_note)
        with self.outputs.recording():  # the clean-up removes only what this run put
            for path, chunks in result.files():
                try:
                    atomic_write(path, chunks)
                except OSError as exc:  # the name as given, not its absolute temporary
                    raise write_error(path, exc) from exc

    def input_flag(self, path: str) -> str | None:
        o = self.opts
        if o is None:
            return None
        if path == o.headerfilename:
            return "-header"
        if path in o.add_files:
            return "-add"
        if path == o.floatfilename:
            return o.floatfile_flag if o.floatfile_flag != "input" else None
        return None


@exit_without_teardown
def main(argv: list[str] | None = None) -> int:
    """Entry point of ``noisify-nb``; returns the exit code (the process exits with it)."""
    from .companion_help import companion_main

    return companion_main(list(sys.argv[1:] if argv is None else argv), PROG, _Run)


if __name__ == "__main__":
    sys.exit(main())
