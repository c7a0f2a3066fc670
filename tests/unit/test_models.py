"""The CNNs and the Quantifier: shapes, normalisation, homogeneity, batch == item by item."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from _quantifiers import SMALL_SCALOGRAM, small_config

from scaloquant.errors import ConfigError, IncompatibleDataError, InvalidDataError
from scaloquant.io import default_basis
from scaloquant.models import (
    Quantifier,
    QuantifierConfig,
    ScalogramCNN,
    SpectrumCNN,
    SpectrumTransform,
    spectrum_bins,
)
from scaloquant.signal import axes
from scaloquant.train import TrainConfig
from scaloquant.train.data import draw_signals


@pytest.fixture(scope="module")
def basis():
    return default_basis()


@pytest.fixture(scope="module")
def signals(basis):
    from scaloquant.simulate import SimulationConfig

    return draw_signals(basis, SimulationConfig(), 48, np.random.default_rng(0))


_config = small_config


@pytest.mark.parametrize("preset", ["tiny", "quick", "cpu", "paper"])
@pytest.mark.parametrize("model", ["scalogram_cnn", "spectrum_cnn"])
def test_network_shapes_for_every_preset(basis, preset, model):
    config = TrainConfig.preset(preset, model=model)
    qconfig = config.quantifier_config(basis)
    q = Quantifier(qconfig)
    if model == "scalogram_cnn":
        assert q.input_shape == config.scalogram_config().output_shape
        if preset == "paper":
            assert q.input_shape == (2, 340, 1536)
    else:
        assert q.input_shape[0] == 2
    # 6 conv blocks, 5 poolings, one linear layer with 21 outputs
    convs = [m for m in q.network.modules() if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d))]
    pools = [
        m for m in q.network.modules() if isinstance(m, (torch.nn.MaxPool1d, torch.nn.MaxPool2d))
    ]
    assert len(convs) == 6 and len(pools) == 5
    assert q.network.head.out_features == 21 == len(basis.names)
    if preset != "paper":  # the paper size is checked by shape arithmetic only (4 MB per input)
        out = q.network(torch.zeros(2, *q.input_shape))
        assert out.shape == (2, 21)


def test_cnns_check_their_settings():
    assert ScalogramCNN((2, 64, 64), widths=(2,) * 6)(torch.zeros(3, 2, 64, 64)).shape == (3, 21)
    assert SpectrumCNN((2, 100), widths=(2,) * 6, n_outputs=5)(torch.zeros(1, 2, 100)).shape == (
        1,
        5,
    )
    with pytest.raises(ConfigError, match="too small"):
        ScalogramCNN((2, 16, 64))
    with pytest.raises(ConfigError, match="odd"):
        SpectrumCNN((2, 128), kernel_sizes=4)
    with pytest.raises(ConfigError, match="kernel sizes"):
        SpectrumCNN((2, 128), kernel_sizes=(3, 3))
    with pytest.raises(ConfigError, match="norm"):
        SpectrumCNN((2, 128), norm="layer")
    # BatchNorm is optional: the paper's blocks are conv + ReLU only
    plain = SpectrumCNN((2, 128), norm="none")
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in plain.modules())


def test_spectrum_transform_follows_the_axes_convention(basis):
    # a pure tone at +200 Hz must land in the bin whose frequency is 200 Hz
    n, dwell = 2048, basis.dwell_time_s
    t = axes.time_axis_s(n, dwell)
    fid = torch.from_numpy(np.exp(2j * np.pi * 200.0 * t)).to(torch.complex64)
    out = SpectrumTransform(n)(fid[None])
    assert out.shape == (1, 2, n)
    peak = int(out[0, 0].argmax())
    assert axes.frequency_axis_hz(n, dwell)[peak] == pytest.approx(200.0, abs=2.0)
    # unitary FFT: unit-RMS FID -> unit-RMS spectrum
    assert float(out.square().sum(dim=1).mean()) == pytest.approx(1.0, rel=1e-5)
    start, stop = spectrum_bins(
        n, dwell, basis.spectrometer_freq_mhz, basis.ppm_reference, (0.2, 4.3)
    )
    ppm = axes.ppm_axis(n, dwell, basis.spectrometer_freq_mhz, basis.ppm_reference)
    assert ppm[start] >= 0.2 and ppm[stop - 1] <= 4.3 and ppm[start - 1] < 0.2 < 4.3 < ppm[stop]
    with pytest.raises(ConfigError, match="ppm range"):
        spectrum_bins(n, dwell, basis.spectrometer_freq_mhz, basis.ppm_reference, (40, 50))


@pytest.mark.parametrize("model", ["scalogram_cnn", "spectrum_cnn"])
def test_normalisation_standardises_inputs_and_targets(basis, signals, model):
    q = Quantifier(_config(basis, model))
    fids = torch.from_numpy(signals.fids)
    amps = torch.from_numpy(signals.amplitudes)
    q.fit_normalisation(fids, amps, batch_size=16)
    feats, scale = q.features(fids)
    # every input row (channel [, scale]) has zero mean and unit std over signals and its last axis
    rows = feats.movedim(0, -2).reshape(*feats.shape[1:-1], -1)
    active = q.feature_std[..., 0] > 1e-3 * q.feature_std.max()  # rows above the std floor
    assert active.sum() >= 0.5 * active.numel()
    torch.testing.assert_close(rows.mean(-1), torch.zeros(rows.shape[:-1]), atol=1e-4, rtol=0)
    torch.testing.assert_close(
        rows.std(-1)[active], torch.ones(int(active.sum())), atol=1e-3, rtol=0
    )
    n_used = q.config.n_used
    rms = fids[:, :n_used].abs().square().mean(1).sqrt()
    torch.testing.assert_close(scale, rms, rtol=1e-5, atol=0)
    targets = amps.double() / rms[:, None].double()
    torch.testing.assert_close(q.target_mean, targets.mean(0).float(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("model", ["scalogram_cnn", "spectrum_cnn"])
def test_predict_batch_equals_item_by_item_and_is_homogeneous(basis, signals, model):
    torch.manual_seed(0)
    q = Quantifier(_config(basis, model))
    q.fit_normalisation(torch.from_numpy(signals.fids), torch.from_numpy(signals.amplitudes))
    fids = signals.fids[:6].astype(np.complex128)
    batch = q.predict(fids, batch_size=4)
    assert batch.shape == (6, 21) and batch.dtype == np.float64
    single = np.stack([q.predict(f)[0] for f in fids])
    # float32 convolutions may sum in another order for another batch size
    np.testing.assert_allclose(batch, single, rtol=1e-5, atol=1e-6)
    # per-sample input scale: quantifying k x gives k times the amplitudes of x (issue 5)
    for k in (1e-3, 7.5, 1e4):
        np.testing.assert_allclose(q.predict(k * fids), k * batch, rtol=1e-5, atol=0)
    assert np.all(np.isfinite(q.predict(np.zeros_like(fids))))


def test_fixed_input_scale_is_the_mean_training_rms(basis, signals):
    q = Quantifier(_config(basis, "spectrum_cnn", input_scale="fixed"))
    fids = torch.from_numpy(signals.fids)
    q.fit_normalisation(fids, torch.from_numpy(signals.amplitudes))
    rms = fids.abs().square().mean(1).sqrt().mean()
    assert float(q.fixed_scale) == pytest.approx(float(rms), rel=1e-5)
    torch.testing.assert_close(q.sample_scale(fids[:3]), q.fixed_scale.expand(3))


def test_predict_refuses_bad_input(basis, signals):
    q = Quantifier(_config(basis, "spectrum_cnn"))
    with pytest.raises(IncompatibleDataError, match="2048-point"):
        q.predict(signals.fids[:, :1024])
    with pytest.raises(InvalidDataError, match="complex"):
        q.predict(signals.fids.real)
    bad = signals.fids[:2].copy()
    bad[0, 5] = np.nan
    with pytest.raises(InvalidDataError, match="NaN"):
        q.predict(bad)
    with pytest.raises(InvalidDataError, match="shape"):
        q.predict(signals.fids[None])


def test_all_finite_is_isfinite_all():
    from scaloquant.models.quantifier import all_finite

    x = torch.randn(6, 33, dtype=torch.complex64)
    assert all_finite(x) and all_finite(x.real)
    for bad in (float("nan"), float("inf"), -float("inf"), complex(0, float("nan"))):
        y = x.clone()
        y[4, 7] = bad
        assert not all_finite(y)
    # a sum that overflows on finite samples (float32 max 3.4e38): checked sample by sample
    big = torch.full((4, 8), 3e38 + 3e38j, dtype=torch.complex64)
    assert not torch.isfinite(torch.view_as_real(big).sum())  # the fast test cannot tell
    assert all_finite(big)
    big[1, 1] = complex(float("inf"), 0)
    assert not all_finite(big)


def test_predict_takes_read_only_arrays_without_warnings(basis, signals):
    q = Quantifier(_config(basis, "spectrum_cnn"))
    frozen = signals.fids[:3].astype(np.complex128)
    frozen.setflags(write=False)  # like the samples of a scaloquant.types.FID
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = q.predict(frozen)
    np.testing.assert_array_equal(out, q.predict(frozen.copy()))


def test_quantifier_config_round_trip_and_checks(basis):
    config = _config(basis, "scalogram_cnn", spectrum_ppm_range=(0.2, 4.3))
    assert QuantifierConfig.from_dict(config.to_dict()) == config
    assert config.n_used == SMALL_SCALOGRAM.n_points
    assert _config(basis, "spectrum_cnn").n_used == 2048
    assert _config(basis, "spectrum_cnn", spectrum_n_points=1536).n_used == 1536
    with pytest.raises(ConfigError, match="unknown quantifier setting"):
        QuantifierConfig.from_dict({**config.to_dict(), "colour": 1})
    with pytest.raises(ConfigError, match="unknown model"):
        _config(basis, "transformer")
    with pytest.raises(IncompatibleDataError, match="only 1024"):
        _config(basis, "spectrum_cnn", n_points=1024, spectrum_n_points=1536)
