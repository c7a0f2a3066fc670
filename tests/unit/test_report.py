"""metrics.json layout, the verdict sentences, report.md, and the figures written as PNGs."""

import json

import matplotlib.image as mpimg
import numpy as np
import pytest

from scaloquant.errors import InvalidDataError, OutputExistsError
from scaloquant.evaluate.pipeline import SignalExample, evaluate_predictions, representative_index
from scaloquant.evaluate.report import plain_json, verdict
from scaloquant.io.training_log import TrainingCurve
from scaloquant.report.evaluation import write_evaluation
from scaloquant.types import FID

METABOLITES = ["NAA", "Cr", "Cho", "Mac"]
METRIC_KEYS = {"mae", "mae_std", "smape", "rmse", "r2"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _predictions(n=120, seed=0):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0, 1, size=(n, len(METABOLITES)))
    good = truth + rng.normal(0, 0.05, truth.shape)
    worse = truth + rng.normal(0, 0.15, truth.shape)
    return truth, {"scalogram_cnn": good, "spectrum_cnn": worse}


def _example(truth_row, preds_row):
    t = np.arange(256) * 2.5e-4
    peaks = np.exp((2j * np.pi * np.array([[-330.0], [-200.0], [-180.0], [-400.0]]) - 10) * t)

    def fid(amps):
        return FID(amps @ peaks, 2.5e-4, 123.2)

    return SignalExample(
        index=3, truth=fid(truth_row), estimates={k: fid(v) for k, v in preds_row.items()}
    )


def _write(tmp_path, truth, preds, **kwargs):
    curves = {
        name: TrainingCurve(
            np.arange(1, 50), np.linspace(1, 0.1, 49), np.arange(10, 50, 10), np.linspace(1, 0.2, 4)
        )
        for name in preds
    }
    evaluation = evaluate_predictions(
        truth,
        preds,
        METABOLITES,
        bootstrap_seed=11,
        config={"preset": "unit", "snr": float("inf"), "path": tmp_path},
        wall_times_s={"evaluate": 1.5},
        title="unit test",
        context="synthetic predictions",
        n_boot=200,
        mean_predictor=truth.mean(axis=0),
        curves=curves,
        **kwargs,
    )
    return write_evaluation(evaluation, tmp_path)


def test_metrics_json_has_the_issue_layout(tmp_path):
    truth, preds = _predictions()
    doc = _write(tmp_path, truth, preds)
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk == doc
    assert set(on_disk) == {"models", "comparison", "config", "wall_times_s", "versions"}
    assert list(on_disk["models"]) == ["scalogram_cnn", "spectrum_cnn"]
    for model in on_disk["models"].values():
        assert list(model["per_metabolite"]) == METABOLITES
        for values in model["per_metabolite"].values():
            assert set(values) == METRIC_KEYS
            assert all(np.isfinite(v) for v in values.values())
        assert set(model["mean"]) == METRIC_KEYS
    pair = on_disk["comparison"]["pairs"][0]
    assert (pair["a"], pair["b"], pair["metric"]) == ("scalogram_cnn", "spectrum_cnn", "smape")
    assert pair["mean"]["favours"] == "a"  # the less noisy predictions win
    assert on_disk["comparison"]["mean_predictor"]["mean"]["r2"] == pytest.approx(0, abs=0.05)
    assert on_disk["config"]["snr"] == "inf"  # JSON has no infinity
    assert on_disk["versions"]["scaloquant"]


def test_report_states_the_winner_and_holds_tables_and_figures(tmp_path):
    truth, preds = _predictions()
    _write(tmp_path, truth, preds)
    report = (tmp_path / "report.md").read_text()
    assert "**scalogram_cnn won**" in report
    assert "excludes 0" in report
    assert "0.148" in report  # the paper's figure
    for name in METABOLITES:
        assert f"| {name} |" in report
    assert "mean predictor (baseline)" in report
    for png in (
        "fig3_mae_smape.png",
        "predicted_vs_true.png",
        "training_curves.png",
        "smape_difference_scalogram_cnn_vs_spectrum_cnn.png",
    ):
        assert f"](figures/{png})" in report


def test_figures_are_valid_pngs(tmp_path):
    truth, preds = _predictions()
    i = representative_index(truth, preds["scalogram_cnn"])
    example = _example(truth[i], {k: v[i] for k, v in preds.items()})
    _write(tmp_path, truth, preds, example=example)
    pngs = sorted(p.name for p in (tmp_path / "figures").glob("*.png"))
    assert pngs == [
        "fig2_signal_scalogram_cnn.png",
        "fig2_signal_spectrum_cnn.png",
        "fig3_mae_smape.png",
        "predicted_vs_true.png",
        "smape_difference_scalogram_cnn_vs_spectrum_cnn.png",
        "training_curves.png",
    ]
    for name in pngs:
        path = tmp_path / "figures" / name
        assert path.read_bytes()[:8] == PNG_MAGIC
        image = mpimg.imread(path)
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 400
        assert image[..., :3].std() > 0.05  # something was drawn, not a blank canvas
    assert "](figures/fig2_signal_scalogram_cnn.png)" in (tmp_path / "report.md").read_text()


