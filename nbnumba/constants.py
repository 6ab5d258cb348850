"""Physical and numerical constants, one copy each, with nanoBragg.c's literal values."""

from __future__ import annotations

M_PI = 3.14159265358979323846
M_1_PI = 0.31830988618379067154  # C's literal, so RTD is bit-identical to C's
RTD = 180.0 * M_1_PI  # C: #define RTD (180.0*M_1_PI)
AVOGADRO = 6.02214179e23
R_E_SQR = 7.94079248018965e-30  # Thomson cross section, m^2
WATER_F = 2.57
WATER_MW = 18.0
DBL_MIN = 2.2250738585072014e-308
