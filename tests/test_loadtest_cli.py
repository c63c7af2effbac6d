"""The `loadtest` subcommand's arguments map onto LoadTestConfig."""

import argparse

from auralis_ray.tools.loadtest.cli import EXIT_USAGE, add_loadtest_subcommand, config_from_args, run_cli


def _parse(*argv):
    parser = argparse.ArgumentParser()
    add_loadtest_subcommand(parser.add_subparsers(dest="command"))
    return parser.parse_args(["loadtest", *argv])


def test_subcommand_arguments_build_the_config():
    args = _parse("--url", "ws://10.0.0.1:9000", "--listeners", "1000", "--seconds", "15", "--format", "json",
                  "--station", "night", "--tier", "stable", "--procs", "4", "--server-pid", "12",
                  "--server-pid", "34", "--baseline", "--json-out", "out.json")
    assert args.func is run_cli and args.baseline and str(args.json_out) == "out.json"
    c = config_from_args(args)
    assert (c.url, c.listeners, c.seconds, c.format, c.station, c.tier, c.procs) == (
        "ws://10.0.0.1:9000", 1000, 15.0, "json", "night", "stable", 4)
    assert c.server_pids == (12, 34) and c.ramp_rate == 200.0
    assert c.listener_uri("a") == "ws://10.0.0.1:9000/ws/audio/a?station=night&format=json&buffer_tier=stable"


def test_bad_values_exit_with_usage_status(capsys):
    assert run_cli(_parse("--listeners", "2", "--procs", "3")) == EXIT_USAGE
    assert "procs" in capsys.readouterr().err


def test_http_formats_and_the_cpu_goal():
    args = _parse("--format", "http-mp3", "--listeners", "1000", "--max-server-us", "10.4", "--baseline")
    c = config_from_args(args)
    assert c.is_http and c.stream_url() == "http://127.0.0.1:8000/listen/default.mp3"
    assert c.goals.max_server_us_per_listener_per_100ms == 10.4
    opus = config_from_args(_parse("--format", "opus"))
    assert opus.listener_uri("a").endswith("format=opus&buffer_tier=normal")
    assert opus.goals.max_server_us_per_listener_per_100ms is None
