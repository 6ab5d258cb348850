"""nanoBragg.c's random-number generators, number for number.

C keeps the generators' memory in function-local statics that every caller shares:
ran1's shuffle table (``iy``, ``iv[32]``), gaussdev's spare deviate (``iset``, ``gset``)
and poidev's cache (``oldm``, ``g``, ``sq``, ``alxm``). Here that memory is one state
object, ``(istate, fstate)``, made by :func:`new_state`; a seed (C's ``long *idum``) is a
1-element int64 array that the generators update in place, as C does through its pointer.

C computes in ``float`` (binary32) with some sub-expressions in ``double``; every value
below is rounded to float32 exactly where C rounds, so streams match C bit for bit
(see ``specs/rng.md``). Line numbers refer to nanoBragg.c.

All kernels use ``error_model="numpy"`` so float division behaves as in C (no Python
ZeroDivisionError checks); ran1 is inlined into its callers because a call per draw
costs more than the draw itself.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .config import Options

# ran1's constants (Park-Miller minimal standard with a Bays-Durham shuffle), lines 3762-3771
IA = 16807
IM = 2147483647
AM = 1.0 / IM
IQ = 127773
IR = 2836
NTAB = 32
NDIV = 1 + (IM - 1) // NTAB
RNMX = 1.0 - 1.2e-7  # a double in C; the float returned in its place is float32(RNMX)

# layout of istate (int64): C's iy, iv[NTAB], and gaussdev's iset
_IY = 0
_IV = 1
_ISET = _IV + NTAB
_ISTATE_LEN = _ISET + 1
# layout of fstate (float32): gaussdev's gset, poidev's oldm, g, sq, alxm
_GSET = 0
_OLDM = 1
_G = 2
_SQ = 3
_ALXM = 4
_FSTATE_LEN = 5

_F1 = np.float32(1.0)
_GAMMLN_COF = np.array(
    [76.18009172947146, -86.50532032941677, 24.01409824083091,
     -1.231739572450155, 0.1208650973866179e-2, -0.5395239384953e-5],
    dtype=np.float64,
)


def new_state() -> tuple[np.ndarray, np.ndarray]:
    """Fresh generator state, as C's statics are at program start."""
    istate = np.zeros(_ISTATE_LEN, dtype=np.int64)  # iy = 0 forces ran1 to initialise
    fstate = np.zeros(_FSTATE_LEN, dtype=np.float32)
    fstate[_OLDM] = -1.0  # poidev's "no mean cached yet"
    return istate, fstate


def make_seed(value: int) -> np.ndarray:
    """A seed cell (C's ``long``) holding ``value``; pass C's already-negated value."""
    return np.array([value], dtype=np.int64)


@njit(cache=True, inline="always", error_model="numpy")
def ran1(seed, state):
    """Uniform deviate in (0, 1) as float32; C's ran1 (line 3773)."""
    # idum and iy are never negative where they are divided, so // is C's truncating /
    ist = state[0]
    idum = seed[0]
    if idum <= 0 or ist[_IY] == 0:
        # Any non-positive seed, or the very first call, reloads the shared table.
        # A positive seed on the first call is replaced by 1, as in C.
        if -idum < 1:
            idum = 1
        else:
            idum = -idum
        for j in range(NTAB + 7, -1, -1):
            k = idum // IQ
            idum = IA * (idum - k * IQ) - IR * k
            if idum < 0:
                idum += IM
            if j < NTAB:
                ist[_IV + j] = idum
        ist[_IY] = ist[_IV]
    k = idum // IQ
    idum = IA * (idum - k * IQ) - IR * k
    if idum < 0:
        idum += IM
    seed[0] = idum
    j = ist[_IY] // NDIV
    ist[_IY] = ist[_IV + j]
    ist[_IV + j] = idum
    temp = np.float32(AM * ist[_IY])  # double product rounded into C's float temp
    if np.float64(temp) > RNMX:
        return np.float32(RNMX)
    return temp


@njit(cache=True, error_model="numpy")
def gaussdev(seed, state):
    """Normal deviate (rms 1) as float32, Box-Muller in pairs; C's gaussdev (line 3673)."""
    return gaussdev_inline(seed, state)