def test_no_significant_difference_is_said_explicitly(tmp_path):
    rng = np.random.default_rng(1)
    truth = rng.uniform(0, 1, size=(80, len(METABOLITES)))
    a = truth + rng.normal(0, 0.1, truth.shape)
    b = truth + rng.normal(0, 0.1, truth.shape)
    doc = _write(tmp_path, truth, {"model_a": a, "model_b": b})
    pair = doc["comparison"]["pairs"][0]
    assert pair["mean"]["favours"] == "none"
    sentence = verdict(pair, doc["models"])
    assert "no significant difference" in sentence and "includes 0" in sentence


def test_verdict_counts_metabolites_per_side():
    pair = {
        "a": "A",
        "b": "B",
        "metric": "smape",
        "confidence": 0.95,
        "per_metabolite": {
            "NAA": {"diff": -3.0, "low": -4.0, "high": -2.0, "favours": "a"},
            "Cr": {"diff": 2.0, "low": 1.0, "high": 3.0, "favours": "b"},
            "Cho": {"diff": 0.1, "low": -1.0, "high": 1.0, "favours": "none"},
        },
        "mean": {"diff": -0.3, "low": -0.5, "high": -0.1, "favours": "a"},
    }
    models = {"A": {"mean": {"smape": 10.0}}, "B": {"mean": {"smape": 10.3}}}
    sentence = verdict(pair, models)
    assert "**A won**: 10 against 10.3" in sentence
    assert "−0.3 percentage points" in sentence
    assert "1 significantly favours A, 1 favours B, and 1 shows no significant" in sentence


def test_representative_index_is_the_median_error_signal():
    truth = np.zeros((5, 2))
    pred = np.array([[5.0, 5], [1, 1], [3, 3], [2, 2], [4, 4]])
    assert representative_index(truth, pred) == 2


def test_existing_outputs_are_not_replaced(tmp_path):
    truth, preds = _predictions()
    (tmp_path / "metrics.json").write_text("user file")
    with pytest.raises(OutputExistsError):
        _write(tmp_path, truth, preds)
    assert (tmp_path / "metrics.json").read_text() == "user file"


def test_bad_predictions_are_refused(tmp_path):
    truth, preds = _predictions()
    preds["spectrum_cnn"] = preds["spectrum_cnn"][:, :2]
    with pytest.raises(InvalidDataError, match="spectrum_cnn"):
        _write(tmp_path, truth, preds)


def test_plain_json():
    out = plain_json({"a": (1, np.float32(2.5)), "b": np.array([1, 2]), "c": float("-inf")})
    assert out == {"a": [1, 2.5], "b": [1, 2], "c": "-inf"}
    json.dumps(out, allow_nan=False)


def test_read_training_curve(tmp_path):
    from scaloquant.io.training_log import read_log_rows, training_curve

    def read_training_curve(path):
        return training_curve(read_log_rows(path))

    log = tmp_path / "metrics.csv"
    log.write_text(
        "epoch,step,train/loss,val/loss,val/rmse\n"
        "0,7,0.98,,\n0,7,,0.99,0.288\n0,15,0.94,,\n0,15,,0.95,0.25\n"
    )
    curve = read_training_curve(log)
    np.testing.assert_array_equal(curve.train_step, [7, 15])
    np.testing.assert_allclose(curve.train_loss, [0.98, 0.94])
    np.testing.assert_allclose(curve.val_loss, [0.99, 0.95])
    np.testing.assert_allclose(curve.val_rmse, [0.288, 0.25])
    log.write_text("epoch,step,train/loss,val/loss\n0,7,0.98,\n0,7,,0.99\n")
    assert read_training_curve(log).val_rmse is None


def test_a_single_method_has_no_comparison(tmp_path):
    truth, preds = _predictions()
    doc = _write(tmp_path, truth, {"scalogram_cnn": preds["scalogram_cnn"]})
    assert doc["comparison"]["pairs"] == []
    report = (tmp_path / "report.md").read_text()
    assert "## Verdict" not in report and "## Per metabolite: scalogram_cnn" in report
    assert not list((tmp_path / "figures").glob("smape_difference_*"))
