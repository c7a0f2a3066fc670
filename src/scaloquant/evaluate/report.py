"""``metrics.json`` and ``report.md`` of an evaluation.

:func:`metrics_document` assembles the JSON document; :func:`render_report` renders the Markdown
report from that document alone, so the two can never disagree.

Layout of ``metrics.json``::

    {"models": {NAME: {"per_metabolite": {MET: {"mae", "mae_std", "smape", "rmse", "r2"}},
                       "mean": {"mae", "mae_std", "smape", "rmse", "r2"},
                       "pooled_rmse": float, "n_signals": int}},
     "comparison": {"metric", "n_boot", "confidence", "seed",
                    "pairs": [{"a": NAME, "b": NAME, "per_metabolite": {MET: {"diff", "low", "high",
                               "favours"}}, "mean": {...}}],
                    "mean_predictor": {"per_metabolite", "mean", "pooled_rmse"} or null,
                    "paper": {...}},
     "config": {...}, "wall_times_s": {...}, "versions": {...}}

``"models"`` also lists methods run on only the first ``k`` test signals (the fit), each with its
own ``n_signals``; they take no part in ``"comparison"``. Optional keys:
``"calibration": {NAME: {"coverage": {LEVEL: {MET: fraction}}, "mean": {LEVEL: fraction}}}``
for methods with predicted SDs, and ``"by_snr": {LABEL: {...}}`` (``LABEL`` ``"inf"`` or the SNR,
layout in :func:`scaloquant.evaluate.pipeline.snr_block`) for the same test signals at several
SNRs.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import __version__
from .bootstrap import PairedBootstrap
from .metrics import METRICS, MetricTable, matlab_half_mse, pooled_rmse_from_matlab_loss

#: The paper's reported validation loss: MATLAB half-MSE summed over its 21 outputs.
PAPER_VAL_LOSS = 0.23
PAPER_N_OUTPUTS = 21

_METRIC_HEADERS = {
    "mae": "MAE",
    "mae_std": "SD of \\|error\\|",
    "smape": "SMAPE (%)",
    "rmse": "RMSE",
    "r2": "R²",
}


def versions() -> dict[str, str]:
    """Versions of scaloquant, Python and the libraries that produced the numbers."""
    from importlib.metadata import version

    import torch

    out = {
        "scaloquant": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "matplotlib": version("matplotlib"),  # the figures' library, not loaded to compute
        "h5py": version("h5py"),  # io.hdf5 imports the module itself
    }
    try:
        import lightning

        out["lightning"] = lightning.__version__
    except ImportError:  # evaluation alone does not need the trainer
        pass
    return out


def snr_label(snr: float) -> str:
    """``"inf"`` for noiseless signals, else the SNR as ``%g`` text (``"30"``, ``"12.5"``)."""
    return "inf" if np.isinf(snr) else f"{snr:g}"


def table_dict(table: MetricTable) -> dict[str, Any]:
    """``{"per_metabolite", "mean", "pooled_rmse", "n_signals"}`` of one method."""
    return {
        "per_metabolite": table.per_metabolite(),
        "mean": table.mean(),
        "pooled_rmse": table.pooled_rmse,
        "n_signals": table.n_signals,
    }


def metrics_document(
    tables: Mapping[str, MetricTable],
    comparisons: Sequence[tuple[str, str, PairedBootstrap]],
    *,
    bootstrap_seed: int,
    mean_predictor: MetricTable | None,
    config: Mapping[str, Any],
    wall_times_s: Mapping[str, float],
    version_info: Mapping[str, str] | None = None,
    partial_tables: Mapping[str, MetricTable] | None = None,
    calibration: Mapping[str, Any] | None = None,
    by_snr: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``metrics.json`` document (plain JSON types only).

    Parameters
    ----------
    tables : method name -> its metrics on the test set.
    comparisons : ``(name_a, name_b, result)`` of each paired bootstrap (all with one metric).
    bootstrap_seed : seed of the bootstrap's generator, recorded for reproduction.
    mean_predictor : metrics of predicting the mean of the training targets, or None.
    config : the resolved configuration of the run.
    wall_times_s : named durations in seconds.
    version_info : library versions (default :func:`versions`).
    partial_tables : metrics of methods run on only the first test signals (added to
        ``"models"``, not to the comparison with the paper).
    calibration : ``"calibration"`` (see the module docstring), or None to leave it out.
    by_snr : ``"by_snr"``, or None to leave it out.
    """
    first = comparisons[0][2] if comparisons else None
    paper_rmse = pooled_rmse_from_matlab_loss(PAPER_VAL_LOSS, PAPER_N_OUTPUTS)
    doc = {
        "models": {
            name: table_dict(table) for name, table in {**tables, **(partial_tables or {})}.items()
        },
        "comparison": {
            "metric": first.metric if first else None,
            "n_boot": first.n_boot if first else None,
            "confidence": first.confidence if first else None,
            "seed": int(bootstrap_seed),
            "pairs": [{"a": a, "b": b, **res.to_dict()} for a, b, res in comparisons],
            "mean_predictor": table_dict(mean_predictor) if mean_predictor else None,
            "paper": {
                "val_loss_matlab_half_mse": PAPER_VAL_LOSS,
                "n_outputs": PAPER_N_OUTPUTS,
                "pooled_rmse": paper_rmse,
                "models": {
                    name: {
                        "pooled_rmse": table.pooled_rmse,
                        "matlab_half_mse": matlab_half_mse(
                            table.pooled_rmse, len(table.metabolites)
                        ),
                    }
                    for name, table in tables.items()
                },
            },
        },
        "config": plain_json(config),
        "wall_times_s": {k: float(v) for k, v in wall_times_s.items()},
        "versions": dict(version_info if version_info is not None else versions()),
    }
    if calibration is not None:
        doc["calibration"] = plain_json(calibration)
    if by_snr is not None:
        doc["by_snr"] = plain_json(by_snr)
    return doc


