"""The CI end-to-end check: a tiny reproduction of the paper, then ``scaloquant evaluate`` on it.

One ``scaloquant reproduce --preset tiny --snr inf,30 --fit-n 8`` run (module fixture) produces
every output; the tests check the files, that every number is finite, that both trained CNNs
beat the predictor of the mean of the training targets, that ``evaluate`` on the same
checkpoints and test file gives the same numbers, that the SNR-30 results belong to the recorded
noise, that the fit is there with its bounds, and that the physics-head models are trained,
loadable and compared (four models and the fit at each SNR, the encoders' paired interval).
"""

import json
import time

import matplotlib.image as mpimg
import numpy as np
import pytest

from scaloquant.cli import main
from scaloquant.evaluate.encoders import network_parameters, parameter_errors
from scaloquant.evaluate.pipeline import NETWORK_SD
from scaloquant.evaluate.run import predict_test_set
from scaloquant.io.default import default_basis
from scaloquant.io.hdf5 import read_simulation
from scaloquant.models import load_model
from scaloquant.models.physics import PhysicsQuantifier
from scaloquant.models.physics_truth import default_truth
from scaloquant.simulate import SimulationConfig, add_noise
from scaloquant.simulate.dataset import drawn_parameters

MODELS = ("scalogram_cnn", "spectrum_cnn")
PHYSICS = ("scalogram_physics", "spectrum_physics")
ALL = (*MODELS, *PHYSICS)
SLOPES = {"NAA", "Cr+PCr", "GPC+PCho", "Ins", "Glu"}
FIGURES = (
    "fig2_signal_scalogram_cnn.png",
    "fig2_signal_spectrum_cnn.png",
    "fig3_mae_smape.png",
    "predicted_vs_true.png",
    "smape_difference_scalogram_cnn_vs_spectrum_cnn.png",
    "training_curves.png",
    "error_vs_snr.png",
)
FIT_N = 8


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce") / "tiny"
    args = ["reproduce", "--preset", "tiny", "--out", str(out), "--snr", "inf,30"]
    t0 = time.perf_counter()
    assert main([*args, "--fit-n", str(FIT_N)]) == 0
    (out.parent / "elapsed_s").write_text(str(time.perf_counter() - t0))
    return out


def test_the_total_time_is_the_runs(run):
    times = json.loads((run / "metrics.json").read_text())["wall_times_s"]
    elapsed = float((run.parent / "elapsed_s").read_text())
    # stages may overlap (side by side): the total is at least the longest and at most the run
    assert max(v for k, v in times.items() if k != "total") <= times["total"] <= elapsed


