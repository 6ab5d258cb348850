"""The experiment as plain models: the one currency between readers and engines.

Readers (nanoBragg.c's flags, CrystFEL ``.geom``, DIALS ``.expt``, Python code)
produce these objects; the setup packs them per panel for the engines.  Vectors
are in nanoBragg's lab frame (MOSFLM convention: the beam along +x) unless a
name says otherwise; lengths are in metres, angles in radians, cell lengths in
Å, unless a name says otherwise (see ``specs/models.md``).
"""

from .beam import Beam, Spectrum
from .crystal import Crystal, StructureFactorTable
from .detector import Detector, Panel, unit_vector
from .experiment import Experiment
from .scan import Goniometer, Scan

__all__ = ["Beam", "Crystal", "Detector", "Experiment", "Goniometer", "Panel", "Scan",
           "Spectrum", "StructureFactorTable", "unit_vector"]
