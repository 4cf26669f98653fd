"""``icechat graph-emulator``: run the local Microsoft Graph emulator in the foreground."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from icechat.dev.graph_emulator import FaultConfig, GraphEmulator
from icechat.exceptions import GraphEmulatorError

ENV_FAULTS = "ICECHAT_GRAPH_EMULATOR_FAULTS"
_FAULT_FLAGS: tuple[tuple[str, type, str], ...] = (
    ("--latency-ms", int, "delay before each Graph answer"),
    ("--latency-max-ms", int, "if above --latency-ms, delays are drawn evenly up to it"),
    ("--max-concurrent", int, "requests in flight per app and mailbox; 0 = no limit"),
    ("--window-requests", int, "requests per window per app and mailbox"),
    ("--window-seconds", float, "length of that window"),
    ("--retry-after", int, "seconds given in Retry-After"),
    ("--upload-bytes", int, "PATCH/POST/PUT bytes per window per app and mailbox; 0 = no limit"),
    ("--upload-seconds", float, "length of that upload window"),
    ("--rate-500", float, "fraction of mailbox requests answered 500"),
    ("--rate-502", float, "fraction of mailbox requests answered 502"),
    ("--rate-503", float, "fraction of mailbox requests answered 503"),
    ("--rate-429-after-success", float, "fraction of creates stored but answered 429"),
    ("--seed", int, "seed for the random faults"),
)


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
    faults = parser.add_argument_group(
        "limits and faults",
        f"also settable as a JSON object in ${ENV_FAULTS} (flags win) and at run time with"
        " POST /_emulator/config",
    )
    for flag, kind, text in _FAULT_FLAGS:
        name = flag.removeprefix("--").replace("-", "_")
        faults.add_argument(flag, type=kind, help=f"{text} (default {getattr(defaults, name)})")
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


def _fault_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Settings from the environment, then from the flags given."""
    settings: dict[str, Any] = {}
    if os.environ.get(ENV_FAULTS):
        try:
            settings = dict(json.loads(os.environ[ENV_FAULTS]))
        except (ValueError, TypeError) as exc:
            raise GraphEmulatorError(f"${ENV_FAULTS} is not a JSON object: {exc}") from exc
    for flag, _, _ in _FAULT_FLAGS:
        name = flag.removeprefix("--").replace("-", "_")
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    for name in ("max_concurrent", "upload_bytes"):
        if settings.get(name) == 0:
            settings[name] = None
    return settings


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    """Start the emulator and serve until interrupted."""
    try:
        config = FaultConfig().updated(_fault_settings(args))
        emulator = GraphEmulator(
            args.state,
            host=args.host,
            port=args.port,
            directory=_directory(args.users),
            config=config,
        )
    except (ValueError, TypeError) as exc:
        source = args.users or f"the command line or ${ENV_FAULTS}"
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
