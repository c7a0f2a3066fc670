"""Fixtures shared by several test folders."""

from __future__ import annotations

import dataclasses

import pytest


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A spectrum CNN trained for a few steps on the embedded basis (about 10 s), for tests
    that need a real checkpoint but not an accurate one (``quantify`` and the like)."""
    from scaloquant.io import default_basis
    from scaloquant.train import TrainConfig, train_model

    base = TrainConfig.preset("tiny", model="spectrum_cnn")
    config = dataclasses.replace(
        base,
        max_steps=6,
        max_epochs=None,
        val_check_interval=3,
        n_train=96,
        n_val=32,
        early_stopping_patience=None,
    )
    out = tmp_path_factory.mktemp("tiny_checkpoint")
    return train_model(config, default_basis(), out, progress=False).checkpoint_path
