"""The soak pipeline runs end to end and reports a memory slope (the 8-hour run is in `make bench`)."""

import math

from auralis_ray.tools.soak import run_soak


def test_short_soak_reports_memory_slope():
    report = run_soak(hours_equivalent=0.1, listeners=3, sample_every_audio_sec=15.0, save_record=False)
    assert report.chunks == 3600 and report.audio_seconds == 360.0
    assert math.isfinite(report.slope_mb_per_hour)
    assert report.speed_x_realtime > 1 and report.rss_end_mb > 0