@njit(cache=True, inline="always", error_model="numpy")
def gaussdev_inline(seed, state):
    """:func:`gaussdev`, inlined into the caller: for loops that draw once per pixel,
    where the call costs as much as the draw."""
    ist = state[0]
    fst = state[1]
    if ist[_ISET] == 0:
        while True:
            v1 = np.float32(2.0 * np.float64(ran1(seed, state)) - 1.0)
            v2 = np.float32(2.0 * np.float64(ran1(seed, state)) - 1.0)
            rsq = v1 * v1 + v2 * v2  # float arithmetic in C
            if not (rsq >= 1.0 or rsq == 0):
                break
        rsqd = np.float64(rsq)
        fac = np.float32(math.sqrt(-2.0 * math.log(rsqd) / rsqd))
        fst[_GSET] = v1 * fac
        ist[_ISET] = 1
        return v2 * fac
    ist[_ISET] = 0
    return fst[_GSET]


@njit(cache=True, error_model="numpy")
def gammln(xx):
    """ln Gamma(xx) for float32 xx, computed in double, returned as float32 (line 3741)."""
    x = np.float64(xx)
    y = x
    tmp = x + 5.5
    tmp -= (x + 0.5) * math.log(tmp)
    ser = 1.000000000190015
    for j in range(6):
        y += 1.0
        ser += _GAMMLN_COF[j] / y
    return np.float32(-tmp + math.log(2.5066282746310005 * ser / x))


# below this float32 mean, exp(-xm) rounded to float32 is its Taylor series rounded to
# float32: checked for every float32 in (0, 2^-10) (tests/test_rng.py), and most
# pixels of a simulated image are far below it
EXP_SERIES_LIMIT = 2.0**-10


@njit(inline="always", cache=True)
def exp_neg_float32(x):
    """``float32(exp(-x))`` for a float32 mean ``x`` (a float64 holding it), bit for bit,
    without libm's exp for 0 <= x < 2^-10 (C's poidev computes it once per new mean)."""
    if 0.0 <= x < EXP_SERIES_LIMIT:
        return np.float32(1.0 - x * (1.0 - x * (0.5 - x * (1.0 / 6.0 - x * (1.0 / 24.0)))))
    return np.float32(math.exp(-x))


@njit(inline="always", cache=True, error_model="numpy")
def _poidev_small(xm, seed, state):
    """poidev's branch for a float32 mean below 12: multiply uniforms until the product
    drops to exp(-xm). Inlined into the noise loop, where nearly every pixel takes it."""
    fst = state[1]
    if xm != fst[_OLDM]:
        fst[_OLDM] = xm
        fst[_G] = exp_neg_float32(np.float64(xm))
    g = fst[_G]
    em = np.float32(-1.0)
    t = np.float32(1.0)
    while True:
        em = em + _F1
        t = t * ran1(seed, state)
        if not (t > g):
            break
    return em


_NO_TABLE = np.zeros(0, dtype=np.float32)


@njit(cache=True, error_model="numpy")
def lgamma_table(n):
    """``gammln(float32(k + 1))`` for k < n, float32: the values poidev's rejection loop
    needs for an integer candidate k, computed once instead of per draw."""
    table = np.empty(n, dtype=np.float32)
    for k in range(n):
        table[k] = gammln(np.float32(k + 1.0))
    return table


@njit(cache=True, error_model="numpy")
def poidev(xm, seed, state):
    """Poisson deviate of float32 mean ``xm`` (photons) as float32; C's poidev (line 3616).

    Means above 1e6 use a Gaussian approximation (non-integer result), means below 12
    the product-of-uniforms method, the rest Lorentzian rejection.
    """
    return poidev_table(xm, seed, state, _NO_TABLE)


@njit(cache=True, error_model="numpy")
def poidev_table(xm, seed, state, table):
    """:func:`poidev`, reading gammln(em+1) from ``table`` (:func:`lgamma_table`) for
    candidates em < table.size: the same numbers, about a quarter faster for means of
    tens to thousands of photons."""
    return poidev_table_inline(xm, seed, state, table)


