"""Host-side vector helpers with nanoBragg.c's conventions.

Vectors are 4-element lists ``[magnitude, x, y, z]`` as in C, so the setup
code reads like the C it reproduces; plain Python floats are IEEE doubles
and ``math`` calls libm, so results match C bit for bit.
"""

from __future__ import annotations

import math

Vec = list  # [magnitude, x, y, z]


def vec(x: float, y: float, z: float) -> Vec:
    return [0.0, float(x), float(y), float(z)]


def magnitude(v: Vec) -> float:
    """|v|, also stored in v[0] as C does."""
    v[0] = math.sqrt(v[1] * v[1] + v[2] * v[2] + v[3] * v[3])
    return v[0]


def unitize(v: Vec, out: Vec) -> float:
    """Normalise v into out (may be the same list); returns the old magnitude."""
    mag = magnitude(v)
    if mag != 0.0:
        out[1] = v[1] / mag
        out[2] = v[2] / mag
        out[3] = v[3] / mag
    else:
        out[0] = out[1] = out[2] = out[3] = 0.0
    return mag


def vector_scale(v: Vec, out: Vec, scale: float) -> float:
    out[1] = scale * v[1]
    out[2] = scale * v[2]
    out[3] = scale * v[3]
    return magnitude(out)


def vector_rescale(v: Vec, out: Vec, new_magnitude: float) -> float:
    oldmag = magnitude(v)
    if oldmag <= 0.0:
        oldmag = 1.0
    out[1] = new_magnitude / oldmag * v[1]
    out[2] = new_magnitude / oldmag * v[2]
    out[3] = new_magnitude / oldmag * v[3]
    return magnitude(out)


def cross_product(x: Vec, y: Vec, z: Vec) -> Vec:
    z1 = x[2] * y[3] - x[3] * y[2]
    z2 = x[3] * y[1] - x[1] * y[3]
    z3 = x[1] * y[2] - x[2] * y[1]
    z[1], z[2], z[3], z[0] = z1, z2, z3, 0.0
    return z


def dot_product(x: Vec, y: Vec) -> float:
    return x[1] * y[1] + x[2] * y[2] + x[3] * y[3]


def rotate(v: Vec, out: Vec, phix: float, phiy: float, phiz: float) -> Vec:
    """Rotate about x, then y, then z (radians), skipping zero angles (C line 3311)."""
    new_x, new_y, new_z = v[1], v[2], v[3]
    if phix != 0:
        ryy = math.cos(phix)
        ryz = -math.sin(phix)
        rzy = math.sin(phix)
        rzz = math.cos(phix)
        rotated_y = new_y * ryy + new_z * ryz
        rotated_z = new_y * rzy + new_z * rzz
        new_y, new_z = rotated_y, rotated_z
    if phiy != 0:
        rxx = math.cos(phiy)
        rxy = 0.0
        rxz = math.sin(phiy)
        rzx = -math.sin(phiy)
        rzy = 0.0
        rzz = math.cos(phiy)
        rotated_x = new_x * rxx + new_y * rxy + new_z * rxz
        rotated_z = new_x * rzx + new_y * rzy + new_z * rzz
        new_x, new_z = rotated_x, rotated_z
    if phiz != 0:
        rxx = math.cos(phiz)
        rxy = -math.sin(phiz)
        ryx = math.sin(phiz)
        ryy = math.cos(phiz)
        rotated_x = new_x * rxx + new_y * rxy
        rotated_y = new_x * ryx + new_y * ryy
        new_x, new_y = rotated_x, rotated_y
    out[1], out[2], out[3] = new_x, new_y, new_z
    return out


def rotate_axis(v: Vec, out: Vec, axis: Vec, phi: float) -> Vec:
    """Rotate v about a unit axis by phi radians (C line 3366)."""
    sinphi = math.sin(phi)
    cosphi = math.cos(phi)
    dot = (axis[1] * v[1] + axis[2] * v[2] + axis[3] * v[3]) * (1.0 - cosphi)
    t1 = axis[1] * dot + v[1] * cosphi + (-axis[3] * v[2] + axis[2] * v[3]) * sinphi
    t2 = axis[2] * dot + v[2] * cosphi + (+axis[3] * v[1] - axis[1] * v[3]) * sinphi
    t3 = axis[3] * dot + v[3] * cosphi + (-axis[2] * v[1] + axis[1] * v[2]) * sinphi
    out[1], out[2], out[3] = t1, t2, t3
    return out


def rotate_umat(v: Vec, out: Vec, umat) -> Vec:
    """Apply a row-major 3×3 rotation matrix (C line 3384)."""
    x = umat[0] * v[1] + umat[1] * v[2] + umat[2] * v[3]
    y = umat[3] * v[1] + umat[4] * v[2] + umat[5] * v[3]
    z = umat[6] * v[1] + umat[7] * v[2] + umat[8] * v[3]
    out[1], out[2], out[3] = x, y, z
    return out
