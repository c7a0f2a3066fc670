"""The torch transform against the float64 numpy oracle, its invariances and known answers."""

import numpy as np
import pytest
import torch

from scaloquant.errors import ConfigError, IncompatibleDataError, InvalidDataError
from scaloquant.scalogram import (
    MorseScalogram,
    ScalogramConfig,
    centre_frequencies_hz,
    filter_bank,
    morse_frequency_response,
    peak_frequency,
    reference_scalogram,
    scales,
    scalogram,
)

DWELL_S = 0.25e-3


def random_fids(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def damped_fids(n_fids, n_points, seed=0):
    """Sums of damped complex exponentials at MRS-like frequencies (both signs) plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_points) * DWELL_S
    out = np.zeros((n_fids, n_points), complex)
    for _ in range(6):
        f = rng.uniform(-600, 600, (n_fids, 1))
        d = rng.uniform(5, 40, (n_fids, 1))
        a = rng.uniform(0.2, 1.0, (n_fids, 1)) * np.exp(1j * rng.uniform(0, 2 * np.pi, (n_fids, 1)))
        out += a * np.exp((2j * np.pi * f - d) * t)
    return out + 0.01 * (rng.standard_normal(out.shape) + 1j * rng.standard_normal(out.shape))


def rel_error(got, ref):
    return float(np.abs(np.asarray(got) - ref).max() / np.abs(ref).max())


@pytest.mark.parametrize("channels", ["abs_re_im", "pos_neg", "complex"])
@pytest.mark.parametrize("padding", ["reflection", "zeros", "periodic"])
@pytest.mark.parametrize("decimation", [1, 4])
def test_matches_float64_reference(channels, padding, decimation):
    config = ScalogramConfig(
        n_points=256, n_scales=40, decimation=decimation, channels=channels, padding=padding
    )
    fids = damped_fids(3, 300)
    ref = reference_scalogram(fids, config)
    x = torch.from_numpy(fids)
    got64 = scalogram(x, ScalogramConfig.from_dict({**config.to_dict(), "dtype": "float64"}))
    got32 = scalogram(x.to(torch.complex64), config)
    assert got64.dtype == torch.float64 and got32.dtype == torch.float32
    assert got64.shape == ref.shape == (3, *config.output_shape)
    assert rel_error(got64, ref) < 1e-6
    assert rel_error(got32, ref) < 1e-4


def test_paper_preset_matches_reference_at_full_size():
    config = ScalogramConfig.preset("paper")
    fids = damped_fids(1, 2048, seed=3)
    got = scalogram(torch.from_numpy(fids).to(torch.complex64), config)
    assert got.shape == (1, 2, 340, 1536)
    assert rel_error(got, reference_scalogram(fids, config)) < 1e-4


def test_odd_length_and_voices_rule_match_reference():
    config = ScalogramConfig(n_points=301, voices_per_octave=12, dtype="float64")
    fids = random_fids((2, 301))
    assert (
        rel_error(scalogram(torch.from_numpy(fids), config), reference_scalogram(fids, config))
        < 1e-12
    )


def test_batch_equals_item_by_item():
    config = ScalogramConfig(n_points=512, n_scales=48, dtype="float64")
    fids = torch.from_numpy(damped_fids(6, 512)).reshape(2, 3, 512)
    batch = scalogram(fids, config)
    assert batch.shape == (2, 3, 2, 48, 512)
    for i in range(2):
        for j in range(3):
            single = scalogram(fids[i, j], config)
            assert single.shape == (2, 48, 512)
            torch.testing.assert_close(batch[i, j], single, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("decimation", [2, 4, 8])
def test_decimated_equals_full_output_subsampled(decimation):
    full_config = ScalogramConfig(n_points=512, n_scales=64, dtype="float64")
    config = ScalogramConfig.from_dict({**full_config.to_dict(), "decimation": decimation})
    fids = torch.from_numpy(damped_fids(2, 600, seed=1))
    full = scalogram(fids, full_config)
    dec = scalogram(fids, config)
    assert dec.shape[-1] == 512 // decimation
    torch.testing.assert_close(dec, full[..., ::decimation], rtol=1e-10, atol=1e-12)


def test_chunking_does_not_change_the_result():
    config = ScalogramConfig(n_points=256, n_scales=30, decimation=2, dtype="float64")
    fids = torch.from_numpy(random_fids((5, 256)))
    default = scalogram(fids, config)
    tiny = scalogram(fids, config, chunk_elements=1000)
    torch.testing.assert_close(tiny, default, rtol=1e-12, atol=1e-12)


def test_only_the_first_n_points_are_used():
    config = ScalogramConfig(n_points=256, n_scales=20)
    fids = torch.from_numpy(random_fids((2, 400))).to(torch.complex64)
    changed = fids.clone()
    changed[:, 256:] = 0
    torch.testing.assert_close(scalogram(fids, config), scalogram(changed, config))


@pytest.mark.parametrize("freq_hz", [-900.0, -310.0, 45.0, 250.0, 1200.0])
def test_pure_tone_peaks_at_the_nearest_centre_frequency(freq_hz):
    # A complex tone exp(2 pi i f t): Re and Im are unit sinusoids of frequency |f|, so both
    # abs_re_im channels peak on the row whose centre frequency is nearest |f|, with modulus
    # psi_hat(s w) / 2 <= 1 (L1 normalisation, peak 2); the nearest row is at most half a voice
    # off, which bounds the modulus from below.
    voices = 16
    config = ScalogramConfig(n_points=1536, voices_per_octave=voices, dtype="float64")
    t = np.arange(1536) * DWELL_S
    tone = torch.from_numpy(np.exp(2j * np.pi * freq_hz * t))
    centre = centre_frequencies_hz(config, DWELL_S)
    nearest = int(np.argmin(np.abs(centre - abs(freq_hz))))
    interior = slice(384, 1152)  # away from the reflected edges
    mags = scalogram(tone, config)[..., interior].mean(-1)  # (channel, scale)
    assert mags.argmax(-1).tolist() == [nearest, nearest]
    half_voice = peak_frequency() * 2 ** (1 / (2 * voices))
    lowest = morse_frequency_response(np.array([half_voice]))[0] / 2
    for peak in mags.max(-1).values.tolist():
        assert lowest - 1e-3 < peak < 1 + 1e-3


@pytest.mark.parametrize("channels", ["abs_re_im", "pos_neg"])
@pytest.mark.parametrize("cycles", [-300, -41, 7, 128, 500])
def test_periodic_tone_on_the_dft_grid_gives_the_filter_value_exactly(channels, cycles):
    # With periodic boundaries a tone with a whole number of cycles is an eigenfunction of every
    # filter: each row is constant in time, equal to psi_hat(s w) / 2 (the 1/2 is cos's share of
    # the analytic half, or MATLAB's x/2 for pos_neg), and pos_neg's other page is exactly empty.
    n = 1024
    config = ScalogramConfig(
        n_points=n, n_scales=60, padding="periodic", channels=channels, dtype="float64"
    )
    tone = torch.from_numpy(np.exp(2j * np.pi * cycles * np.arange(n) / n))
    omega = 2 * np.pi * abs(cycles) / n
    expected = morse_frequency_response(scales(config) * omega) / 2
    out = scalogram(tone, config).numpy()
    if channels == "abs_re_im":
        want = np.stack([expected, expected])
    else:
        want = np.stack([expected, 0 * expected] if cycles > 0 else [0 * expected, expected])
    np.testing.assert_allclose(out, np.broadcast_to(want[..., None], out.shape), atol=1e-12)


def test_complex_channels_are_the_parts_of_the_abs_channels():
    base = ScalogramConfig(n_points=256, n_scales=30, dtype="float64")
    fids = torch.from_numpy(random_fids((2, 256)))
    parts = scalogram(fids, ScalogramConfig.from_dict({**base.to_dict(), "channels": "complex"}))
    mags = scalogram(fids, base)
    assert parts.shape == (2, 4, 30, 256)
    moduli = torch.stack([parts[:, 0].hypot(parts[:, 1]), parts[:, 2].hypot(parts[:, 3])], 1)
    torch.testing.assert_close(moduli, mags, rtol=1e-12, atol=1e-12)


def test_normalise_and_log_are_explicit_and_exact():
    base = ScalogramConfig(n_points=256, n_scales=30, dtype="float64")
    fids = torch.from_numpy(random_fids((3, 256)))
    raw = scalogram(fids, base)
    norm = scalogram(fids, ScalogramConfig.from_dict({**base.to_dict(), "normalise": "max"}))
    both = ScalogramConfig.from_dict({**base.to_dict(), "normalise": "max", "log": True})
    logged = scalogram(fids, both)
    peak = raw.amax(dim=(-3, -2, -1), keepdim=True)
    torch.testing.assert_close(norm, raw / peak)
    torch.testing.assert_close(norm.amax(dim=(-3, -2, -1)), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(logged, torch.log(raw / peak + both.log_epsilon))


def test_zero_signal_normalises_to_zero_not_nan():
    config = ScalogramConfig(n_points=64, n_scales=8, normalise="max")
    out = scalogram(torch.zeros(2, 64, dtype=torch.complex64), config)
    assert torch.all(out == 0)


def test_empty_batch_gives_empty_output():
    config = ScalogramConfig(n_points=64, n_scales=8)
    out = scalogram(torch.zeros(0, 3, 64, dtype=torch.complex64), config)
    assert out.shape == (0, 3, 2, 8, 64)


def test_input_needing_grad_is_transformed_without_autograd():
    config = ScalogramConfig(n_points=64, n_scales=8)
    fids = torch.from_numpy(random_fids((2, 64))).to(torch.complex64).requires_grad_()
    out = scalogram(fids, config)
    assert not out.requires_grad
    torch.testing.assert_close(out, scalogram(fids.detach(), config))


def test_real_input_is_refused():
    with pytest.raises(InvalidDataError, match="need complex FIDs"):
        scalogram(torch.zeros(2, 300), ScalogramConfig(n_points=256, n_scales=4))


def test_short_input_is_refused():
    with pytest.raises(IncompatibleDataError, match="FIDs have 200 points .* first 256"):
        scalogram(torch.zeros(2, 200, dtype=torch.complex64), ScalogramConfig(n_points=256))


def test_bank_of_another_config_is_refused():
    bank = filter_bank(ScalogramConfig(n_points=256, n_scales=4)).to_torch()
    with pytest.raises(ConfigError, match="another scalogram config"):
        scalogram(
            torch.zeros(1, 256, dtype=torch.complex64),
            ScalogramConfig(n_points=256, n_scales=5),
            bank=bank,
        )


def test_filters_on_another_device_are_refused():
    config = ScalogramConfig(n_points=64, n_scales=4)
    bank = filter_bank(config).to_torch("meta")
    with pytest.raises(IncompatibleDataError, match="FIDs are on cpu but the filters on meta"):
        scalogram(torch.zeros(1, 64, dtype=torch.complex64), config, bank=bank)


def test_module_matches_function_and_keeps_filters_out_of_state_dict():
    config = ScalogramConfig(n_points=256, n_scales=30, decimation=2)
    module = MorseScalogram(config)
    assert module.state_dict() == {}
    buffers = dict(module.named_buffers())
    assert buffers and all(b.dtype == torch.float32 for b in buffers.values())
    fids = torch.from_numpy(random_fids((4, 300))).to(torch.complex64)
    torch.testing.assert_close(module(fids), scalogram(fids, config), rtol=0, atol=0)
    assert "output_shape=(2, 30, 128)" in repr(module)
    assert module.scales.shape == (30,)


def test_module_double_computes_in_float64():
    config = ScalogramConfig(n_points=256, n_scales=30)
    module = MorseScalogram(config).double()
    fids = random_fids((2, 256))
    out = module(torch.from_numpy(fids))
    assert out.dtype == torch.float64
    # .double() converts the float32 filters: float32-rounded coefficients, float64 arithmetic.
    assert rel_error(out, reference_scalogram(fids, config)) < 1e-6


def test_module_in_half_precision_is_refused():
    module = MorseScalogram(ScalogramConfig(n_points=64, n_scales=4)).half()
    with pytest.raises(ConfigError, match="float32 or float64"):
        module(torch.zeros(1, 64, dtype=torch.complex64))


def test_module_with_span_in_hz_needs_dwell_time():
    config = ScalogramConfig(n_scales=10, freq_min_hz=20.0, freq_max_hz=1500.0)
    with pytest.raises(ConfigError, match="dwell_time_s"):
        MorseScalogram(config)
    assert MorseScalogram(config, DWELL_S).scales.shape == (10,)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", ["paper", "cpu"])
def test_cuda_matches_cpu(name):
    config = ScalogramConfig.preset(name)
    fids = torch.from_numpy(damped_fids(4, 2048)).to(torch.complex64)
    cpu = MorseScalogram(config)(fids)
    gpu = MorseScalogram(config).to("cuda")(fids.to("cuda"))
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-5 * float(cpu.abs().max()))