@njit(cache=True, inline="always", error_model="numpy")
def poidev_table_inline(xm, seed, state, table):
    """:func:`poidev_table` inlined into the caller (a per-pixel noise loop)."""
    fst = state[1]
    xm = np.float32(xm)
    xmd = np.float64(xm)
    if xmd > 1.0e6:
        return np.float32(xmd + math.sqrt(xmd) * np.float64(gaussdev(seed, state)))
    if xmd < 12.0:
        return _poidev_small(xm, seed, state)
    if xm != fst[_OLDM]:
        fst[_OLDM] = xm
        fst[_SQ] = np.float32(math.sqrt(2.0 * xmd))
        fst[_ALXM] = np.float32(math.log(xmd))
        fst[_G] = xm * fst[_ALXM] - gammln(np.float32(xmd + 1.0))
    sq = fst[_SQ]
    alxm = fst[_ALXM]
    g = fst[_G]
    while True:
        while True:
            y = np.float32(math.tan(math.pi * np.float64(ran1(seed, state))))
            em = sq * y + xm  # float arithmetic in C
            if not (em < 0.0):
                break
        em = np.float32(np.floor(np.float64(em)))  # exact; avoids an int overflow
        if em < table.size:
            lg = table[int(em)]
        else:
            lg = gammln(np.float32(np.float64(em) + 1.0))
        expo = em * alxm - lg - g
        t = np.float32(0.9 * (1.0 + np.float64(y * y)) * math.exp(np.float64(expo)))
        if not (ran1(seed, state) > t):
            break
    return em


@njit(cache=True, error_model="numpy")
def expdev(seed, state):
    """Exponential deviate (mean 1) as float32; C's expdev (line 3728)."""
    while True:
        dum = ran1(seed, state)
        if dum != 0.0:
            break
    return np.float32(-math.log(np.float64(dum)))


@njit(cache=True, error_model="numpy")
def lorentzdev(seed, state):
    """Lorentzian deviate (FWHM 2) as float32; C's lorentzdev (line 3705)."""
    return np.float32(math.tan(math.pi * (np.float64(ran1(seed, state)) - 0.5)))


@njit(cache=True, error_model="numpy")
def triangledev(seed, state):
    """Triangular deviate (FWHM 1) on (-1, 1) as float32; C's triangledev (line 3712)."""
    value = ran1(seed, state)
    if value > 0.5:
        value = np.float32(math.sqrt(2.0 * (np.float64(value) - 0.5)) - 1.0)
    else:
        value = np.float32(1.0 - math.sqrt(2.0 * np.float64(value)))
    return value


@njit(cache=True, error_model="numpy")
def uniform3Ddev(seed, state):
    """Random unit vector and length in [0.01, 1]: (dx, dy, dz, dr) float32 (line 3412)."""
    dx = np.float32(0.0)
    dy = np.float32(0.0)
    dz = np.float32(0.0)
    dr = np.float32(0.0)
    while dr > 1 or dr < 1e-2:
        dx = np.float32(2.1 * (np.float64(ran1(seed, state)) - 0.5))
        dy = np.float32(2.1 * (np.float64(ran1(seed, state)) - 0.5))
        dz = np.float32(2.1 * (np.float64(ran1(seed, state)) - 0.5))
        dr = np.float32(math.sqrt(np.float64(dx * dx + dy * dy + dz * dz)))
    return dx / dr, dy / dr, dz / dr, dr


@njit(cache=True, error_model="numpy")
def mosaic_rotation_umat(mosaicity, seed, state):
    """Random rotation on a spherical cap: 9 float64, row-major (line 3439).

    ``mosaicity`` (radians) is rounded to float as C's parameter is; the rotation angle
    is mosaicity * (1 - r3^2)^(1/3) radians about a random axis. C's -misset random
    passes 90.0 (radians, though C's comment says degrees) to get a random orientation.
    """
    mos = np.float32(mosaicity)
    r1 = 2.0 * np.float64(ran1(seed, state)) - 1.0
    r2 = 2.0 * np.float64(ran1(seed, state)) - 1.0
    r3 = 2.0 * np.float64(ran1(seed, state)) - 1.0
    xyrad = math.sqrt(1.0 - r2 * r2)
    # C calls powf: both arguments are rounded to float, the result is a float
    rot = np.float64(mos * np.float32(np.float32(1.0 - r3 * r3) ** np.float32(1.0 / 3.0)))
    v1 = xyrad * math.sin(math.pi * r1)
    v2 = xyrad * math.cos(math.pi * r1)
    v3 = r2
    t1 = math.cos(rot)
    t2 = 1.0 - t1
    t3 = v1 * v1
    t6 = t2 * v1
    t7 = t6 * v2
    t8 = math.sin(rot)
    t9 = t8 * v3
    t11 = t6 * v3
    t12 = t8 * v2
    t15 = v2 * v2
    t19 = t2 * v2 * v3
    t20 = t8 * v1
    t24 = v3 * v3
    umat = np.empty(9, dtype=np.float64)
    umat[0] = t1 + t2 * t3
    umat[1] = t7 - t9
    umat[2] = t11 + t12
    umat[3] = t7 + t9
    umat[4] = t1 + t2 * t15
    umat[5] = t19 - t20
    umat[6] = t11 - t12
    umat[7] = t19 + t20
    umat[8] = t1 + t2 * t24
    return umat


