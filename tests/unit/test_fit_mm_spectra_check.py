"""The one check of the measured MM spectra a fit takes (``fit.config.require_mm_spectra_fit``):
the CLI makes it before anything is read (``fit --mm-spectrum`` with ``--mm``), and
``fit_inputs`` again for a Python caller and a config file's ``macromolecules``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from scaloquant.cli import OPTION_FLAGS
from scaloquant.errors import NeedsOption
from scaloquant.fit.config import FIT_PRESETS, require_mm_spectra_fit
from scaloquant.io.default import default_basis
from scaloquant.quantify import MMSpectrumFile, Options, fit_inputs
from scaloquant.types import FID

#: The CLI's two refusals as its own check worded them before they became this one (session 34,
#: splitq34): their words must not change.
CLI_COUNT = (
    "2 --mm-spectrum files for 1 input; give one for all inputs or one per input, in the "
    "inputs' order"
)
CLI_PARAMETRIC = (
    "--mm-spectrum is the fit's macromolecules and --mm parametric asks for parametric instead: "
    "give one or the other (with --mm-spectrum, --mm auto adds parametric lipids, --mm basis "
    "none)"
)


@pytest.mark.parametrize(
    ("n_spectra", "n_inputs", "macromolecules"),
    [(0, 3, "none"), (1, 3, "auto"), (3, 3, "basis"), (1, 1, None), (2, 2, None)],
)
def test_none_one_or_one_per_input_with_their_own_macromolecules_pass(
    n_spectra, n_inputs, macromolecules
):
    require_mm_spectra_fit(n_spectra, n_inputs, macromolecules)


def test_the_cli_words_its_flags_as_before():
    with pytest.raises(NeedsOption) as count:
        require_mm_spectra_fit(2, 1, None, setting="--mm {}")
    with pytest.raises(NeedsOption) as parametric:
        require_mm_spectra_fit(1, 1, "parametric", setting="--mm {}")
    assert count.value.worded(OPTION_FLAGS) == CLI_COUNT
    assert parametric.value.worded(OPTION_FLAGS) == CLI_PARAMETRIC


def test_the_library_names_its_keyword_and_the_fits_setting():
    with pytest.raises(NeedsOption) as count:
        require_mm_spectra_fit(2, 3, "auto")
    assert str(count.value).startswith("2 mm_spectra files for 3 inputs; give one for all")
    with pytest.raises(NeedsOption) as none:
        require_mm_spectra_fit(1, 3, "none")
    assert str(none.value) == (
        "mm_spectra is the fit's macromolecules and macromolecules 'none' asks for none "
        "instead: give one or the other (with mm_spectra, macromolecules 'auto' adds "
        "parametric lipids, macromolecules 'basis' none)"
    )


def test_fit_inputs_refuses_the_fits_parametric_macromolecules_before_any_work():
    """No input at all: the refusal comes before anything would be matched or fitted (a config
    file's ``macromolecules``, which the CLI cannot check before it reads the config)."""
    basis = default_basis()
    mm = MMSpectrumFile(
        Path("mm.nii.gz"),
        FID(
            samples=np.ones(basis.n_points, complex),
            dwell_time_s=basis.dwell_time_s,
            spectrometer_freq_mhz=basis.spectrometer_freq_mhz,
        ),
    )
    options = Options(fit_config=replace(FIT_PRESETS["invivo"], macromolecules="parametric"))
    with pytest.raises(NeedsOption, match="macromolecules 'parametric' asks for parametric"):
        fit_inputs([], basis, basis_name="default", options=options, mm_spectra=[mm])
