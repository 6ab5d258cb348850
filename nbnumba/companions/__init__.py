"""The companions of nanoBragg.c in bl831/nanoBragg: ``nonBragg.c`` (amorphous scatter:
water, air, ice) and ``noisify.c`` (detector noise, PSF), plus a float-image adder.

Each companion has its options and C-faithful argv parser, a setup that resolves
C's rules, Numba kernels and a Python API; the command-line programs live in
:mod:`nbnumba.cli`.  Importing this package is cheap (no numba).
"""
