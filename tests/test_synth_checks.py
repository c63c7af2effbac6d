"""The audio checks can fail: each detects the defect it is for."""

import numpy as np

from audio_checks import (clicks, dropouts, integrated_lufs, key_energy_fraction, max_similarity,
                          true_peak_dbtp)
from test_synth_audio import LOOP_THRESHOLD, render

SR = 44100


def test_click_detector_finds_a_discontinuity_and_a_restarted_oscillator():
    x = render("focus").astype(np.float64) / 32768
    assert clicks(x).count == 0
    y = x.copy()
    y[20 * SR:, :] *= -1  # polarity flip: a step in the waveform
    assert clicks(y).count > 0
    t = np.arange(4 * SR) / SR
    tone = 0.3 * np.sin(2 * np.pi * 220.4 * (t % 1.0))  # restarting phase every second (the old engine)
    assert clicks(np.stack([tone, tone], 1)).count > 0


def test_dropout_detector():
    x = render("sleep").astype(np.float64)
    x[30 * SR:30 * SR + SR // 5] = 0
    assert dropouts(x / 32768) >= 1


def test_loop_detector():
    x = render("focus")
    assert max_similarity(np.concatenate([x[: 25 * SR], x[: 25 * SR]])) > LOOP_THRESHOLD


def test_key_energy_detects_wrong_key_and_loudness_peak_meters():
    t = np.arange(5 * SR) / SR
    chord = sum(np.sin(2 * np.pi * 440 * 2 ** (k / 12) * t) for k in (1, 6, 8))  # Bb, Eb, F
    x = np.stack([chord, chord], 1) * 0.1
    assert key_energy_fraction(x, "C", "ionian") < 0.5
    assert key_energy_fraction(x, "Bb", "ionian") > 0.95
    sine = 0.5 * np.sin(2 * np.pi * 997 * t)
    assert abs(integrated_lufs(np.stack([sine, sine], 1)) - (-6.0 + 3.0 - 0.691 - 3.0 + 0.0)) < 1.0
    assert abs(true_peak_dbtp(np.stack([sine, sine], 1)) - 20 * np.log10(0.5)) < 0.1
