"""Where the shared data lie for the tests: ``../shared`` beside the repository's folder, as CI
and a developer's checkout have it (the tests that need a file skip, saying which, where it is
absent). One place, so that a test never names a machine's own path."""

from __future__ import annotations

from pathlib import Path

#: ``../shared`` beside the repository.
SHARED = Path(__file__).resolve().parents[2] / "shared"
DATA = SHARED / "data"
#: The default basis set's source files (LCModel ``.BASIS``, jMRUI, text).
ISMRM2016_BASIS = DATA / "ismrm2016" / "basis"
#: The 28 ISMRM 2016 fitting-challenge spectra.
CHALLENGE = DATA / "ismrm2016-challenge"
#: The scanner spectra (Philips, Siemens) as vendor files and NIfTI-MRS.
INVIVO = DATA / "invivo"
