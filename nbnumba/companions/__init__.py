"""The companions of nanoBragg.c in bl831/nanoBragg: ``nonBragg.c`` (amorphous scatter).

Each companion has its options and C-faithful argv parser, a setup that resolves
C's rules, a Numba kernel and a Python API; the command-line programs live in
:mod:`nbnumba.cli`.  Importing this package is cheap (no numba).
"""
