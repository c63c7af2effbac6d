"""The soak pipeline runs end to end and reports a memory slope (the 8-hour run is in `make bench`)."""

import math

from auralis_ray.tools.soak import run_soak


def test_short_soak_feeds_every_listener_every_chunk_and_reports_a_memory_slope():
    report = run_soak(hours_equivalent=0.1, listeners=3, sample_every_audio_sec=15.0, save_record=False)
    assert report.chunks == 3600
    assert report.chunks_sent == 3 * report.chunks and report.overruns == 0, "each listener took every chunk"
    assert math.isfinite(report.slope_mb_per_hour) and report.rss_end_mb > 0