def plain_json(value: Any) -> Any:
    """``value`` with only JSON types: numpy scalars and arrays become numbers and lists, tuples
    lists, non-finite floats the strings ``"inf"``, ``"-inf"``, ``"nan"`` (JSON has none), and
    other objects (paths) their text."""
    if isinstance(value, Mapping):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)  # paths and other objects: their text form


def _fmt(value: float, digits: int = 4) -> str:
    if value is None or not np.isfinite(value):
        return str(value)
    return f"{value:.{digits}g}"


def _signed(value: float) -> str:
    return f"{value:+.3g}".replace("-", "−")


def _s(count: int) -> str:
    """The verb's third-person ``s`` for a count of one."""
    return "s" if count == 1 else ""


def verdict(pair: Mapping[str, Any], models: Mapping[str, Any]) -> str:
    """Sentences saying which method won on the mean metric, by how much, and per metabolite."""
    a, b, metric = pair["a"], pair["b"], pair["metric"]
    mean = pair["mean"]
    label = _METRIC_HEADERS[metric].replace(" (%)", "")
    unit = " percentage points" if metric == "smape" else ""
    value_a = models[a]["mean"][metric]
    value_b = models[b]["mean"][metric]
    pct = round(100 * pair["confidence"])
    interval = f"{pct}% paired-bootstrap interval {_signed(mean['low'])} to {_signed(mean['high'])}"
    if mean["favours"] == "none":
        head = (
            f"On mean {label} over the {len(pair['per_metabolite'])} metabolites there is no "
            f"significant difference between {a} ({_fmt(value_a)}) and {b} ({_fmt(value_b)}): "
            f"{a} − {b} = {_signed(mean['diff'])}{unit}, and the {interval} includes 0."
        )
    else:
        winner, loser = (a, b) if mean["favours"] == "a" else (b, a)
        head = (
            f"On mean {label} over the {len(pair['per_metabolite'])} metabolites **{winner} won**: "
            f"{_fmt(models[winner]['mean'][metric])} against {_fmt(models[loser]['mean'][metric])}"
            f" ({a} − {b} = {_signed(mean['diff'])}{unit}; {interval}, which excludes 0)."
        )
    sides = [v["favours"] for v in pair["per_metabolite"].values()]
    n_a, n_b, n_none = sides.count("a"), sides.count("b"), sides.count("none")
    tail = (
        f" Per metabolite, {n_a} significantly favour{_s(n_a)} {a}, {n_b} favour{_s(n_b)} {b}, "
        f"and {n_none} show{_s(n_none)} no significant difference (interval includes 0)."
    )
    return head + tail


