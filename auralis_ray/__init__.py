"""Auralis: an endless generative ambient music stream, synthesized with PyTorch and served by Ray."""

__version__ = "0.1.0"
