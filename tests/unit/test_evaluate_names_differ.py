"""The refusal of a model whose amplitude names are not the test file's names the real
difference (session 34, review of the change); the columns a model of the invivo prior is scored
on, and those named as not scored (session 35, evalinv35)."""

from __future__ import annotations

import numpy as np
import pytest

from scaloquant.errors import IncompatibleDataError
from scaloquant.evaluate.run import _names_differ, check_model, file_truth, scoring
from scaloquant.io import default_basis
from scaloquant.types import SignalSet


def _test_file(names: tuple[str, ...], **kwargs) -> SignalSet:
    basis = default_basis()
    n = 2
    return SignalSet(
        fids=np.zeros((n, basis.acquisition.n_points), dtype=np.complex64),
        amplitudes=kwargs.pop("amplitudes", np.zeros((n, len(names)), dtype=np.float32)),
        metabolites=names,
        acquisition=basis.acquisition,
        basis_name="press3T_30ms",
        **kwargs,
    )


def _invivo_file(macromolecules: str = "measured") -> SignalSet:
    """Two signals of the invivo prior's layout: the basis' truth, and the components' in
    ``component_amplitudes_mm`` named by the config's ``components``."""
    names = default_basis().names
    components = ["Lip09", "Lip13", "Lip20"]
    if macromolecules == "parametric":
        components = ["MM09", "MM12", "MM14", "MM17", "MM20", *components]
    amplitudes = np.arange(2.0 * len(names)).reshape(2, -1) + 1
    amplitudes[:, names.index("Mac")] = 0 if macromolecules == "parametric" else 3
    return _test_file(
        names,
        amplitudes=amplitudes,
        parameters={
            "component_amplitudes_mm": 100 + np.arange(2.0 * len(components)).reshape(2, -1)
        },
        config={"preset": "invivo", "macromolecules": macromolecules, "components": components},
    )


class _Model:
    """What :func:`check_model` reads of a quantifier: its names and grid."""

    def __init__(self, names):
        self.metabolites = tuple(names)
        self.config = type("Config", (), {"acquisition": default_basis().acquisition})()


def test_a_model_lacking_only_mac_is_named_as_trained_on_another_basis():
    """A model that estimates nothing the file lacks, and lacks the file's Mac, was trained on a
    basis without Mac: not an invivo-prior model estimating lipids (the words said so)."""
    names = default_basis().names
    assert "Mac" in names
    line = _names_differ("m.ckpt", [], ["Mac"], _test_file(names))
    assert "--simulation invivo" not in line
    assert "the test file holds Mac, which m.ckpt does not estimate" in line
    assert "another basis set (press3T_30ms)" in line


def test_the_components_truth_of_an_invivo_file_is_read_beside_the_basis():
    test = _invivo_file()
    names, truth = file_truth(test)
    assert names == (*test.metabolites, "Lip09", "Lip13", "Lip20")
    np.testing.assert_array_equal(truth[:, : len(test.metabolites)], test.amplitudes)
    np.testing.assert_array_equal(truth[:, -3:], test.parameters["component_amplitudes_mm"])
    # a file of the default simulator holds its basis' truth only
    plain = _test_file(test.metabolites)
    assert file_truth(plain)[0] == plain.metabolites


def test_an_invivo_model_is_scored_on_every_column_of_an_invivo_file():
    test = _invivo_file()
    model = (*test.metabolites, "Lip09", "Lip13", "Lip20")
    assert check_model(_Model(model), test, "m") == model
    scored = scoring({"m": model}, test)
    assert scored.names == model and not scored.not_scored
    np.testing.assert_array_equal(scored.truth, file_truth(test)[1])


def test_a_model_of_parametric_macromolecules_leaves_the_zero_mac_unscored_saying_so():
    test = _invivo_file("parametric")
    names = [m for m in test.metabolites if m != "Mac"]
    model = (*names, "MM09", "MM12", "MM14", "MM17", "MM20", "Lip09", "Lip13", "Lip20")
    scored = scoring({"m": check_model(_Model(model), test, "m")}, test)
    assert set(scored.names) == set(model)
    assert scored.not_scored == {
        "Mac": "the test file's truth, 0 in every signal; not estimated by m"
    }


def test_columns_a_model_estimates_without_truth_are_named():
    test = _test_file(default_basis().names)
    model = (*test.metabolites, "Lip13")
    scored = scoring({"m": check_model(_Model(model), test, "m")}, test)
    assert scored.names == test.metabolites
    assert scored.not_scored == {"Lip13": "estimated by m; the test file holds no truth for it"}


def test_the_refusals_that_protect_the_scores_stay():
    # a model estimating Mac on a file where Mac was not rendered (truth 0): audit34b's words
    test = _invivo_file("parametric")
    with pytest.raises(IncompatibleDataError, match="macromolecules: parametric.*Mac, which m "):
        check_model(_Model((*test.metabolites, "Lip09")), test, "m")
    # another basis: a name that is not one of LCModel's components
    with pytest.raises(IncompatibleDataError, match="another basis set"):
        check_model(_Model((*test.metabolites, "Cit")), test, "m")
    # lacking the file's Mac and estimating no component
    names = [m for m in test.metabolites if m != "Mac"]
    with pytest.raises(IncompatibleDataError, match="another basis set"):
        check_model(_Model(names), _invivo_file(), "m")
