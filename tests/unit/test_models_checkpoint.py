"""Reading checkpoints from ``scaloquant.models`` (no Lightning) and calibrating them without
editing the caller's dict."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from _quantifiers import small_config

from scaloquant.io import default_basis
from scaloquant.models import CheckpointMetadata, LoadedModel, Quantifier, load_model
from scaloquant.models.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_KEY, STATE_PREFIX
from scaloquant.simulate import SimulationConfig


def test_loading_a_checkpoint_imports_no_lightning(tiny_checkpoint, fresh_python):
    code = (
        "import sys\n"
        "from scaloquant.models.checkpoint import load_model\n"
        f"loaded = load_model({str(tiny_checkpoint)!r})\n"
        "assert loaded.quantifier.metabolites\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('lightning', 'pytorch_lightning', 'lightning_fabric', 'matplotlib')))\n"
    )
    proc = fresh_python(code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "[]"


def test_loaded_model_carries_typed_read_only_metadata(tiny_checkpoint):
    loaded = load_model(tiny_checkpoint)
    assert isinstance(loaded, LoadedModel) and isinstance(loaded.metadata, CheckpointMetadata)
    meta = loaded.metadata
    q = loaded.quantifier
    assert not q.training and not hasattr(q, "checkpoint_metadata")
    assert meta.format == CHECKPOINT_FORMAT
    assert tuple(meta.basis["names"]) == q.metabolites
    assert meta.basis["content_hash"] == default_basis().content_hash()
    assert meta.basis_metadata["echo_time_ms"] == 30.0
    assert meta.acquisition["n_points"] == q.config.n_points
    assert meta.training is not None and meta.training["steps"] == 6
    assert (meta.uncertainty_calibration is not None) == q.has_uncertainty
    with pytest.raises(dataclasses.FrozenInstanceError):
        meta.format = 1
    with pytest.raises(TypeError):
        meta.acquisition["n_points"] = 1
    # to_dict gives back what the file holds
    raw = torch.load(tiny_checkpoint, weights_only=True)[CHECKPOINT_KEY]
    assert meta.to_dict() == raw


def _uncertainty_checkpoint() -> tuple[dict, np.ndarray, np.ndarray]:
    """A checkpoint dict, laid out as scaloquant train writes it, of an untrained model with
    uncertainty, and signals to calibrate it on."""
    from scaloquant.train.data import draw_signals

    basis = default_basis()
    torch.manual_seed(0)
    q = Quantifier(small_config(basis, "spectrum_cnn", uncertainty="gaussian"))
    signals = draw_signals(
        basis, SimulationConfig.from_dict({"snr": [10, 100]}), 32, np.random.default_rng(1)
    )
    q.fit_normalisation(torch.from_numpy(signals.fids), torch.from_numpy(signals.amplitudes))
    ckpt = {
        "state_dict": {STATE_PREFIX + k: v for k, v in q.state_dict().items()},
        CHECKPOINT_KEY: {"format": CHECKPOINT_FORMAT, "quantifier": q.config.to_dict()},
    }
    return ckpt, signals.fids, signals.amplitudes


def test_calibrate_checkpoint_returns_a_new_dict_and_leaves_its_input():
    from scaloquant.train.checkpoint import calibrate_checkpoint

    ckpt, fids, amplitudes = _uncertainty_checkpoint()
    key = STATE_PREFIX + "sd_calibration"
    before = ckpt[CHECKPOINT_KEY].copy(), ckpt["state_dict"][key].clone()
    calibrated = calibrate_checkpoint(ckpt, "in-memory", fids, amplitudes)
    assert calibrated is not ckpt
    # the input is as it was
    assert (
        ckpt[CHECKPOINT_KEY] == before[0] and "uncertainty_calibration" not in ckpt[CHECKPOINT_KEY]
    )
    torch.testing.assert_close(ckpt["state_dict"][key], before[1], rtol=0, atol=0)
    # the copy holds the calibration, as buffer and as metadata, and loads with it
    cal = calibrated[CHECKPOINT_KEY]["uncertainty_calibration"]
    assert cal["level"] == 0.95 and cal["n_signals"] == len(fids)
    metabolites = ckpt[CHECKPOINT_KEY]["quantifier"]["metabolites"]
    factors = np.array([cal["factors"][m] for m in metabolites])
    np.testing.assert_allclose(calibrated["state_dict"][key].numpy(), factors, rtol=1e-6)
    assert not np.allclose(factors, 1.0)
