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
    import h5py
    import matplotlib
    import torch

    out = {
        "scaloquant": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "matplotlib": matplotlib.__version__,
        "h5py": h5py.__version__,
    }
    try:
        import lightning

        out["lightning"] = lightning.__version__
    except ImportError:  # evaluation alone does not need the trainer
        pass
    return out


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
    """
    first = comparisons[0][2] if comparisons else None
    paper_rmse = pooled_rmse_from_matlab_loss(PAPER_VAL_LOSS, PAPER_N_OUTPUTS)
    return {
        "models": {name: table_dict(table) for name, table in tables.items()},
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

    lines += ["## Mean over metabolites", ""]
    rows = {name: m["mean"] for name, m in models.items()}
    if comparison["mean_predictor"]:
        rows["mean predictor (baseline)"] = comparison["mean_predictor"]["mean"]
    lines += _metric_table(rows, "method")
    lines += [
        "",
        "Each column is the unweighted mean over metabolites of the per-metabolite value. "
        "The baseline predicts, for every signal, the mean of the training targets.",
        "",
    ]
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
        lines += [f"## Per metabolite: {name} ({m['n_signals']} test signals)", ""]
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
