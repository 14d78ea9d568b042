"""itsOCR mock server: the live itsOCR API's semantics, free, instant and controllable."""

__version__ = "0.1.0"
