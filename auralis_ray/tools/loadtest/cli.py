"""`auralis loadtest`: open N listeners against a server and print the report.

    python -m auralis_ray.tools.loadtest.cli --url ws://127.0.0.1:8000 --listeners 100 --seconds 10

--format json, binary or opus opens WebSocket listeners; http-mp3 or http-opus opens listeners that
GET /listen/{station}.mp3 or .opus on the same port and read the stream as it comes.
With --baseline the same load is then run against the bare baseline (`websockets`, or plain HTTP
streams for the http formats; started on a free port in a subprocess), sending the same frames, and
both reports are printed side by side.
Exit status: 0 when the run completed (pass or fail is in the report; add --strict
to exit 3 on a failed goal), 1 when it could not run, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from auralis_ray.tools.loadtest.baseline import baseline_subprocess
from auralis_ray.tools.loadtest.client import run_loadtest
from auralis_ray.tools.loadtest.config import Goals, LoadTestConfig
from auralis_ray.tools.loadtest.frames import FORMATS, TIER_TARGET_MS
from auralis_ray.tools.loadtest.report import LoadReport, cpu_ratio, format_report, format_side_by_side

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_GOALS_FAILED = 0, 1, 2, 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default="ws://127.0.0.1:8000", help="server base URL (ws://HOST:PORT)")
    parser.add_argument("--listeners", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0, help="steady-state window after the ramp")
    parser.add_argument("--format", choices=FORMATS, default="binary",
                        help="WebSocket audio (json, binary, opus) or an HTTP stream (http-mp3, http-opus)")
    parser.add_argument("--station", default="default")
    parser.add_argument("--tier", choices=tuple(TIER_TARGET_MS), default="normal")
    parser.add_argument("--procs", type=int, default=1, help="worker processes to split listeners across")
    parser.add_argument("--nice", type=int, default=10,
                        help="priority (nice 0-19) of the listener processes, each in a process session of "
                             "its own: what listeners hear is timed by the kernel's arrival stamps, so the "
                             "generator yields the cores to the server it measures; 0 competes with it "
                             "as an equal")
    parser.add_argument("--ramp-rate", type=float, default=200.0, help="connections opened per second")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds between ramp end and window")
    parser.add_argument("--idle", type=float, default=LoadTestConfig.idle_s, help="seconds of idle server measurement")
    parser.add_argument("--server-pid", type=int, action="append", default=[],
                        help="server process to measure, with its children (repeatable); "
                             "default: every ray::/raylet/gcs_server/serve process")
    parser.add_argument("--deflate", action="store_true", help="offer permessage-deflate like a browser")
    parser.add_argument("--mp3-resync", action="store_true",
                        help="http-mp3: skip the bytes before the first frame header, for a server whose "
                             "burst starts mid-frame (Icecast); without it such a stream counts as bad")
    parser.add_argument("--baseline", action="store_true",
                        help="also run the same load against the bare baseline")
    parser.add_argument("--max-server-us", type=float, default=None,
                        help="goal: at most this many µs of marginal server CPU per listener per 100 ms of audio")
    parser.add_argument("--json-out", type=Path, help="write the report(s) as JSON here")
    parser.add_argument("--strict", action="store_true", help="exit 3 when a goal fails")


def add_loadtest_subcommand(subparsers: Any) -> argparse.ArgumentParser:
    """Register `loadtest` on an argparse subparsers object; it dispatches to `run_cli`."""
    parser = subparsers.add_parser(
        "loadtest", help="open many listeners and report latency, gaps, underruns and server cost",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=run_cli)
    return parser


def config_from_args(args: argparse.Namespace) -> LoadTestConfig:
    return LoadTestConfig(
        url=args.url,
        listeners=args.listeners,
        seconds=args.seconds,
        format=args.format,
        station=args.station,
        tier=args.tier,
        procs=args.procs,
        nice=args.nice,
        ramp_rate=args.ramp_rate,
        settle_s=args.settle,
        idle_s=args.idle,
        deflate=args.deflate,
        mp3_resync=args.mp3_resync,
        server_pids=tuple(args.server_pid),
        label="target",
        goals=Goals(max_server_us_per_listener_per_100ms=args.max_server_us),
    )


def run_with_baseline(config: LoadTestConfig) -> tuple[LoadReport, LoadReport]:
    """The load against the target, then the same load against a fresh baseline."""
    target = run_loadtest(config)
    with baseline_subprocess(http=config.is_http) as (url, pid):
        base = run_loadtest(dataclasses.replace(config, url=url, server_pids=(pid,), label="baseline"))
    return target, base


def comparison_dict(target: LoadReport, base: LoadReport) -> dict[str, Any]:
    return {
        "target": target.to_dict(),
        "baseline": base.to_dict(),
        "cpu_per_listener_ratio": cpu_ratio(target, base),
        "cpu_marginal_per_listener_ratio": cpu_ratio(target, base, marginal=True),
    }


def run_cli(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"loadtest: {exc}", file=sys.stderr)
        return EXIT_USAGE
    total = config.idle_s + config.ramp_s + config.settle_s + config.seconds
    print(f"loadtest: {config.listeners} {config.format} listeners against "
          f"{config.stream_url() if config.is_http else config.url}, "
          f"~{total:.0f} s{' (then the baseline)' if args.baseline else ''}", file=sys.stderr)
    try:
        if args.baseline:
            target, base = run_with_baseline(config)
            out: dict[str, Any] = comparison_dict(target, base)
            print(format_side_by_side(target, base))
            reports = [target, base]
        else:
            target = run_loadtest(config)
            out = target.to_dict()
            print(format_report(target))
            reports = [target]
    except (OSError, RuntimeError) as exc:
        print(f"loadtest: could not run: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(out, indent=2) + "\n")
    if args.strict and not reports[0].passed:
        return EXIT_GOALS_FAILED
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="auralis loadtest", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    return run_cli(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
