"""Whole-process benchmarks of ``nanobragg-nb`` against nanoBragg.c.

Run from the repository root::

    NB_C_BIN=/path/to/nanoBragg python -m bench          # ours against C, in pairs
    python -m bench                                      # our own times only
    python -m bench --help

See ``bench/suite.py`` for what is measured and ``bench/results/`` for past runs.
"""
