"""Where nanoBragg.c's structure factors come from: -hkl, an earlier Fdump.bin, or -default_F.

Follows nanoBragg.c's ``main`` at lines 1277 (is there anything to read?),
1745 (interpolation) and 2104 (reading the table and writing ``Fdump.bin``
for next time, as C does).  Nothing here prints: :mod:`nbnumba.setup.report`
words the result; our own notes on C's quirks are in ``warnings``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..config import Options
from ..io import HKLTable

__all__ = ["StructureFactors", "Origin", "FDUMP_WARN_BYTES", "structure_factor_origin",
           "load_structure_factors", "interpolation", "read_stol", "table_from_arrays"]

# where the structure factors come from: -hkl, an earlier Fdump.bin, -default_F alone, or
# arrays in memory (a models.Crystal's miller/amplitudes or dense table)
Origin = Literal["hkl", "dump", "default", "memory"]

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
    origin: Origin
    dumpfilename: str
    dump_written: bool = False
    warnings: list[str] = field(default_factory=list)


def structure_factor_origin(o: Options) -> Origin:
    """Where C takes the structure factors from, decided once as C does (line 1277).

    -hkl if given; else ``Fdump.bin`` (-dump) if C can open it then; else none
    (every F is -default_F).  C opens the dump file at this point and reads
    that handle later, so the decision is not made again.
    """
    from .rules import fdump_to_read

    if o.hklfilename is not None:
        return "hkl"
    if fdump_to_read(o) is not None:
        return "dump"
    return "default"


def load_structure_factors(o: Options, origin: Origin) -> StructureFactors:
    """Fhkl from -hkl (then ``Fdump.bin`` written) or from an earlier ``Fdump.bin`` (line 2104).

    Parameters
    ----------
    o : Options
        Parsed flags: ``hklfilename``, ``dumpfilename``, ``default_F`` (the F
        of every hkl the file does not list).
    origin : {"hkl", "dump", "default"}
        From :func:`structure_factor_origin`.

    Returns
    -------
    StructureFactors

    Raises
    ------
    InputFileError, ResourceError
        An unreadable or impossibly large table (also a ``Fdump.bin`` that
        went away since the origin was decided).
    """
    from .. import io as nbio

    if origin == "default":
        return StructureFactors(HKLTable.empty(), "default", o.dumpfilename)
    if origin == "dump":
        table = nbio.read_fdump(o.dumpfilename)
        warnings = [f"warning: no -hkl given: structure factors come from {o.dumpfilename} "
                    "left by an earlier run (nanoBragg.c does this silently; so do the "
                    "command line and Simulation.from_args, Simulation(**flags) and "
                    "from_models only with dump=)", *table.warnings]
        return StructureFactors(table, "dump", o.dumpfilename, warnings=warnings)
    table = nbio.read_hkl(o.hklfilename, o.default_F)
    warnings = list(table.warnings)
    if not o.fdump:  # the library writes no cache file unless asked (dump=)
        return StructureFactors(table, "hkl", o.dumpfilename, warnings=warnings)
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


def interpolation(o: Options) -> tuple[int, Literal["tricubic", "none"] | None]:
    """C's -interpolate choice (line 1745).

    Returns
    -------
    interpolate : int
        1 to interpolate structure factors tricubically, 0 not to.
    auto : {"tricubic", "none"} or None
        What C chose when neither -interpolate nor -nointerpolate was given
        (tricubic only for crystals of at most 2 cells along some axis), else
        None.
    """
    if o.interpolate <= 1:
        return o.interpolate, None
    if float(o.Na) <= 2 or float(o.Nb) <= 2 or float(o.Nc) <= 2:
        return 1, "tricubic"
    return 0, "none"


def read_stol(o: Options) -> list[str]:
    """Read a -stol/-4stol/-Q table as C does, which never uses it (line 2150).

    Returns our warning that the table is unused (none without the flag).

    Raises
    ------
    SetupExit
        The file holds no data (C stops).
    InputFileError
        It cannot be read.
    """
    if o.stolfilename is None:
        return []
    from ..errors import SetupExit
    from ..io import read_text_file

    columns = read_text_file(o.stolfilename, 2, skip_comments=not o.c_parity)
    if len(columns[0]) == 0:
        raise SetupExit(f"no data in input file {o.stolfilename}")
    return ["warning: -stol/-4stol/-Q data is read but, as in nanoBragg.c, not used by the "
            "simulation"]


def table_from_arrays(hkl, F, default_F: float) -> HKLTable:
    """C's table for reflections given in memory, as if read from an hkl file of them.

    The same table :func:`nbnumba.io.read_hkl` builds from a file listing
    ``h k l F`` in this order (nanoBragg.c lines 2139-2222): ranges
    ``max - min + 1`` per index, one more plane calloc'd (0), cells of the
    ranges start at ``default_F`` when it is nonzero, a repeated hkl keeps its
    last F; ``hkls`` counts the entries.

    Parameters
    ----------
    hkl : (n, 3) int
        Miller indices.
    F : (n,) float
        Amplitudes (electrons).
    default_F : float
        C's ``-default_F``.

    Returns
    -------
    HKLTable

    Raises
    ------
    ValueError
        No reflection, or shapes that do not match.
    ResourceError
        A table larger than the one :func:`nbnumba.io.read_hkl` accepts.
    """
    import numpy as np

    from ..errors import ResourceError
    from ..io import MAX_TABLE_ELEMENTS

    hkl = np.asarray(hkl, dtype=np.int64).reshape(-1, 3)
    F = np.asarray(F, dtype=np.float64).reshape(-1)
    if hkl.shape[0] == 0 or hkl.shape[0] != F.shape[0]:
        raise ValueError(f"{hkl.shape[0]} miller indices and {F.shape[0]} amplitudes: need "
                         "one amplitude per index, at least one")
    mins = [int(v) for v in hkl.min(axis=0)]
    maxs = [int(v) for v in hkl.max(axis=0)]
    hr, kr, lr = (maxs[j] - mins[j] + 1 for j in range(3))
    n = (hr + 1) * (kr + 1) * (lr + 1)
    if n > MAX_TABLE_ELEMENTS:
        raise ResourceError(f"an hkl table of {hr + 1}x{kr + 1}x{lr + 1} doubles "
                            f"({n * 8 / 2**30:.1f} GiB) is too large")
    fhkl = np.zeros((hr + 1, kr + 1, lr + 1), dtype=np.float64)
    if default_F != 0.0:
        fhkl[:hr, :kr, :lr] = default_F
    ih, ik, il = (hkl[:, j] - mins[j] for j in range(3))
    flat = (ih * (kr + 1) + ik) * (lr + 1) + il
    uniq, first = np.unique(flat[::-1], return_index=True)  # the last F of a repeated hkl
    fhkl.reshape(-1)[uniq] = F[::-1][first]
    return HKLTable(fhkl, mins[0], maxs[0], mins[1], maxs[1], mins[2], maxs[2],
                    hr, kr, lr, int(hkl.shape[0]))
