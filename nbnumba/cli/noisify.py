"""``noisify-nb``: noisify.c's command line (detector noise, PSF, gain, ADC offset).

Same flags, same files, same stdout as serial noisify.c; ``-add FILE`` (repeatable) is
our extension that sums float images onto the input first. Every failure ends with
one line ``noisify-nb: error: ...`` on stderr and an exit code of
:mod:`nbnumba.errors`, never a traceback; a failed or interrupted run leaves none of
its files behind. See ``specs/noisify.md``.
"""

from __future__ import annotations

import sys

from .common import Job, Outputs, exit_without_teardown

PROG = "noisify-nb"


class _Run(Job):
    prog = PROG

    opts = None

    def execute(self) -> None:
        from ..companions.noisify import parse_args, run

        con = self.con
        opts, warnings = parse_args(self.argv)
        self.opts = opts
        for w in warnings:
            con.warn(w)
        from ..inputs import run_inputs

        with run_inputs():  # each input file read once: pipes and FIFOs work
            result = run(opts, out=con.out, warn=con.warn)
        files = result.files()
        from ..errors import UsageError
        from ..inputs import same_file

        inputs = [p for p in (opts.floatfilename, opts.headerfilename, *opts.add_files) if p]
        for path, _ in files:
            for name in inputs:
                if same_file(path, name):
                    raise UsageError(f"{path}: that is the input file {name}; an output "
                                     "must not overwrite an input of the run")
        self.outputs = Outputs([path for path, _ in files])
        from ..errors import write_error
        from ..io import atomic_write

        with self.outputs.recording():  # the clean-up removes only what this run put
            for path, chunks in files:
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
