"""``icechat graph-emulator``: run the local Microsoft Graph emulator in the foreground."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

from icechat.exceptions import GraphEmulatorError
from icechat.graph_emulator import FaultConfig, GraphEmulator


def add_parser(subparsers: Any) -> None:
    """Register the sub-command."""
    parser = subparsers.add_parser(
        "graph-emulator",
        help="run the local Microsoft Graph emulator (HTTPS) for tests and the demo",
        description="Serve Entra ID tokens and the Microsoft Graph mail API on a local HTTPS"
        " port, with state kept in --state. Prints one JSON line with the URLs, tenant id"
        " and CA bundle once it is listening.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8443, help="port (0 picks a free one)")
    parser.add_argument(
        "--users", type=Path, help="JSON file of users (and optionally apps) to load"
    )
    parser.add_argument(
        "--state", type=Path, default=Path("graph-emulator-state"), help="state directory"
    )
    defaults = FaultConfig()
    parser.add_argument("--latency-ms", type=int, default=defaults.latency_ms)
    parser.add_argument(
        "--max-concurrent",
        type=int,
        default=defaults.max_concurrent,
        help="requests in flight per app and mailbox (0: no limit)",
    )
    parser.add_argument(
        "--window-requests", type=int, help="requests per window per app and mailbox"
    )
    parser.add_argument("--window-seconds", type=float, default=defaults.window_seconds)
    parser.add_argument("--retry-after", type=int, default=defaults.retry_after)
    parser.add_argument("--rate-503", type=float, default=defaults.rate_503)
    parser.add_argument(
        "--rate-429-after-success", type=float, default=defaults.rate_429_after_success
    )
    parser.add_argument("--seed", type=int)
    parser.set_defaults(func=run)


def _directory(path: Path | None) -> Any:
    if path is None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GraphEmulatorError(
            f"{path}: cannot read the users file ({exc}); give a JSON list of users or an"
            " object with 'users' and 'apps'"
        ) from exc


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    """Start the emulator and serve until interrupted."""
    try:
        config = FaultConfig().updated(
            {
                "latency_ms": args.latency_ms,
                "max_concurrent": args.max_concurrent or None,
                "window_requests": args.window_requests,
                "window_seconds": args.window_seconds,
                "retry_after": args.retry_after,
                "rate_503": args.rate_503,
                "rate_429_after_success": args.rate_429_after_success,
                "seed": args.seed,
            }
        )
        emulator = GraphEmulator(
            args.state,
            host=args.host,
            port=args.port,
            directory=_directory(args.users),
            config=config,
        )
    except ValueError as exc:
        source = args.users or "the command line"
        raise GraphEmulatorError(f"{source}: {exc}") from exc
    except OSError as exc:
        raise GraphEmulatorError(
            f"cannot listen on {args.host}:{args.port} or use state {args.state}: {exc}"
        ) from exc
    print(json.dumps(emulator.info()), flush=True)
    signal.signal(signal.SIGTERM, _stop)
    try:
        emulator.serve_forever()
    except KeyboardInterrupt:
        print("graph emulator stopped", file=sys.stderr)
    return 0