def _normalised(x: float, y: float, z: float) -> tuple[float, float, float, float]:
    """(x, y, z) divided by its length when that is positive, and the length."""
    m = math.sqrt(x * x + y * y + z * z)
    if m > 0:
        return x / m, y / m, z / m, m
    return x, y, z, m


def umat2misset(umat) -> tuple[float, float, float]:
    """Missetting angles (rotx, roty, rotz) in radians of a 3x3 rotation, C's umat2misset.

    All double arithmetic (line 3491); rows are normalised, empty rows rebuilt from
    cross products, then the XYZ angles are read off. Not a generator, kept here
    because only -misset random uses it.
    """
    uxx, uxy, uxz, uyx, uyy, uyz, uzx, uzy, uzz = (float(v) for v in np.ravel(umat)[:9])

    uxx, uxy, uxz, mx = _normalised(uxx, uxy, uxz)
    uyx, uyy, uyz, my = _normalised(uyx, uyy, uyz)
    uzx, uzy, uzz, mz = _normalised(uzx, uzy, uzz)
    if mx >= 0 and my <= 0 and mz <= 0:
        uyx, uyy, uyz = 0.0, 1.0, 0.0
        uzx, uzy, uzz = 0.0, 0.0, 1.0
    if mx <= 0 and my >= 0 and mz <= 0:
        uxx, uxy, uxz = 1.0, 0.0, 0.0
        uzx, uzy, uzz = 0.0, 0.0, 1.0
    if mx <= 0 and my <= 0 and mz >= 0:
        uxx, uxy, uxz = 1.0, 0.0, 0.0
        uyx, uyy, uyz = 0.0, 1.0, 0.0

    # C does this repair twice with identical code; the second pass sees the first's rows
    for _ in range(2):
        xcy = _normalised(uxy * uyz - uxz * uyy, uxz * uyx - uxx * uyz, uxx * uyy - uxy * uyx)[:3]
        ycz = _normalised(uyy * uzz - uyz * uzy, uyz * uzx - uyx * uzz, uyx * uzy - uyy * uzx)[:3]
        zcx = _normalised(uzy * uxz - uzz * uxy, uzz * uxx - uzx * uxz, uzx * uxy - uzy * uxx)[:3]
        if mx <= 0:
            uxx, uxy, uxz = ycz
        if my <= 0:
            uyx, uyy, uyz = zcx
        if mz <= 0:
            uzx, uzy, uzz = xcy

    uxx, uxy, uxz, _ = _normalised(uxx, uxy, uxz)
    uyx, uyy, uyz, _ = _normalised(uyx, uyy, uyz)
    uzx, uzy, uzz, _ = _normalised(uzx, uzy, uzz)

    if uzx * uzx < 1.0:
        rotx = math.atan2(uzy, uzz)
        roty = math.atan2(-uzx, math.sqrt(uzy * uzy + uzz * uzz))
        rotz = math.atan2(uyx, uxx)
    else:
        rotx = math.atan2(1, 1) * 4
        roty = math.atan2(1, 1) * 2
        rotz = math.atan2(uxy, -uyy)
    return rotx, roty, rotz


@njit(cache=True, error_model="numpy")
def poisson_noise(values, seed, state):
    """poidev of each value in order (photons in, photons out, float32).

    C's noise loop (line 3244) calls poidev(floatimage[i], &seed) once per ROI pixel in
    row-major order; pass those pixels flattened in that order.
    """
    out = np.empty(values.size, dtype=np.float32)
    flat = values.ravel()
    for i in range(flat.size):
        xm = np.float32(flat[i])
        out[i] = _poidev_small(xm, seed, state) if xm < 12.0 else poidev(xm, seed, state)
    return out


