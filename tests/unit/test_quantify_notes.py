"""The notes of ``quantify`` with a physics-head model say which columns of a refitted row are
the fit's."""

from __future__ import annotations

from scaloquant.fit.config import FIT_PRESETS
from scaloquant.quantify.notes import baseline_note
from scaloquant.quantify.results import QUALITY_COLUMNS

#: The quality columns measured on the data, the same whoever fitted it.
MEASURED_ON_THE_DATA = ("snr", "fwhm_hz", "fwhm_ppm", "qc")


def test_the_refit_note_names_every_quality_column_of_the_fit():
    """A row fitted again as ``fit`` fits it carries the fit's residual columns; the note
    named ``fit_residual`` alone after ``residual_over_noise`` came (session 32, `audit32`)."""
    note = baseline_note(FIT_PRESETS["invivo"], None, 5, 3)
    assert note is not None and "3 spectra asked for a more flexible baseline" in note
    of_the_fit = [c for c in QUALITY_COLUMNS if c not in MEASURED_ON_THE_DATA]
    assert of_the_fit == ["fit_residual", "residual_over_noise"]
    said = note.split("): their estimates, ")[1]
    assert all(column in said for column in of_the_fit), said
