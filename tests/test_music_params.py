import pytest
from pydantic import ValidationError

from auralis_ray.music.params import PRESETS, StationParams
from auralis_ray.music.theory import KEY_NAMES, MODES


def _fields(error: ValidationError) -> set[str]:
    return {str(e["loc"][0]) for e in error.errors()}


@pytest.mark.parametrize("field,value", [("bpm", 0), ("bpm", 121), ("intensity", 7), ("intensity", -0.1),
                                         ("key", "H"), ("key", "E#"), ("mode", "locrian2"), ("variety", 2),
                                         ("density", float("nan")), ("bpm", float("inf"))])
def test_bad_fields_are_rejected_by_name(field, value):
    with pytest.raises(ValidationError) as info:
        StationParams(**{field: value})
    assert _fields(info.value) == {field}
    assert field in str(info.value)


def test_unknown_preset_names_the_field():
    with pytest.raises(ValueError, match="preset"):
        StationParams.from_preset("disco")
    with pytest.raises(ValidationError) as info:
        StationParams(preset="disco")
    assert _fields(info.value) == {"preset"}


def test_presets_and_overrides():
    assert set(PRESETS) >= {"focus", "meditation", "sleep", "bright"}
    for name in PRESETS:
        p = StationParams.from_preset(name)
        assert p.preset == name and 40 <= p.bpm <= 120
    p = StationParams.from_preset("sleep", key="f#", mode="Minor", bpm=None, intensity=None)
    assert (p.key, p.mode, p.bpm) == ("F#", "aeolian", PRESETS["sleep"]["bpm"])


def test_updated_is_validated_copy():
    p = StationParams.from_preset("focus")
    q = p.updated(bpm=100, key="Bb")
    assert (q.bpm, q.key, p.bpm) == (100, "Bb", PRESETS["focus"]["bpm"])
    with pytest.raises(ValidationError) as info:
        p.updated(intensity=7)
    assert _fields(info.value) == {"intensity"}
    with pytest.raises(ValidationError):
        p.updated(tempo=80)


def test_twelve_keys_six_modes():
    assert len({StationParams(key=k).key for k in KEY_NAMES}) == 17  # 12 pitch classes, enharmonic spellings
    assert set(MODES) >= {"ionian", "dorian", "phrygian", "lydian", "mixolydian", "aeolian"}
