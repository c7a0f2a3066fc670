"""scaloquant: quantify MRS metabolites with deep learning on Morse-wavelet scalograms."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("scaloquant")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