@njit(cache=True, error_model="numpy")
def _fill(kind, n, seed, state):
    """n draws of one scalar generator (0 ran1, 1 gaussdev, 2 expdev, 3 lorentz, 4 triangle)."""
    out = np.empty(n, dtype=np.float32)
    for i in range(n):
        if kind == 0:
            out[i] = ran1(seed, state)
        elif kind == 1:
            out[i] = gaussdev(seed, state)
        elif kind == 2:
            out[i] = expdev(seed, state)
        elif kind == 3:
            out[i] = lorentzdev(seed, state)
        else:
            out[i] = triangledev(seed, state)
    return out


class CRandom:
    """nanoBragg.c's generators with their shared static state (one per C process).

    Seeds are 1-element int64 arrays (see :func:`make_seed`), updated in place.
    """

    def __init__(self) -> None:
        self.state = new_state()

    def ran1(self, seed: np.ndarray) -> np.float32:
        """Uniform deviate in (0, 1)."""
        return np.float32(ran1(seed, self.state))

    def gaussdev(self, seed: np.ndarray) -> np.float32:
        """Normal deviate, rms 1."""
        return np.float32(gaussdev(seed, self.state))

    def poidev(self, xm: float, seed: np.ndarray) -> np.float32:
        """Poisson deviate of mean xm (rounded to float32 as C's parameter is)."""
        return np.float32(poidev(np.float32(xm), seed, self.state))

    def expdev(self, seed: np.ndarray) -> np.float32:
        """Exponential deviate, mean 1."""
        return np.float32(expdev(seed, self.state))

    def lorentzdev(self, seed: np.ndarray) -> np.float32:
        """Lorentzian deviate, FWHM 2."""
        return np.float32(lorentzdev(seed, self.state))

    def triangledev(self, seed: np.ndarray) -> np.float32:
        """Triangular deviate, FWHM 1."""
        return np.float32(triangledev(seed, self.state))

    def uniform3Ddev(self, seed: np.ndarray) -> tuple[np.float32, ...]:
        """(dx, dy, dz, dr): unit vector and its pre-normalisation length."""
        return tuple(np.float32(v) for v in uniform3Ddev(seed, self.state))

    def draws(self, kind: str, n: int, seed: np.ndarray) -> np.ndarray:
        """n float32 draws of 'ran1', 'gaussdev', 'expdev', 'lorentzdev' or 'triangledev'."""
        kinds = ("ran1", "gaussdev", "expdev", "lorentzdev", "triangledev")
        return _fill(kinds.index(kind), int(n), seed, self.state)

    def poisson_noise(self, values: np.ndarray, seed: np.ndarray) -> np.ndarray:
        """poidev of each value in order, float32."""
        vals = np.ascontiguousarray(values, dtype=np.float32)
        return poisson_noise(vals, seed, self.state)

    def mosaic_rotation_umat(self, mosaicity: float, seed: np.ndarray) -> np.ndarray:
        """Random rotation matrix (9 float64, row-major) on a cap of mosaicity radians."""
        return mosaic_rotation_umat(float(mosaicity), seed, self.state)

    def umat2misset(self, umat) -> tuple[float, float, float]:
        """(rotx, roty, rotz) radians of a rotation matrix."""
        return umat2misset(umat)


class RandomStreams:
    """nanoBragg.c's three seeds (noise, mosaic, misset) sharing one generator state.

    C draws the random misset, then the mosaic domains, then the noise image
    from one ran1 state with three seed variables; the order of the draws is
    part of the contract.  Seeds are 1-element int64 arrays that the draws
    update in place, as C's ``long *idum``.
    """

    def __init__(self, opts: Options):
        self.gen = CRandom()
        self.seed = np.array([opts.seed], dtype=np.int64)
        self.mosaic_seed = np.array([opts.mosaic_seed], dtype=np.int64)
        self.misset_seed = np.array([opts.misset_seed], dtype=np.int64)

    def mosaic_rotation_umat(self, mosaicity: float, seed: np.ndarray) -> np.ndarray:
        """A random rotation (9 float64, row-major) on a cap of ``mosaicity`` rad."""
        return self.gen.mosaic_rotation_umat(mosaicity, seed)

    def umat2misset(self, umat) -> tuple[float, float, float]:
        """(rotx, roty, rotz) in rad of a rotation matrix."""
        return self.gen.umat2misset(umat)
