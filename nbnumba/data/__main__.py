"""``python -m nbnumba.data [NAME...]``: the paths of the shipped ``.stol`` tables."""

from __future__ import annotations

import sys

from . import STOL_TABLES, stol_path

USAGE = """\
usage: python -m nbnumba.data [NAME ...]

Without NAME: every shipped .stol table (name, path, what it holds). With NAMEs: the path
of each (e.g. nonbragg-nb -stol "$(python -m nbnumba.data water)" ...)."""


def main(argv: list[str]) -> int:
    """Print the tables (or the paths of ``argv``'s names); returns the exit code."""
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    if not argv:
        for name, what in STOL_TABLES.items():
            print(f"{name:6s} {stol_path(name)}  {what}")
        return 0
    for name in argv:
        try:
            print(stol_path(name))
        except ValueError as exc:
            print(f"python -m nbnumba.data: error: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