def encoder_verdict(comparison: Mapping[str, Any]) -> str:
    """One sentence from :func:`~scaloquant.evaluate.encoders.encoder_comparison`: whether
    encoder ``a`` predicts the nonlinear parameters better than ``b``, and per parameter the two
    mean absolute errors with the difference's interval."""
    a, b = comparison["a"], comparison["b"]
    params = comparison["parameters"]
    sides = {name: p["mean"]["favours"] for name, p in params.items()}
    better_a = [k for k, side in sides.items() if side == "a"]
    better_b = [k for k, side in sides.items() if side == "b"]
    neither = [k for k, side in sides.items() if side == "none"]
    parts = [f"{a} is better on {', '.join(better_a)}"] if better_a else []
    if better_b:
        parts.append(f"{b} is better on {', '.join(better_b)}")
    if neither:
        parts.append(f"no significant difference on {', '.join(neither)}")
    if params and len(better_a) == len(params):
        head = f"**{a} predicts the nonlinear parameters better than {b}**, on every parameter"
    elif not better_a:
        head = f"**{a} does not predict the nonlinear parameters better than {b}**: " + "; ".join(
            parts
        )
    else:
        head = "Mixed: " + "; ".join(parts)
    pct = round(100 * next(iter(params.values()))["confidence"]) if params else 95
    details = "; ".join(
        f"{name} MAE {p['mae_a']:.3g} against {p['mae_b']:.3g} {p['unit']} "
        f"({a} − {b} = {_signed(p['mean']['diff'])}, {pct}% interval "
        f"{_signed(p['mean']['low'])} to {_signed(p['mean']['high'])})"
        for name, p in params.items()
    )
    return f"{head} ({comparison['n_signals']} test spectra, network alone, K = 0): {details}."


def _summary_section(doc: Mapping[str, Any]) -> list[str]:
    """Every method at every SNR in one table each: accuracy, slopes, calibration, speed
    (the ``summary`` of each ``by_snr`` block, the speeds of ``speed_spectra_per_s``)."""
    blocks = {k: b for k, b in doc.get("by_snr", {}).items() if b.get("summary")}
    if not blocks:
        return []
    speed = doc.get("speed_spectra_per_s", {})
    quantities = list(
        dict.fromkeys(
            q for b in blocks.values() for m in b["summary"].values() for q in m["slopes"]
        )
    )
    lines = [
        "## All methods: accuracy, slopes, calibration, speed",
        "",
        "Per SNR, every method on the test spectra it estimated (the fit on the first ones "
        "only): mean MAE and SMAPE over metabolites; the slope of estimate against truth "
        "(ordinary least squares with intercept; 1 is unbiased, below 1 shrinks towards the "
        "training prior); for methods with SDs (the regression CNNs' predicted SDs; the "
        "Cramér–Rao bounds of the physics models' polished model and of the fit) the fraction of errors within 1 and 2 SDs (68 % and 95 % for "
        "calibrated Gaussian errors) and the SD of the z-scores (1 when calibrated); and the "
        "spectra per second each method estimated in this run (prediction only, all SNRs).",
        "",
    ]
    for label, block in blocks.items():
        lines += [
            f"### All methods, {_snr_heading(label)}",
            "",
            "| method | spectra | MAE | SMAPE (%) | "
            + " | ".join(f"slope {q}" for q in quantities)
            + " | within 1 SD | within 2 SD | z-score SD | spectra/s |",
            "|---|" + "---:|" * (len(quantities) + 7),
        ]
        for name, m in block["summary"].items():
            slopes = [_fmt(m["slopes"].get(q, float("nan")), 3) for q in quantities]
            cal = [
                f"{100 * m[k]:.1f} %" if isinstance(m.get(k), float) and np.isfinite(m[k]) else "–"
                for k in ("within_1sd", "within_2sd")
            ]
            z = m.get("z_sd")
            rate = speed.get(name)
            lines.append(
                f"| {name} | {m['n_signals']} | {_fmt(m['mae'])} | {_fmt(m['smape'])} | "
                + " | ".join(slopes)
                + f" | {cal[0]} | {cal[1]} | "
                + (_fmt(z, 3) if isinstance(z, float) and np.isfinite(z) else "–")
                + f" | {_fmt(rate, 3) if rate is not None else '–'} |"
            )
        lines.append("")
    return lines


