"""pneumobench: one reproducible benchmark for pneumonia classifiers on chest X-rays."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pneumobench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
