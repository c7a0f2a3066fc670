"""The refusal of a model whose amplitude names are not the test file's names the real
difference (session 34, review of the change)."""

from __future__ import annotations

import numpy as np

from scaloquant.evaluate.run import _names_differ
from scaloquant.io import default_basis
from scaloquant.types import SignalSet


def _test_file(names: tuple[str, ...]) -> SignalSet:
    basis = default_basis()
    n = 2
    return SignalSet(
        fids=np.zeros((n, basis.acquisition.n_points), dtype=np.complex64),
        amplitudes=np.zeros((n, len(names)), dtype=np.float32),
        metabolites=names,
        acquisition=basis.acquisition,
        basis_name="press3T_30ms",
    )


def test_a_model_lacking_only_mac_is_named_as_trained_on_another_basis():
    """A model that estimates nothing the file lacks, and lacks the file's Mac, was trained on a
    basis without Mac: not an invivo-prior model estimating lipids (the words said so)."""
    names = default_basis().names
    assert "Mac" in names
    line = _names_differ("m.ckpt", [], ["Mac"], _test_file(names))
    assert "--simulation invivo" not in line
    assert "the test file holds Mac, which m.ckpt does not estimate" in line
    assert "another basis set (press3T_30ms)" in line


def test_an_invivo_prior_model_is_named_as_such():
    names = default_basis().names
    line = _names_differ("m.ckpt", ["Lip13", "MM09"], ["Mac"], _test_file(names))
    assert "was trained with --simulation invivo" in line
