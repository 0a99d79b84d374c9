"""Each fact of the score contract and each mode name is stated once (facecmp/contract.py,
facecmp/modes.py); every surface that shows one — library, CLI, service settings and schema
text, eval, the packaged calibrations — shows that one."""
from __future__ import annotations

import inspect
import json
from importlib import resources

import pytest

from eval import metrics
from eval.cli import build_parser as eval_parser
from eval.run import EvaluationOptions
from facecmp.cli import build_parser as cli_parser
from facecmp.contract import (
    ANCHOR_FMR, ANCHOR_SCORE, DEFAULT_SCORE_CUTOFF, SCORE_PER_DECADE,
)
from facecmp.modes import MODES
from facecmp.pipeline import FaceComparer
from facecmp.settings import FacecmpSettings
from serve.schemas import CompareResponse, FaceCompareRequest, ImageSetCompareRequest, compare_examples
from serve.settings import Settings


def test_every_surface_defaults_to_the_one_score_cutoff():
    library = inspect.signature(FaceComparer.compare).parameters["min_similarity_score"].default
    cli = cli_parser().parse_args(["compare", "a.jpg", "b.jpg"]).min_score
    service = Settings.model_fields["min_similarity_score"].default
    assert library == cli == service == compare_examples()["face_pair"]["value"]["min_similarity_score"] \
        == DEFAULT_SCORE_CUTOFF
    described = FaceCompareRequest.model_json_schema()["properties"]["min_similarity_score"]["description"]
    assert f"default {DEFAULT_SCORE_CUTOFF} " in described
    score_text = CompareResponse.model_json_schema()["properties"]["score"]["description"]
    assert f"{ANCHOR_SCORE} stands for a false-match rate of 1 in {1 / ANCHOR_FMR:,.0f}, each {SCORE_PER_DECADE} " \
           "more for 10 times fewer" in score_text


def test_eval_reports_the_default_cutoffs_of_eval_metrics():
    assert eval_parser().parse_args(["run", "data", "--out", "out"]).cutoffs == metrics.DEFAULT_CUTOFFS
    assert EvaluationOptions().cutoffs == metrics.DEFAULT_CUTOFFS


@pytest.mark.parametrize("mode", list(MODES))
def test_packaged_calibrations_were_fitted_for_this_contract(mode):
    stored = json.loads(resources.files("facecmp.calibrations").joinpath(f"{mode}.json").read_text())
    assert stored["anchor"] == {"score": ANCHOR_SCORE, "fmr": ANCHOR_FMR, "score_per_decade": SCORE_PER_DECADE}


def test_every_surface_knows_the_modes_of_facecmp_modes():
    for name in MODES:
        for spelling in (name, name.upper(), name.capitalize()):
            assert FacecmpSettings(mode=spelling).mode == Settings(mode=spelling).mode == name
        assert cli_parser().parse_args(["compare", "a", "b", "--mode", name]).mode == name
        assert eval_parser().parse_args(["run", "data", "--out", "o", "--mode", name]).mode == name
    for parse in (lambda: cli_parser().parse_args(["compare", "a", "b", "--mode", "fastest"]),
                  lambda: eval_parser().parse_args(["run", "data", "--out", "o", "--mode", "fastest"])):
        with pytest.raises(SystemExit):
            parse()
    with pytest.raises(ValueError, match="known: " + ", ".join(MODES)):
        Settings(mode="fastest")
    for body in (FaceCompareRequest, ImageSetCompareRequest):   # the service spells them as OpenCV does
        search_mode = body.model_json_schema()["properties"]["search_mode"]
        assert search_mode["anyOf"][0]["enum"] == [name.upper() for name in MODES]
        assert " or ".join(name.upper() for name in MODES) in search_mode["description"]
