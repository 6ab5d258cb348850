"""One render's worth of models: beam, detector, crystal and scan."""

from __future__ import annotations

from dataclasses import dataclass, field

from .beam import Beam
from .crystal import Crystal
from .detector import Detector
from .scan import Scan

__all__ = ["Experiment"]


@dataclass(frozen=True, eq=False)
class Experiment:
    """What one image needs: :class:`Beam`, :class:`Detector`, :class:`Crystal`, :class:`Scan`.

    :meth:`nbnumba.Simulation.from_models` renders it (every panel, every
    engine); ``Simulation.from_args(argv).experiment`` is nanoBragg.c's command
    line resolved into these models.  Use :func:`dataclasses.replace` to vary
    one part (``replace(exp, detector=other)``).
    """

    beam: Beam
    detector: Detector
    crystal: Crystal
    scan: Scan = field(default_factory=Scan)
