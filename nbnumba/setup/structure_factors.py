"""Where nanoBragg.c's structure factors come from: -hkl, an earlier Fdump.bin, or -default_F.

Follows nanoBragg.c's ``main`` at lines 1277 (is there anything to read?),
1745 (interpolation) and 2104 (reading the table and writing ``Fdump.bin``
for next time, as C does).  Nothing here prints: :mod:`nbnumba.setup.report`
words the result; our own notes on C's quirks are in ``warnings``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..config import Options
from ..io import HKLTable

__all__ = ["StructureFactors", "FDUMP_WARN_BYTES", "dump_available", "load_structure_factors",
           "interpolation"]

# a dump file this large is written only after a warning that says so
FDUMP_WARN_BYTES = 256 * 2**20


@dataclass
class StructureFactors:
    """The hkl table and how it was obtained.

    ``origin`` is ``"hkl"`` (read from -hkl), ``"dump"`` (read from an
    earlier ``Fdump.bin``) or ``"default"`` (neither: every F is -default_F).
    ``dump_written`` says whether the table read from -hkl was written to
    ``dumpfilename`` (False: C could not open it and warned).
    """

    table: HKLTable
    origin: str
    dumpfilename: str
    dump_written: bool = False
    warnings: list[str] = field(default_factory=list)


def dump_available(o: Options) -> bool:
    """Without -hkl C reads ``Fdump.bin`` when it can open it (line 1277)."""
    return (o.hklfilename is None and os.path.isfile(o.dumpfilename)
            and os.access(o.dumpfilename, os.R_OK))


def load_structure_factors(o: Options, default_F: float) -> StructureFactors:
    """Fhkl from -hkl (then ``Fdump.bin`` written) or from an earlier ``Fdump.bin`` (line 2104).

    Parameters
    ----------
    o : Options
        Parsed flags: ``hklfilename``, ``dumpfilename``.
    default_F : float
        F of every hkl the file does not list.

    Returns
    -------
    StructureFactors

    Raises
    ------
    InputFileError, ResourceError
        An unreadable or impossibly large table.
    """
    from .. import io as nbio

    if o.hklfilename is None:
        if not dump_available(o):
            return StructureFactors(HKLTable.empty(), "default", o.dumpfilename)
        table = nbio.read_fdump(o.dumpfilename)
        warnings = [f"warning: no -hkl given: structure factors come from {o.dumpfilename} "
                    "left by an earlier run (nanoBragg.c does this silently)", *table.warnings]
        return StructureFactors(table, "dump", o.dumpfilename, warnings=warnings)
    table = nbio.read_hkl(o.hklfilename, default_F)
    warnings = list(table.warnings)
    size = table.fhkl.nbytes
    if size >= FDUMP_WARN_BYTES:
        warnings.append(f"warning: writing the {size / 2**30:.2f} GiB hkl table to "
                        f"{o.dumpfilename} for later runs, as nanoBragg.c does "
                        "(-dump /dev/null skips it)")
    try:
        nbio.write_fdump(o.dumpfilename, table)
        written = True
    except OSError:
        written = False
    return StructureFactors(table, "hkl", o.dumpfilename, dump_written=written,
                            warnings=warnings)


def interpolation(o: Options) -> tuple[int, str | None]:
    """C's -interpolate choice (line 1745): ``(interpolate, auto)``.

    Without -interpolate/-nointerpolate C interpolates tricubically only for
    crystals of at most 2 cells along some axis; ``auto`` is ``"tricubic"`` or
    ``"none"`` when C chose, else ``None``.
    """
    if o.interpolate <= 1:
        return o.interpolate, None
    if float(o.Na) <= 2 or float(o.Nb) <= 2 or float(o.Nc) <= 2:
        return 1, "tricubic"
    return 0, "none"
