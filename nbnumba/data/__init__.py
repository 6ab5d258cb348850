"""Data shipped with nbnumba: nonBragg.c's ``.stol`` tables for water, air and ice.

The tables are James Holton's, from bl831/nanoBragg (https://github.com/bl831/nanoBragg,
MIT License), copied verbatim; see ``README.md`` in this folder.  Every realistic frame
adds solvent and air scatter (``nonbragg-nb -stol water.stol``) to the spots::

    import nbnumba as nb
    from nbnumba.data import stol_path

    water = nb.NonBragg(stol=stol_path("water"), distance=100, detpixels=512).run()

On the command line: ``nonbragg-nb -stol "$(python -m nbnumba.data water)" ...``;
``python -m nbnumba.data`` lists the tables and their paths.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["STOL_TABLES", "stol_path"]

# name -> what it is
STOL_TABLES = {
    "water": "liquid water (10000 rows, stol 0 to 0.5 /A, F(0) = 2.57)",
    "air": "air (100 rows, stol 0 to 0.5 /A, F(0) = 14.1)",
    "ice": "ice (288 rows, stol 0 to 0.498 /A, sparse)",
}


def stol_path(name: str) -> Path:
    """The path of a shipped ``.stol`` table, for nonBragg's ``-stol``.

    Parameters
    ----------
    name : str
        ``"water"``, ``"air"`` or ``"ice"`` (``"water.stol"`` too).

    Returns
    -------
    pathlib.Path
        The table's file (two columns: sin(θ)/λ in 1/Å, F in electrons).

    Raises
    ------
    ValueError
        Another name (the message lists the tables).
    """
    key = str(name).removesuffix(".stol").lower()
    if key not in STOL_TABLES:
        raise ValueError(f"no shipped .stol table called {name!r} (there are: "
                         f"{', '.join(STOL_TABLES)})")
    # a regular install (a wheel, an editable or source tree) keeps package data as files
    return Path(__file__).resolve().with_name(f"{key}.stol")