def _encoder_about(enc: Mapping[str, Any]) -> str:
    """The encoders section's first paragraph: what is compared, the channels, and what each
    channel mode cannot see (``channel_blindness``: relative scalogram change under a
    conjugation and a 0.5 rad zero-order phase; below ``blind_below`` counts as unseen)."""
    a, channels, below = enc["a"], enc["channels"], enc["blind_below"]
    blind = enc["channel_blindness"]
    words = "; ".join(
        f"`{mode}` {d['conjugation']:.2g} under conjugation and {d['phase0']:.2g} under a "
        "0.5 rad zero-order phase"
        for mode, d in blind.items()
    )
    unseen = {
        mode: [
            w
            for w, key in (("conjugation", "conjugation"), ("the zero-order phase", "phase0"))
            if d[key] < below
        ]
        for mode, d in blind.items()
    }
    sees = "; ".join(
        f"`{mode}` is blind to {' and '.join(what)}" if what else f"`{mode}` sees both"
        for mode, what in unseen.items()
    )
    return (
        f"The physics models' encoders predict the nonlinear parameters of the fit's model "
        f"(per lineshape group a damping and a shift, and the phases); their errors at `K = 0` "
        f"(the network alone) are compared on the same test spectra by the paired bootstrap of "
        f"the mean absolute error over groups. Channels: the scalogram encoder of {a} uses "
        f"`{channels[a]}`, the paper's scalogram CNN (scalogram_cnn here) "
        f"`{channels['scalogram_cnn']}`. Relative change of the scalogram of the first test "
        f"signal when the signal is changed: {words}. So {sees} (a change below "
        f"{below:g} counts as unseen); a phase-predicting encoder needs channels that "
        "see the phase."
    )


def _encoder_section(doc: Mapping[str, Any]) -> list[str]:
    """The encoders' comparison on the nonlinear parameters (``encoders`` of ``metrics.json``,
    :func:`scaloquant.evaluate.encoders.encoder_comparison` per SNR)."""
    enc = doc.get("encoders")
    if not enc:
        return []
    a, b = enc["a"], enc["b"]
    lines = ["## Encoders: the nonlinear parameters", "", _encoder_about(enc), ""]
    for label, comparison in enc["by_snr"].items():
        lines += [
            f"### Encoders, {_snr_heading(label)}",
            "",
            encoder_verdict(comparison),
            "",
            f"| parameter | {a} MAE | {b} MAE | difference | 95% interval | favours |",
            "|---|---:|---:|---:|---|---|",
        ]
        for name, p in comparison["parameters"].items():
            favours = {"a": a, "b": b, "none": "none (includes 0)"}[p["mean"]["favours"]]
            lines.append(
                f"| {name} ({p['unit']}) | {_fmt(p['mae_a'])} | {_fmt(p['mae_b'])} | "
                f"{_signed(p['mean']['diff'])} | {_signed(p['mean']['low'])} to "
                f"{_signed(p['mean']['high'])} | {favours} |"
            )
        lines.append("")
    return lines


def _metric_table(rows: Mapping[str, Mapping[str, float]], first_column: str) -> list[str]:
    lines = [
        f"| {first_column} | " + " | ".join(_METRIC_HEADERS[m] for m in METRICS) + " |",
        "|---|" + "---:|" * len(METRICS),
    ]
    for name, values in rows.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(values[m]) for m in METRICS) + " |")
    return lines


def _paper_section(doc: Mapping[str, Any]) -> list[str]:
    paper = doc["comparison"]["paper"]
    ref = paper["pooled_rmse"]
    lines = [
        "## Comparison with the paper",
        "",
        f"The paper reports a validation loss of {paper['val_loss_matlab_half_mse']} in MATLAB's "
        f"half mean squared error, which sums the squared errors of its {paper['n_outputs']} "
        f"outputs: a pooled RMSE of {ref:.3f} per amplitude (R² ≈ {1 - ref**2 * 12:.2f} for "
        "amplitudes uniform on [0, 1], whose variance is 1/12). The same quantities on our test set:",
        "",
        "| model | pooled RMSE | MATLAB-equivalent loss | vs the paper's 0.148 |",
        "|---|---:|---:|---|",
    ]
    for name, values in paper["models"].items():
        better = "lower (better)" if values["pooled_rmse"] < ref else "higher (worse)"
        lines.append(
            f"| {name} | {_fmt(values['pooled_rmse'])} | {_fmt(values['matlab_half_mse'])} | "
            f"{better} |"
        )
    lines += [
        "",
        "The paper's figure is a validation loss on its own simulated signals, whose parameter "
        "ranges did not survive in its text; the comparison is indicative, not like for like.",
        "",
    ]
    return lines


