"""Station parameters: what a listener (or the control endpoint) may change, validated."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from auralis_ray.music.theory import MODES, normalize_key, normalize_mode

PRESETS: dict[str, dict[str, Any]] = {
    "focus": {"key": "D", "mode": "dorian", "bpm": 72.0, "intensity": 0.45, "variety": 0.5, "density": 0.5},
    "meditation": {"key": "F", "mode": "lydian", "bpm": 54.0, "intensity": 0.25, "variety": 0.35, "density": 0.3},
    "sleep": {"key": "A", "mode": "aeolian", "bpm": 44.0, "intensity": 0.1, "variety": 0.25, "density": 0.2},
    "bright": {"key": "G", "mode": "ionian", "bpm": 96.0, "intensity": 0.7, "variety": 0.65, "density": 0.7},
}


class StationParams(BaseModel):
    """Musical controls of one station. A bad field raises pydantic.ValidationError naming it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: str = "focus"
    key: str = "D"
    mode: str = "dorian"
    bpm: float = Field(default=72.0, ge=40.0, le=120.0, allow_inf_nan=False)
    intensity: float = Field(default=0.45, ge=0.0, le=1.0, allow_inf_nan=False)
    variety: float = Field(default=0.5, ge=0.0, le=1.0, allow_inf_nan=False)
    density: float = Field(default=0.5, ge=0.0, le=1.0, allow_inf_nan=False)

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str) -> str:
        if value not in PRESETS:
            raise ValueError(f"unknown preset {value!r}; choose one of {sorted(PRESETS)}")
        return value

    @field_validator("key")
    @classmethod
    def _known_key(cls, value: str) -> str:
        return normalize_key(value)

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, value: str) -> str:
        return normalize_mode(value)

    @classmethod
    def from_preset(cls, preset: str, **overrides: Any) -> "StationParams":
        """The preset's parameters with non-None overrides; an unknown preset raises ValueError naming `preset`."""
        if preset not in PRESETS:
            raise ValueError(f"preset: unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        values = dict(PRESETS[preset])
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["preset"] = preset
        return cls(**values)

    def updated(self, **changes: Any) -> "StationParams":
        """A validated copy with `changes` applied (None values are ignored)."""
        values = self.model_dump()
        values.update({k: v for k, v in changes.items() if v is not None})
        return type(self)(**values)

    @property
    def beat_seconds(self) -> float:
        return 60.0 / self.bpm


assert all(p["mode"] in MODES for p in PRESETS.values())
assert all(math.isfinite(p["bpm"]) for p in PRESETS.values())
