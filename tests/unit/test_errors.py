"""Typed errors that name the caller's options: the library words them as keywords, a front end
as its own flags, and they keep their parts across processes."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from scaloquant.cli import OPTION_FLAGS, error_message
from scaloquant.errors import OPTION_WORDS, IncompatibleDataError, NeedsOption, Option


def test_an_option_is_worded_by_whoever_shows_the_message():
    err = NeedsOption("x.nii: TE 35 ms; pass ", Option("force"), " to quantify anyway")
    assert isinstance(err, IncompatibleDataError) and err.options == ("force",)
    assert str(err) == "x.nii: TE 35 ms; pass force=True to quantify anyway"
    assert error_message(err) == "x.nii: TE 35 ms; pass --force to quantify anyway"
    # braces in the facts (a file name) are text, not a template
    odd = NeedsOption("{a}.nii: ", Option("water"))
    assert error_message(odd) == "{a}.nii: --water"


def test_every_option_has_a_flag_and_unknown_ones_are_refused():
    assert set(OPTION_FLAGS) == set(OPTION_WORDS)
    with pytest.raises(KeyError, match="unknown option"):
        Option("forse")


def test_the_parts_survive_pickling():
    err = NeedsOption("a; pass ", Option("override_dwell"), " if wrong")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is NeedsOption and back.options == ("override_dwell",)
    assert error_message(back) == error_message(err)
    assert "--dwell-time-s with --override-header" in error_message(back)


def test_a_wrong_basis_for_a_model_names_the_option_as_the_caller_names_it():
    """``quantify`` (a job) states that the basis is not the model's without knowing the CLI:
    the library words the option as its keyword, the CLI as its flag."""
    from scaloquant.io import default_basis
    from scaloquant.quantify import model_basis

    with pytest.raises(NeedsOption) as caught:
        model_basis({"content_hash": "not this basis"}, default_basis(), "mine.BASIS")
    assert caught.value.options == ("basis", "basis")
    assert str(caught.value).startswith("basis mine.BASIS is not the basis the model was")
    assert error_message(caught.value) == (
        "--basis mine.BASIS is not the basis the model was trained on (its content hash "
        "differs); give that basis, or leave --basis out"
    )
    # the file the model was trained with, read otherwise now (a .BASIS scaled by its CONC)
    basis = default_basis()
    basis = dataclasses.replace(basis, provenance={**basis.provenance, "source": "/b/mine.BASIS"})
    trained = {"content_hash": "not this basis", "provenance": {"source": "/a/mine.BASIS"}}
    with pytest.raises(NeedsOption) as caught:
        model_basis(trained, basis, "mine.BASIS")
    assert error_message(caught.value).startswith(
        "--basis mine.BASIS is the file the model was trained on, but it reads otherwise now"
    )
    assert error_message(caught.value).endswith("retrain the model with it, or leave --basis out")
