"""Composition: pure Python/numpy, seeded. Turns StationParams + a seed into timed note events."""

from auralis_ray.music.params import PRESETS, StationParams
from auralis_ray.music.composer import Composer, Note

__all__ = ["Composer", "Note", "PRESETS", "StationParams"]