def _method_label(name: str, n_signals: int, n_all: int) -> str:
    return name if n_signals == n_all else f"{name} (first {n_signals} signals)"


def _snr_heading(label: str) -> str:
    return "noiseless" if label == "inf" else f"SNR {label}"


#: Main metabolites of the per-SNR tables and figure panels (the issue's list).
MAIN_METABOLITES: tuple[str, ...] = ("NAA", "Cr", "PCr", "GPC+PCho", "Ins", "Glu")


def metric_of(entry: Mapping[str, Any], name: str, metric: str) -> float:
    """``metric`` of ``name`` (a metabolite, a combined sum, or ``"mean"``) in one method's
    ``metrics.json`` entry (or a CRLB summary); NaN when it has none."""
    if name == "mean":
        return float(entry["mean"][metric])
    for part in ("per_metabolite", "combined"):
        if name in entry.get(part, {}):
            return float(entry[part][name][metric])
    return float("nan")


def compared_methods(block: Mapping[str, Any]) -> Mapping[str, Any]:
    """The methods of one ``by_snr`` entry measured on the same signals: on the fit's subset
    when there is one (every method), else on all test signals."""
    return (block["subset"] or block)["methods"]


def _snr_section(by_snr: Mapping[str, Mapping[str, Any]]) -> list[str]:
    labels = list(by_snr)
    has_subset = any(b["subset"] for b in by_snr.values())
    has_crlb = any(b["crlb"] for b in by_snr.values())
    rows: dict[str, dict[str, Mapping[str, Any]]] = {}
    for label, block in by_snr.items():
        for name, m in block["methods"].items():
            row = f"{name} (all {block['n_signals']})" if has_subset else name
            rows.setdefault(row, {})[label] = m
        if block["subset"]:
            for name, m in block["subset"]["methods"].items():
                rows.setdefault(f"{name} (first {block['subset']['n_signals']})", {})[label] = m
    head = "| method | " + " | ".join(_snr_heading(label) for label in labels) + " |"
    rule = "|---|" + "---:|" * len(labels)
    lines = [
        "## Error against SNR",
        "",
        "The same test signals (amplitudes, damping, shifts) at every SNR: noiseless, then with "
        "complex white noise at the SNR (NAA peak height over the SD of the real spectral "
        "noise), seeded per SNR."
        + (
            " The classical fit estimated only the first test signals (it is slow); every "
            "method is also shown on those same signals, the rows marked *first*."
            if has_subset
            else ""
        ),
        "",
    ]
    for metric in ("mae", "smape", "rmse"):
        lines += [f"Mean {_METRIC_HEADERS[metric]} over metabolites:", "", head, rule]
        for row, cells in rows.items():
            values = [_fmt(cells[x]["mean"][metric]) if x in cells else "–" for x in labels]
            lines.append(f"| {row} | " + " | ".join(values) + " |")
        if metric == "rmse" and has_crlb:
            values = [
                _fmt(by_snr[x]["crlb"]["mean"]["rms_sd"]) if by_snr[x]["crlb"] else "–"
                for x in labels
            ]
            lines.append("| CRLB of the fit (RMS over signals) | " + " | ".join(values) + " |")
        lines.append("")
    if has_crlb:
        lines += [
            "The Cramér–Rao bound (CRLB) is the fit's, at its solution with the noise SD "
            "estimated from its residual; the RMSE of an unbiased estimator cannot fall below "
            "the RMS of its bound over the signals. A biased estimator can: a network trained on "
            "a bounded amplitude range pulls noisy estimates towards the middle of it.",
            "",
        ]
    for label, block in by_snr.items():
        methods = compared_methods(block)
        crlb = block["crlb"]
        n = (block["subset"] or block)["n_signals"]
        lines += [
            f"### {_snr_heading(label)}: RMSE of the main metabolites ({n} signals)",
            "",
            "| metabolite | "
            + " | ".join(methods)
            + (" | mean CRLB | RMS CRLB |" if crlb else " |"),
            "|---|" + "---:|" * (len(methods) + (2 if crlb else 0)),
        ]
        for met in (*MAIN_METABOLITES, "mean"):
            values = [metric_of(m, met, "rmse") for m in methods.values()]
            if crlb:
                values += [metric_of(crlb, met, "mean_sd"), metric_of(crlb, met, "rms_sd")]
            if not all(np.isnan(v) for v in values):
                lines.append(f"| {met} | " + " | ".join(_fmt(v) for v in values) + " |")
        lines.append("")
    return lines


