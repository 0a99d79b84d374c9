"""Threshold-calibration evaluation of the facecmp pipeline.

Turns a labelled face dataset into the evidence needed before trusting a score cutoff:
how often 0.7 and 0.67 let an impostor through (FMR) and turn a genuine person away (FNMR),
with identity-bootstrap confidence intervals, measured through exactly the pipeline the
service runs (:class:`facecmp.FaceComparer`).

Modules: ``embeddings`` (cached, resumable, local or Ray), ``scoring`` (the one place pairs
are scored; blocked all-vs-all), ``groups`` (breakdowns by label columns), ``run`` (one
evaluation -> summary), ``report`` and ``plots`` (files), ``cli`` (``python -m eval
run|compare``), ``liveness_pad`` (APCER/BPCER of the liveness check), ``datasets`` (dataset
adapters) and ``metrics`` (plain functions on score arrays). Imports ``facecmp`` only; ``training``
imports this package, never the reverse.
"""
