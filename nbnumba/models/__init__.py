"""The experiment as plain models: the one currency between readers and engines.

Readers (nanoBragg.c's flags, CrystFEL ``.geom``, DIALS ``.expt``, Python code)
produce these objects; the setup packs them per panel for the engines.  Vectors
are in nanoBragg's lab frame (MOSFLM convention: the beam along +x) unless a
name says otherwise; lengths are in metres.
"""

from .detector import Detector, Panel

__all__ = ["Detector", "Panel"]
