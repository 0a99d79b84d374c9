"""Threshold-calibration evaluation of the facecmp pipeline.

Turns a labelled face dataset into the evidence needed before trusting a score cutoff:
how often 0.7 and 0.67 let an impostor through (FMR) and turn a genuine person away (FNMR),
with identity-bootstrap confidence intervals, measured through exactly the pipeline the
service runs (:class:`facecmp.FaceComparer`).

From Python (or Jupyter): ``ev = eval.evaluate("photos/", mode="fast", group_by=["age:min"])``,
then ``ev.at(0.7)``, ``ev.by_group("age")`` (pandas DataFrames), ``ev.det()`` (a matplotlib
Figure), ``ev.report("out/")`` (:mod:`eval.api`; the CLI is a thin layer over it).

Modules: ``api`` (:func:`evaluate` and :class:`Evaluation`), ``datasets`` (dataset adapters),
``embeddings`` (cached, resumable, local or Ray), ``scoring`` (the one place pairs are scored;
blocked all-vs-all), ``groups`` (breakdowns by label columns), ``metrics`` (plain functions on
score arrays: rates, curves, intervals), ``run`` (one evaluation -> summary), ``report`` and
``plots`` (files), ``cli`` (``python -m eval run|compare``), ``devdata`` (where the project's
development data, ../shared, lives); and two scripts on the liveness check, ``liveness_pad``
(APCER/BPCER on liveness-dev) and ``liveness_frames`` (faces that are not the subject). Imports
``facecmp`` only; ``training`` imports this package (and holds the calibration's held-out
measurement, ``training.heldout``, on ``metrics``), never the reverse.
"""

__all__ = ["Evaluation", "evaluate"]


def __getattr__(name: str):
    # eval.api imports matplotlib (an extra): loaded when the API is first used, so that
    # `from eval import metrics` (training, the tests) does not need it.
    if name in __all__:
        from eval import api

        return getattr(api, name)
    raise AttributeError(f"module 'eval' has no attribute {name!r}")
