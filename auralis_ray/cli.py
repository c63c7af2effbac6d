"""The `auralis` command: run, stop, monitor, render, loadtest, soak, drain, config."""

from __future__ import annotations

import argparse
import importlib
import json
import sys


def _cmd_config(args: argparse.Namespace) -> int:
    from .config import ConfigError, load_config

    overrides = {}
    if args.serve_config:
        import yaml

        applications = yaml.safe_load(open(args.serve_config, encoding="utf-8")).get("applications") or [{}]
        overrides = applications[0].get("args") or {}
    try:
        config = load_config(**overrides)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    print(json.dumps(config.model_dump(), indent=2))
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    from .config import load_config
    from .core_settings import batch_render_config, render_block_frames
    from .music.params import StationParams
    from .synth.offline import render_to_wav

    try:
        params = StationParams.from_preset(args.preset, key=args.key, mode=args.mode, bpm=args.bpm,
                                           intensity=args.intensity)
        gpu = load_config().gpu
    except ValueError as error:  # ConfigError and pydantic's ValidationError are ValueErrors
        raise SystemExit(f"auralis render: {error}") from None
    render_to_wav(args.out, params, args.seed, args.seconds, batch_render_config(gpu), render_block_frames(gpu),
                  progress=not args.quiet)
    return 0


def _add_render_subcommand(sub) -> None:
    from .music.params import PRESETS

    render = sub.add_parser("render", help="render a preset to a 16-bit 44.1 kHz stereo WAV file, with the "
                                           "configuration's synthesis settings (gpu.*) on the CPU")
    render.add_argument("--preset", default="focus", help=f"one of {', '.join(sorted(PRESETS))}")
    render.add_argument("--seconds", type=float, default=180.0)
    render.add_argument("--seed", type=int, default=1)
    render.add_argument("--out", required=True, help="output .wav path")
    render.add_argument("--key", default=None, help="C, F#, Bb, ... (default: the preset's)")
    render.add_argument("--mode", default=None, help="ionian, dorian, phrygian, lydian, mixolydian, aeolian")
    render.add_argument("--bpm", type=float, default=None, help="40-120")
    render.add_argument("--intensity", type=float, default=None, help="0-1")
    render.add_argument("--quiet", action="store_true", help="no progress bar")
    render.set_defaults(func=_cmd_render)


def _cmd_drain(args: argparse.Namespace) -> int:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{args.url}/api/admin/drain", method="POST",
                                     headers={"Authorization": f"Bearer {args.token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            print(answer.read().decode())
            return 0
    except urllib.error.HTTPError as error:
        print(error.read().decode())
        return 1


TOOLS_INSTALL = "pip install 'auralis-ray[tools]'"

# Subcommands run by the development tools: name -> (module, the function that registers it)
TOOL_SUBCOMMANDS = {
    "loadtest": ("auralis_ray.tools.loadtest.cli", "add_loadtest_subcommand"),
    "soak": ("auralis_ray.tools.soak", "add_soak_subcommand"),
}


def _add_tool_subcommand(sub, name: str, module: str, register: str) -> None:
    """Register a tool's subcommand. When a third-party module the tool needs is missing, the
    subcommand says how to install it instead; a missing module of `auralis_ray` itself raises."""
    try:
        tool = importlib.import_module(module)
    except ModuleNotFoundError as missing:
        if missing.name is None or missing.name.partition(".")[0] == __package__:
            raise
        _add_unavailable_tool(sub, name, missing.name.partition(".")[0])
        return
    getattr(tool, register)(sub)


def _add_unavailable_tool(sub, name: str, missing_module: str) -> None:
    """`auralis <name> ...`, whatever its arguments, prints how to install the tool and exits 2."""
    message = f"auralis {name} needs the module '{missing_module}', which is not installed: {TOOLS_INSTALL}"
    # No option prefix: every argument, --help included, is taken as a plain word and ignored
    parser = sub.add_parser(name, help=f"(unavailable without {missing_module}: {TOOLS_INSTALL})",
                            add_help=False, prefix_chars="\0")
    parser.add_argument("arguments", nargs="*")
    parser.set_defaults(func=lambda args: _print_error(message))


def _print_error(message: str) -> int:
    print(message, file=sys.stderr)
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="auralis", description="Auralis generative ambient stream")
    sub = parser.add_subparsers(dest="command", required=True)

    _add_render_subcommand(sub)
    for name, (module, register) in TOOL_SUBCOMMANDS.items():
        _add_tool_subcommand(sub, name, module, register)

    config = sub.add_parser("config", help="print the configuration from the environment, with a Serve "
                                           "config's args over it (validates both)")
    config.add_argument("--serve-config", metavar="FILE",
                        help="a Serve config (configs/serve.yaml): its first application's args override")
    config.set_defaults(func=_cmd_config)

    from .serve import launcher

    run = sub.add_parser("run", help="start Ray, Serve and Auralis on this machine (make run); Ctrl-C stops all")
    launcher.add_arguments(run)
    run.set_defaults(func=launcher.run)
    stop = sub.add_parser("stop", help="end what a `auralis run` of this checkout left running")
    launcher.add_arguments(stop)
    stop.set_defaults(func=launcher.stop)
    monitor = sub.add_parser("monitor", help="Prometheus on this checkout's `auralis run` (make monitor)")
    launcher.add_monitor_arguments(monitor)
    monitor.set_defaults(func=launcher.monitor)

    drain = sub.add_parser("drain", help="send shutdown_warning to every listener of a replica and drain it")
    drain.add_argument("--url", default="http://127.0.0.1:8000")
    drain.add_argument("--token", required=True)
    drain.set_defaults(func=_cmd_drain)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
