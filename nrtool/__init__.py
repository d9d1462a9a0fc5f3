"""nrtool: neural representations of 3D signals, as a command-line toolkit."""

__version__ = "0.1.0"
