"""``nb-float-add A.bin B.bin [C.bin ...] -o SUM.bin``: sum raw float32 images.

``SUM = ((A + B) + C)`` in float32, element by element, in argument order (what
bl831's ``float_add`` does; the pipeline cases' combine rule). Errors: one line on
stderr, exit 2 (usage) or 3 (a file); the output is written atomically.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import EXIT_OK, EXIT_USAGE
from .common import Console, exit_without_teardown, failure

PROG = "nb-float-add"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description="Sum raw float32 images (photons/pixel) in float32, left "
                               "to right: out = ((a + b) + c) ...")
    p.add_argument("inputs", nargs="+", help="float32 little-endian images, same size")
    p.add_argument("-o", "--output", required=True, help="the sum (raw float32)")
    return p


@exit_without_teardown
def main(argv: list[str] | None = None) -> int:
    """Entry point of ``nb-float-add``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    con = Console(PROG)
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse printed its usage line
        return EXIT_OK if exc.code in (0, None) else EXIT_USAGE
    try:
        from ..companions.floatadd import float_add_files
        from ..io import write_float_image

        total = float_add_files(args.inputs)
        write_float_image(args.output, total)
        con.out(f"wrote {args.output}: {total.size} pixels, sum of {len(args.inputs)} images\n")
    except (KeyboardInterrupt, Exception) as exc:
        code, message = failure(exc, PROG)
        con.error(message)
        return code
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