def _numbers(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


def test_every_output_is_written(run):
    for name in ("metrics.json", "report.md", "data/test.h5"):
        assert (run / name).is_file(), name
    for model in MODELS:
        assert (run / "models" / f"{model}.ckpt").is_file()
        assert (run / "logs" / model / "metrics.csv").is_file()
    for model in PHYSICS:
        assert (run / "models" / f"{model}.ckpt").is_file()
    for name in FIGURES:
        path = run / "figures" / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert mpimg.imread(path).ndim == 3
    assert not [p for p in run.parent.iterdir() if ".partial" in p.name]
    assert not [p for p in run.rglob("*") if ".partial" in p.name]


def test_metrics_are_finite_and_laid_out_as_the_issue_says(run):
    doc = json.loads((run / "metrics.json").read_text())
    assert list(doc["models"]) == [*ALL, "fit"]
    assert doc["models"]["fit"]["n_signals"] == FIT_N
    assert [(p["a"], p["b"]) for p in doc["comparison"]["pairs"]] == [MODELS, PHYSICS]
    test = read_simulation(run / "data" / "test.h5")
    for model in ALL:
        per = doc["models"][model]["per_metabolite"]
        assert tuple(per) == test.metabolites
        assert all(set(v) == {"mae", "mae_std", "smape", "rmse", "r2"} for v in per.values())
        assert doc["models"][model]["n_signals"] == test.n_total
    assert all(np.isfinite(x) for x in _numbers(doc["models"]))
    assert all(np.isfinite(x) for x in _numbers(doc["comparison"]["pairs"]))
    assert all(np.isfinite(x) and x >= 0 for x in doc["wall_times_s"].values())
    assert doc["config"]["preset"] == "tiny"
    assert set(doc["config"]["train"]) == set(MODELS)
    assert set(doc["config"]["train_physics"]) == set(PHYSICS)
    for model in PHYSICS:  # the default simulator, with the CNNs' noise
        config = doc["config"]["train_physics"][model]
        assert config["simulation"] == "default"
        assert config["simulation_config"]["snr"] == [30.0, 30.0]
    assert doc["config"]["snrs"] == ["inf", "30"]
    for model in MODELS:  # trained with noise at the run's one finite SNR
        assert doc["config"]["train"][model]["simulation"]["snr"] == [30.0, 30.0]
    assert list(doc["by_snr"]) == ["inf", "30"]
    for block in doc["by_snr"].values():
        assert list(block["methods"]) == list(ALL)
        assert list(block["subset"]["methods"]) == [*ALL, "fit"]
        assert block["subset"]["n_signals"] == FIT_N
        assert all(np.isfinite(x) for x in _numbers(block["methods"]))
        assert all(np.isfinite(x) for x in _numbers(block["subset"]))
    # the top level is the noiseless case
    noiseless = doc["by_snr"]["inf"]
    for model in MODELS:
        assert doc["models"][model]["mean"] == noiseless["methods"][model]["mean"]
    assert doc["models"]["fit"]["mean"] == noiseless["subset"]["methods"]["fit"]["mean"]


def test_physics_checkpoints_load_and_estimate_the_test_metabolites(run):
    test = read_simulation(run / "data" / "test.h5")
    for model in PHYSICS:
        loaded = load_model(run / "models" / f"{model}.ckpt")
        assert isinstance(loaded.quantifier, PhysicsQuantifier)
        assert loaded.quantifier.config.model == model
        assert loaded.quantifier.metabolites == test.metabolites
    assert (
        load_model(run / "models" / "scalogram_physics.ckpt").quantifier.config.scalogram[
            "channels"
        ]
        == "complex"
    )


def test_every_method_is_summarised_at_every_snr(run):
    doc = json.loads((run / "metrics.json").read_text())
    test = read_simulation(run / "data" / "test.h5")
    for label, block in doc["by_snr"].items():
        summary = block["summary"]
        assert list(summary) == [*ALL, "fit"], label
        for name, row in summary.items():
            assert row["n_signals"] == (FIT_N if name == "fit" else test.n_total)
            assert set(row["slopes"]) == SLOPES
            assert np.isfinite(row["mae"]) and np.isfinite(row["smape"])
        for name in (*PHYSICS, "fit"):  # CRLB SDs
            assert 0 <= summary[name]["within_1sd"] <= summary[name]["within_2sd"] <= 1
        assert block["methods"]["spectrum_physics"]["mean"]["mae"] == pytest.approx(
            summary["spectrum_physics"]["mae"]
        )
    speed = doc["speed_spectra_per_s"]
    assert set(speed) == {*ALL, "fit"} and all(v > 0 for v in speed.values())
    report = (run / "report.md").read_text()
    assert "## All methods: accuracy, slopes, calibration, speed" in report
    assert "| spectrum_physics | 200 |" in report


def test_the_encoders_are_compared_with_an_interval(run):
    doc = json.loads((run / "metrics.json").read_text())
    enc = doc["encoders"]
    assert (enc["a"], enc["b"]) == PHYSICS
    assert list(enc["by_snr"]) == ["inf", "30"]
    for comparison in enc["by_snr"].values():
        assert list(comparison["parameters"]) == ["damping", "shift", "phase0"]
        for p in comparison["parameters"].values():
            mean = p["mean"]
            assert np.isfinite([mean["low"], mean["high"], mean["diff"]]).all()
            assert mean["low"] <= mean["high"] and mean["favours"] in ("a", "b", "none")
            assert mean["diff"] == pytest.approx(p["mae_a"] - p["mae_b"])
    assert enc["channels"] == {"scalogram_physics": "complex", "scalogram_cnn": "abs_re_im"}
    assert enc["channel_blindness"]["abs_re_im"]["conjugation"] < 1e-5
    assert enc["channel_blindness"]["pos_neg"]["phase0"] < 1e-5
    report = (run / "report.md").read_text()
    assert "## Encoders: the nonlinear parameters" in report
    assert "Nonlinear parameters: " in report and "`abs_re_im` is blind to conjugation" in report
    # the noiseless errors come from the saved checkpoints and test file: recompute one
    test = read_simulation(run / "data" / "test.h5")
    quantifier = load_model(run / "models" / "spectrum_physics.ckpt").quantifier
    problem = quantifier.problem(deviations=False)
    pivot = SimulationConfig.from_dict(test.config).phase1_pivot_ppm
    truth, _ = default_truth(problem, drawn_parameters(test), test.metabolites, pivot)
    theta = network_parameters(quantifier, test.fids)
    shift = parameter_errors(problem.slices(), theta, truth)["shift"]
    assert enc["by_snr"]["inf"]["parameters"]["shift"]["mae_b"] == pytest.approx(
        shift.mean(), rel=1e-9
    )


def test_both_models_beat_the_mean_predictor(run):
    # A margin (3% in RMSE, 0.05 in R^2) so that a model that learned nothing cannot pass by the
    # luck of the 200 test signals; the tiny preset is tuned to clear it by far more.
    doc = json.loads((run / "metrics.json").read_text())
    baseline = doc["comparison"]["mean_predictor"]
    for model in MODELS:
        mean = doc["models"][model]["mean"]
        assert mean["rmse"] < 0.97 * baseline["mean"]["rmse"], (model, mean, baseline["mean"])
        assert mean["r2"] > baseline["mean"]["r2"] + 0.05, (model, mean, baseline["mean"])
        assert doc["models"][model]["pooled_rmse"] < baseline["pooled_rmse"]


def test_report_states_the_comparison(run):
    report = (run / "report.md").read_text()
    assert "## Verdict" in report
    assert ("won" in report) or ("no significant difference" in report)
    assert "95% paired-bootstrap interval" in report
    for name in FIGURES:
        assert f"](figures/{name})" in report


def test_evaluate_on_the_tiny_checkpoints_agrees_with_reproduce(run, tmp_path, capsys):
    doc = json.loads((run / "metrics.json").read_text())
    out = tmp_path / "ev"
    args = [
        "evaluate",
        "--data",
        str(run / "data" / "test.h5"),
        "--out",
        str(out),
        "--seed",
        str(doc["config"]["bootstrap"]["seed"]),
    ]
    for model in MODELS:
        args += ["--model", str(run / "models" / f"{model}.ckpt")]
    assert main(args) == 0
    assert "scalogram_cnn: mean MAE" in capsys.readouterr().out
    ev = json.loads((out / "metrics.json").read_text())
    for model in MODELS:
        for metabolite, values in doc["models"][model]["per_metabolite"].items():
            for key, value in values.items():
                assert ev["models"][model]["per_metabolite"][metabolite][key] == pytest.approx(
                    value, rel=1e-9, abs=1e-12
                )
    assert ev["comparison"]["pairs"] == doc["comparison"]["pairs"][:1]  # the CNNs' pair
    assert (out / "figures" / "fig2_signal_scalogram_cnn.png").is_file()

    # --overwrite replaces our outputs and keeps the user's files
    (out / "notes.txt").write_text("mine")
    assert main(args) == 2
    assert main([*args, "--overwrite"]) == 0
    assert (out / "notes.txt").read_text() == "mine"


def test_the_test_set_is_the_one_predicted(run):
    # Predicting data/test.h5 with the saved checkpoint reproduces the reported MAE: the file,
    # the checkpoint and the metrics belong together.
    test = read_simulation(run / "data" / "test.h5")
    pred = load_model(run / "models" / "spectrum_cnn.ckpt").quantifier.predict(np.array(test.fids))
    doc = json.loads((run / "metrics.json").read_text())
    reported = [doc["models"]["spectrum_cnn"]["per_metabolite"][m]["mae"] for m in test.metabolites]
    np.testing.assert_allclose(np.abs(pred - test.amplitudes).mean(axis=0), reported, rtol=1e-6)


def test_the_physics_models_results_are_those_of_one_call_on_the_test_set(run):
    # reproduce polishes the test set in chunks, side by side: the same numbers as one call
    test = read_simulation(run / "data" / "test.h5")
    doc = json.loads((run / "metrics.json").read_text())
    for model in PHYSICS:
        quantifier = load_model(run / "models" / f"{model}.ckpt").quantifier
        order = [list(quantifier.metabolites).index(m) for m in test.metabolites]
        pred = quantifier.predict(np.array(test.fids))[:, order]
        reported = [doc["models"][model]["per_metabolite"][m]["mae"] for m in test.metabolites]
        np.testing.assert_allclose(np.abs(pred - test.amplitudes).mean(axis=0), reported, rtol=1e-6)


def test_the_noisy_results_belong_to_the_recorded_noise(run):
    # Adding the recorded noise to data/test.h5 again and predicting with the saved checkpoint
    # reproduces the reported SNR-30 errors: the noisy test set is fixed by the recorded seed.
    doc = json.loads((run / "metrics.json").read_text())
    block = doc["by_snr"]["30"]
    test = read_simulation(run / "data" / "test.h5")
    noisy = add_noise(test, default_basis(), 30.0, block["noise_seed"])
    quantifier = load_model(run / "models" / "spectrum_cnn.ckpt").quantifier
    pred, _ = predict_test_set(quantifier, noisy, name="spectrum_cnn")
    reported = [
        block["methods"]["spectrum_cnn"]["per_metabolite"][m]["mae"] for m in test.metabolites
    ]
    np.testing.assert_allclose(np.abs(pred - test.amplitudes).mean(axis=0), reported, rtol=1e-6)
    assert not np.allclose(
        reported,
        [
            doc["by_snr"]["inf"]["methods"]["spectrum_cnn"]["per_metabolite"][m]["mae"]
            for m in test.metabolites
        ],
    )


def test_the_fit_and_its_bounds(run):
    doc = json.loads((run / "metrics.json").read_text())
    noiseless, noisy = doc["by_snr"]["inf"], doc["by_snr"]["30"]
    fit = noiseless["subset"]["methods"]["fit"]["mean"]
    models = [noiseless["subset"]["methods"][m]["mean"]["mae"] for m in MODELS]
    # noiseless spectra of the fit's own model: near exact (issue 6 asks < 1e-3 on average over
    # many spectra; 1e-2 leaves room for one local minimum among 8), far below the networks
    assert fit["mae"] < 1e-2 and fit["mae"] < min(models) / 10
    # without noise the bound vanishes; at SNR 30 it is of the order of the fit's error
    bound = noisy["crlb"]["mean"]["rms_sd"]
    assert noiseless["crlb"]["mean"]["rms_sd"] < 1e-4 * bound
    assert 0.5 < noisy["subset"]["methods"]["fit"]["mean"]["rmse"] / bound < 2.5
    assert set(noisy["crlb"]["combined"]) == {"GPC+PCho"}
    report = (run / "report.md").read_text()
    assert "## Error against SNR" in report and "| fit (first 8) |" in report


def test_calibration_is_reported_for_models_with_uncertainty(run):
    doc = json.loads((run / "metrics.json").read_text())
    with_sd = [
        m for m in ALL if load_model(run / "models" / f"{m}.ckpt").quantifier.has_uncertainty
    ]
    assert set(PHYSICS) <= set(with_sd)  # CRLB SDs
    # and the physics models' network SDs, calibrated beside their CRLBs
    network = [f"{m}{NETWORK_SD}" for m in PHYSICS]
    assert list(doc.get("calibration", {})) == with_sd + network
    for model in with_sd + network:
        groups = doc["calibration"][model]["groups"]
        assert list(groups) == ["30", "inf", "all"]
        assert all(0 <= v <= 1 for v in groups["30"]["coverage"]["0.95"].values())
    if with_sd:
        assert (run / "figures" / "reliability.png").is_file()
        assert "## Calibration of the predicted uncertainty" in (run / "report.md").read_text()
