"""The `auralis` command: render, loadtest, soak, drain, config."""

from __future__ import annotations

import argparse
import json
import sys


def _cmd_config(args: argparse.Namespace) -> int:
    from .config import ConfigError, load_config

    try:
        config = load_config()
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    print(json.dumps(config.model_dump(), indent=2))
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="auralis", description="Auralis generative ambient stream")
    sub = parser.add_subparsers(dest="command", required=True)

    from .synth.offline import add_render_subcommand

    add_render_subcommand(sub)
    try:
        from .loadtest.cli import add_loadtest_subcommand

        add_loadtest_subcommand(sub)
    except ImportError:
        pass
    from .soak import add_soak_subcommand

    add_soak_subcommand(sub)

    config = sub.add_parser("config", help="print the effective configuration (validates the environment)")
    config.set_defaults(func=_cmd_config)

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
