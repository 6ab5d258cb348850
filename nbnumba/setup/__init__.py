"""nanoBragg.c's setup: from parsed options to the scene an engine renders.

``prepare(options, rng)`` runs the named steps in C's order (``detector``,
``sampling``, ``crystal``, ``structure_factors``, ``sources``) and packs the
result (:class:`~nbnumba.setup.scene.Scene`); ``report.setup_report`` renders
the stdout C prints meanwhile from the resolved setup; ``rules`` holds C's
resolution rules that the input checks (:mod:`nbnumba.validate`) share.
"""