def _calibration_section(doc: Mapping[str, Any]) -> list[str]:
    from .calibration import calibration_markdown  # loads torch; only for models with SDs

    tables = doc.get("calibration", {})
    if not tables:
        return []
    lines = [
        "## Calibration of the predicted uncertainty",
        "",
        "Per model with predicted standard deviations: the percentage of test signals whose "
        "central 95% interval (estimate ± 1.96 SD) holds the true amplitude, per metabolite "
        "and SNR (`inf`: noiseless; `all`: every signal). Calibrated SDs give 95%; the target "
        "is 90–98% per metabolite at each SNR. `metrics.json` has the 68% intervals too.",
        "",
    ]
    for name, table in tables.items():
        lines += [f"### {name}", "", calibration_markdown(table)]
    return lines


def render_report(
    doc: Mapping[str, Any], figures: Mapping[str, str], *, title: str, context: str
) -> str:
    """The Markdown report of a ``metrics.json`` document.

    Parameters
    ----------
    doc : the output of :func:`metrics_document`.
    figures : caption -> path of the PNG relative to the report.
    title : first heading.
    context : a paragraph on what was evaluated (test set, models, preset).
    """
    models = doc["models"]
    comparison = doc["comparison"]
    lines = [f"# {title}", "", context, ""]
    if comparison["pairs"]:
        lines += ["## Verdict", ""]
        lines += [verdict(pair, models) + "\n" for pair in comparison["pairs"]]
        if doc.get("encoders"):
            first = next(iter(doc["encoders"]["by_snr"].values()))
            lines += ["Nonlinear parameters: " + encoder_verdict(first) + "\n"]

    lines += ["## Mean over metabolites", ""]
    n_all = next(iter(models.values()))["n_signals"]
    rows = {_method_label(name, m["n_signals"], n_all): m["mean"] for name, m in models.items()}
    if comparison["mean_predictor"]:
        rows["mean predictor (baseline)"] = comparison["mean_predictor"]["mean"]
    lines += _metric_table(rows, "method")
    lines += [
        "",
        "Each column is the unweighted mean over metabolites of the per-metabolite value."
        # only where the table has the baseline's row (``evaluate`` of a test file has none)
        + (
            " The baseline predicts, for every signal, the mean of the training targets."
            if comparison["mean_predictor"]
            else ""
        ),
        "",
    ]
    if "by_snr" in doc:
        lines += _snr_section(doc["by_snr"])
    lines += _summary_section(doc)
    lines += _encoder_section(doc)
    lines += _calibration_section(doc)
    lines += _paper_section(doc)

    for pair in comparison["pairs"]:
        a, b, metric = pair["a"], pair["b"], pair["metric"]
        label = _METRIC_HEADERS[metric]
        pct = round(100 * pair["confidence"])
        lines += [
            f"## Paired comparison: {a} − {b}, {label}",
            "",
            f"| metabolite | {a} | {b} | difference | {pct}% interval | favours |",
            "|---|---:|---:|---:|---|---|",
        ]
        for name, d in pair["per_metabolite"].items():
            favours = {"a": a, "b": b, "none": "none (includes 0)"}[d["favours"]]
            lines.append(
                f"| {name} | {_fmt(models[a]['per_metabolite'][name][metric])} | "
                f"{_fmt(models[b]['per_metabolite'][name][metric])} | {_signed(d['diff'])} | "
                f"{_signed(d['low'])} to {_signed(d['high'])} | {favours} |"
            )
        lines += [
            "",
            f"{comparison['n_boot']} bootstrap resamples of the test signals, the same indices "
            f"for both models (seed {comparison['seed']}).",
            "",
        ]

    for name, m in models.items():
        which = "test signals" if m["n_signals"] == n_all else f"of the {n_all} test signals"
        lines += [f"## Per metabolite: {name} ({m['n_signals']} {which})", ""]
        lines += _metric_table(m["per_metabolite"], "metabolite")
        lines.append("")

    if figures:
        lines += ["## Figures", ""]
        for caption, path in figures.items():
            alt = path.rsplit("/", 1)[-1].removesuffix(".png")
            lines += [f"**{caption}**", "", f"![{alt}]({path})", ""]

    lines += ["## Run", "", "| step | wall time (s) |", "|---|---:|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in doc["wall_times_s"].items()]
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in doc["versions"].items()), ""]
    return "\n".join(lines)
