"""ONNX export: ONNX Runtime on the exported graph agrees with torch's predict on a batch."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from _quantifiers import small_config

from _shared import one_error_line
from scaloquant.errors import ConfigError
from scaloquant.io import default_basis
from scaloquant.models import Quantifier
from scaloquant.models.export import ONNX_OPSET, dft_matrices, export_onnx
from scaloquant.signal import axes
from scaloquant.simulate import SimulationConfig
from scaloquant.train.data import draw_signals

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install '.[test]')")
ort = pytest.importorskip(
    "onnxruntime", reason="onnxruntime is not installed (pip install '.[test]')"
)


@pytest.fixture(scope="module")
def basis():
    return default_basis()


def _quantifier(basis, model, **kw):
    config = small_config(basis, model, uncertainty="gaussian", **kw)
    torch.manual_seed(0)
    q = Quantifier(config)
    signals = draw_signals(basis, SimulationConfig(), 64, np.random.default_rng(1))
    q.fit_normalisation(
        torch.from_numpy(signals.fids).to(torch.complex64),
        torch.from_numpy(signals.amplitudes).float(),
    )
    with torch.no_grad():  # a non-trivial calibration and variance head
        q.sd_calibration.copy_(torch.linspace(0.8, 1.3, len(basis.names)))
        q.log_var_head.weight.normal_(0, 0.01, generator=torch.Generator().manual_seed(2))
    return q.eval(), signals.fids[:8]


def test_dft_matrices_are_the_unitary_shifted_fft():
    x = np.random.default_rng(0).normal(size=(3, 64)) + 1j * np.random.default_rng(1).normal(
        size=(3, 64)
    )
    real, imag = dft_matrices(64, (10, 50))
    want = np.fft.fftshift(np.fft.fft(x, norm="ortho"), axes=-1)[:, 10:50]
    np.testing.assert_allclose(x @ (real + 1j * imag), want, atol=1e-5)
    np.testing.assert_allclose(axes.spectrum(x)[:, 10:50] / 8.0, want, atol=1e-12)


@pytest.mark.parametrize("ppm_range", [None, (0.2, 4.3)])
def test_spectrum_model_graph_holds_the_transform(tmp_path, basis, ppm_range):
    q, fids = _quantifier(basis, "spectrum_cnn", spectrum_ppm_range=ppm_range)
    amplitudes, sd = q.predict_with_sd(fids)
    onnx_path, sidecar = export_onnx(q, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    inputs = np.stack([fids.real, fids.imag], axis=1).astype(np.float32)
    got_amp, got_sd = session.run(None, {"fid": inputs})
    scale = np.abs(amplitudes).max()
    np.testing.assert_allclose(got_amp, amplitudes, atol=1e-4 * scale, rtol=1e-4)
    np.testing.assert_allclose(got_sd, sd, rtol=1e-3, atol=1e-5 * scale)
    description = json.loads(sidecar.read_text())
    # the opset the sidecar states is the file's (it said 17 of a file of opset 18)
    opsets = {o.domain: o.version for o in onnx.load(str(onnx_path)).opset_import}
    assert opsets[""] == description["opset"] == ONNX_OPSET
    assert description["metabolites"] == list(basis.names)
    assert description["transform_in_graph"] is True
    assert description["output_names"] == ["amplitudes", "sd"]
    # a k-times larger FID gives k-times the amplitudes in the graph too (per-signal scale)
    (k_amp, _) = session.run(None, {"fid": 3.0 * inputs})
    np.testing.assert_allclose(k_amp, 3.0 * got_amp, rtol=1e-4, atol=1e-4 * scale)


def test_scalogram_model_graph_starts_after_the_transform(tmp_path, basis):
    q, fids = _quantifier(basis, "scalogram_cnn")
    amplitudes, sd = q.predict_with_sd(fids)
    onnx_path, sidecar = export_onnx(q, tmp_path / "s.onnx")
    description = json.loads(sidecar.read_text())
    assert description["transform_in_graph"] is False
    assert description["scalogram"] == dict(q.config.scalogram)
    # the pre-processing as the sidecar describes it
    x = torch.from_numpy(fids).to(torch.complex64)
    with torch.no_grad():
        scale = q.sample_scale(x)
        scalogram = q.transform(x / scale[:, None]).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got_amp, got_sd = session.run(None, {"scalogram": scalogram, "scale": scale.numpy()})
    np.testing.assert_allclose(got_amp, amplitudes, rtol=1e-4, atol=1e-4 * np.abs(amplitudes).max())
    np.testing.assert_allclose(got_sd, sd, rtol=1e-3)


def test_export_cli_refuses_to_overwrite(tmp_path, capsys, tiny_checkpoint):
    from scaloquant.cli import main

    out = tmp_path / "m.onnx"
    assert main(["export", "--model", str(tiny_checkpoint), "--onnx", str(out)]) == 0
    assert out.is_file() and out.with_suffix(".json").is_file()
    before = out.read_bytes()
    assert main(["export", "--model", str(tiny_checkpoint), "--onnx", str(out)]) == 2
    assert "--overwrite" in one_error_line(capsys, "export")
    assert out.read_bytes() == before


def test_export_of_a_physics_model_is_refused(tmp_path, basis):
    """Its amplitudes are solved with the basis after the network: it failed with an
    AttributeError traceback (the config has no input_scale)."""
    from scaloquant.models.physics import build_physics_quantifier

    model = build_physics_quantifier("spectrum_physics", basis, widths=(4, 4, 8, 8, 8, 8))[0]
    with pytest.raises(ConfigError, match="spectrum_physics is a physics-head model"):
        export_onnx(model, tmp_path / "p.onnx")
    assert list(tmp_path.iterdir()) == []


def test_export_prints_no_traceback(tmp_path, basis, caplog, capfd):
    """Asked for opset 17, torch's exporter failed to convert down and logged the traceback
    of that failure to the terminal of a run that succeeded."""
    q, _ = _quantifier(basis, "spectrum_cnn")
    with caplog.at_level(logging.WARNING):
        export_onnx(q, tmp_path / "m.onnx")
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
    assert "Traceback" not in capfd.readouterr().err
