"""File IO: the only code that touches files or vendor conventions.

Each format's module converts its orientation to the internal one of
:mod:`scaloquant.signal.axes` (FSL-MRS's internal orientation, ppm increasing with the
``fftshift(fft)`` index) in its reader and writer, and nowhere else. Every row is checked against
files that another tool wrote (``tests/unit/test_io_outside.py``) where ``../shared`` has them,
which it has for all but FSL-MRS ``.json`` (FSL-MRS is not on PyPI; that row is checked against
FSL-MRS's code, ``fsl_io.write_fsl_basis_file`` / ``readFSLBasisFiles``, in
``tests/unit/test_io_roundtrip.py``) and scaloquant's own ``.npz``; LCModel's ``.coord``, no
FID and no basis, against a file LCModel writes in ``tests/unit/test_io_lcmodel_output.py``:

========================  ==========================  =======================================
module                    files                       conversion to the internal convention
========================  ==========================  =======================================
:mod:`.lcmodel`           ``.RAW``, ``.H2O``, ``.BASIS``  conjugate
:mod:`.lcmodel_output`    LCModel's ``.coord`` output   none (read back for comparison)
:mod:`.text`              2/4-column text ``.txt``    conjugate (as the ISMRM 2016 files)
:mod:`.jmrui`             jMRUI ``.txt``              none
:mod:`.nifti`             ``.nii``, ``.nii.gz``       conjugate (NIfTI-MRS Appendix A)
:mod:`.fsl`               FSL-MRS basis ``.json``     conjugate (as FSL-MRS's own reader)
:mod:`.npz`               scaloquant basis ``.npz``   none
========================  ==========================  =======================================
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for the readers of the code; imported by __getattr__
    from .default import default_basis
    from .dispatch import read_basis, read_fid
    from .fsl import read_fsl_basis, write_fsl_basis
    from .jmrui import read_jmrui_txt
    from .lcmodel import (
        read_lcmodel_basis,
        read_lcmodel_raw,
        write_lcmodel_basis,
        write_lcmodel_raw,
    )
    from .lcmodel_output import read_lcmodel_coord
    from .nifti import read_nifti_mrs, write_nifti_mrs
    from .npz import read_basis_npz, write_basis_npz
    from .text import read_text_fid

#: Each reader and writer's module, imported when the name is first asked for (PEP 562): the
#: readers load numpy (and nibabel, h5py), and ``scaloquant.io.atomic`` or ``.config`` (the
#: CLI's refusal of an output that exists, its config files) must not wait for them.
_MODULES = {
    "default_basis": "default",
    "read_basis": "dispatch",
    "read_fid": "dispatch",
    "read_fsl_basis": "fsl",
    "write_fsl_basis": "fsl",
    "read_jmrui_txt": "jmrui",
    "read_lcmodel_basis": "lcmodel",
    "read_lcmodel_raw": "lcmodel",
    "write_lcmodel_basis": "lcmodel",
    "write_lcmodel_raw": "lcmodel",
    "read_lcmodel_coord": "lcmodel_output",
    "read_nifti_mrs": "nifti",
    "write_nifti_mrs": "nifti",
    "read_basis_npz": "npz",
    "write_basis_npz": "npz",
    "read_text_fid": "text",
}

__all__ = [
    "default_basis",
    "read_basis",
    "read_basis_npz",
    "read_fid",
    "read_fsl_basis",
    "read_jmrui_txt",
    "read_lcmodel_basis",
    "read_lcmodel_coord",
    "read_lcmodel_raw",
    "read_nifti_mrs",
    "read_text_fid",
    "write_basis_npz",
    "write_fsl_basis",
    "write_lcmodel_basis",
    "write_lcmodel_raw",
    "write_nifti_mrs",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_MODULES[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULES})
