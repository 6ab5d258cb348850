"""``nb-float-add A.bin B.bin [C.bin ...] -o SUM.bin``: sum raw float32 images.

Any other command line is bl831 ``float_add``'s (``a.bin b.bin [out.bin] -scale1 S
-scale2 S -offset O -outoffset O -outscale S -header N -normalize -histogram -ignore V
-outfile/-output F``): its stdout and its output file, byte for byte. ``-o`` with any
other option is refused (exit 2: float_add would ignore ``-o`` and sum two inputs), as
is a second output name; what float_add ignores or reads as 0 is a warning line.

``SUM = ((A + B) + C)`` in float32, element by element, in argument order (what
bl831's ``float_add`` does; the pipeline cases' combine rule). Errors: one line on
stderr, exit 2 (usage), 3 (a file) or 4 (full disk, stdout included); the output is
written atomically and removed again if the run fails after writing it (unless it
replaced one of the inputs).
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import EXIT_OK, EXIT_USAGE
from .common import Console, Job, Outputs, exit_without_teardown, run_job, stdout_reader_gone
from .usage import package_version

PROG = "nb-float-add"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description="Sum raw float32 images (photons/pixel) in float32, left "
                               "to right: out = ((a + b) + c) ...",
        epilog="bl831 float_add's command lines also work (any other option, or no -o): "
               "'nb-float-add a.bin b.bin out.bin -scale1 1 -scale2 0.5 -outfile c.bin', "
               "with its stdout and file (specs/noisify.md)")
    p.add_argument("inputs", nargs="+", help="float32 little-endian images, same size")
    p.add_argument("-o", "--output", required=True, help="the sum (raw float32)")
    p.add_argument("--version", action="version",
                   version=f"{PROG} (nbnumba) {package_version()}")
    return p


class _Run(Job):
    prog = PROG

    def execute(self, inputs: list[str], output: str) -> None:
        from ..companions.floatadd import float_add_files
        from ..errors import write_error
        from ..inputs import run_inputs, same_file
        from ..io import write_float_image
        from ..validate import check_output_files

        # the output is checked before any input is read (a FIFO may block, a sum of
        # large images takes a while); it may be one of the inputs (accumulating)
        for w in check_output_files([("-o", output)], "float_add"):
            self.con.warn(w)
        with run_inputs():  # each input read once, bounded: pipes work, devices end
            total = float_add_files(inputs)
        # a failure after the write (stdout full, Ctrl-C) removes the sum, unless it
        # replaced one of the inputs (``nb-float-add sum.bin next.bin -o sum.bin``)
        in_place = any(same_file(output, name) for name in inputs)
        self.outputs = Outputs([] if in_place else [output])
        with self.outputs.recording():
            try:
                write_float_image(output, total)
            except OSError as exc:  # the name as given, not its absolute temporary
                raise write_error(output, exc) from exc
            n = len(inputs)
            self.con.out(f"wrote {output}: {total.size} pixels, sum of {n} "
                         f"image{'s' if n != 1 else ''}\n")
            try:
                sys.stdout.flush()  # a full stdout fails the run here, inside the clean-up
            except BrokenPipeError:  # the reader went away (| head): not a failure
                stdout_reader_gone()
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror, "stdout") from exc


class _Bl831Run(Job):
    """bl831 ``float_add``'s command line: its file results and stdout."""

    prog = PROG

    def execute(self) -> None:
        from ..companions.floatadd import (
            FLOAT_ADD_USAGE,
            parse_float_add_args,
            run_float_add,
        )
        from ..errors import SetupExit, write_error
        from ..inputs import run_inputs, same_file
        from ..io import atomic_write
        from ..validate import check_output_files

        con = self.con
        o = parse_float_add_args(self.argv)
        for name, why in o.skipped:  # C's perror, and it goes on without the file
            con.warn(f"warning: {name}: {why} (float_add skips a file it cannot open)")
        for line in o.stdout:
            con.out(line)
        if o.input1 is not None:  # else the error line says what is missing
            for w in o.warnings:
                con.warn(w)
        if o.input1 is None:
            con.out(FLOAT_ADD_USAGE)
            raise SetupExit("no input: give file1.bin [file2.bin] [outfile.bin] (names "
                            "ending in .bin or .map, as bl831 float_add takes them)")
        for w in check_output_files([("output", o.output)], "float_add"):
            con.warn(w)
        if o.output in self.argv and os.path.isfile(o.output) and not any(
                "-outfile" in a or "-output" in a for a in self.argv):
            # one forgotten -o away from `nb-float-add A B C -o SUM`, which sums three
            con.warn(f"warning: {o.output}: bl831 float_add takes a third file name as its "
                     "output and replaces the file there (nb-float-add A B C -o SUM sums "
                     "three images)")
        with run_inputs():  # each input read once, bounded
            result = run_float_add(o)
        for line in result.stdout[len(o.stdout):]:
            con.out(line)
        in_place = any(same_file(o.output, name) for name in (o.input1, o.input2) if name)
        self.outputs = Outputs([] if in_place else [o.output])
        with self.outputs.recording():
            try:
                atomic_write(o.output, result.data)
            except OSError as exc:
                raise write_error(o.output, exc) from exc


def _split_forms(argv: list[str]) -> tuple[bool, list[str]]:
    """(``-o``/``--output`` given, the other options) of ``argv``."""
    ours = {"-o", "--output"}
    has_output = any(a in ours or a.startswith("--output=") for a in argv)
    others = [a for a in argv if a.startswith("-") and a not in ours
              and not a.startswith("--output=")]
    return has_output, others


def bl831_style(argv: list[str]) -> bool:
    """Whether ``argv`` is bl831 float_add's command line rather than ours
    (``A B [C ...] -o SUM``): ours has ``-o``/``--output`` and no other option."""
    if any(a in HELP for a in argv):
        return False
    has_output, others = _split_forms(argv)
    return not has_output or bool(others)


def mixed_forms(argv: list[str]) -> str | None:
    """The error line for ``-o SUM`` given with another option, else None: the two forms
    sum differently (ours any number of inputs, float_add two, ignoring ``-o`` and taking
    a third name as its output), so that line would drop inputs without a word."""
    has_output, others = _split_forms(argv)
    if not has_output or not others or any(a in HELP for a in argv):
        return None
    return (f"-o SUM takes no other option ({' '.join(dict.fromkeys(others))}): "
            "'nb-float-add A B C ... -o SUM' sums any number of inputs; bl831 float_add's "
            "options go with its own form, 'A.bin B.bin [OUT.bin] -scale1 S ...' (two inputs)")


HELP = ("-h", "--help", "--version")


@exit_without_teardown
def main(argv: list[str] | None = None) -> int:
    """Entry point of ``nb-float-add``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    mixed = mixed_forms(argv)
    if mixed is not None:
        Console(PROG).error(mixed)
        return EXIT_USAGE
    if bl831_style(argv):
        return run_job(_Bl831Run(argv, Console(PROG)))
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse printed its usage line
        return EXIT_OK if exc.code in (0, None) else EXIT_USAGE
    return run_job(_Run(argv, Console(PROG)), args.inputs, args.output)

if __name__ == "__main__":
    sys.exit(main())
