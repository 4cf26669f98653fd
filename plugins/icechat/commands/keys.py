"""``icechat keys``: make the SSH and OpenPGP key pairs for onboarding with ICE.

Private halves and the passphrase go to owner-only files under ``--out``; the public halves
and the Airflow connection values are printed. Secrets are printed only with
``--show-secrets``; otherwise the output names the file that holds each one.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from icechat.exceptions import OnboardingError
from icechat.ice.keys import (
    PGP_ALGOS,
    SSH_TYPES,
    env_line,
    make_pgp_keypair,
    make_ssh_keypair,
    new_passphrase,
    pgp_connection,
    sftp_connection,
)

SSH_KEY = "icechat_sftp_key"
PGP_PUBLIC = "icechat_pgp_public.asc"
PGP_SECRET_FILE = "icechat_pgp_secret.asc"  # noqa: S105 (a file name)
PASSPHRASE_FILE = "icechat_pgp_passphrase.txt"  # noqa: S105 (a file name)
CONNECTIONS_JSON = "connections.json"
CONNECTIONS_ENV = "connections.env"


def add_parser(subparsers: Any) -> None:
    """Register ``icechat keys``."""
    p = subparsers.add_parser(
        "keys",
        help="make the SSH and OpenPGP key pairs to send to ICE, and the Airflow connections",
        description=__doc__,
    )
    p.add_argument("--out", required=True, type=Path, help="directory for the key files")
    p.add_argument("--firm", default="FIRMCODE", help="firm code = SFTP login (from ICE)")
    p.add_argument("--host", default="sftp.ice.example", help="ICE SFTP host name (from ICE)")
    p.add_argument("--port", type=int, default=22, help="ICE SFTP port")
    p.add_argument(
        "--host-key",
        default="REPLACE-WITH-THE-SERVER-PUBLIC-KEY-LINE-FROM-ICE",
        help="the SFTP server's public key line (e.g. 'ssh-ed25519 AAAA...'), from ICE",
    )
    p.add_argument("--ssh-type", choices=SSH_TYPES, default="ed25519")
    p.add_argument("--pgp-algo", choices=sorted(PGP_ALGOS), default="rsa3072")
    p.add_argument("--pgp-name", default="ICE Chat archive")
    p.add_argument("--pgp-email", help="e-mail of the OpenPGP key (default: icechat@<firm>)")
    p.add_argument(
        "--passphrase-file",
        type=Path,
        help="read the OpenPGP passphrase from this file (default: generate one)",
    )
    p.add_argument(
        "--show-secrets",
        action="store_true",
        help="also print the private key and passphrase in the connection values",
    )
    p.set_defaults(func=run)


def _write(path: Path, text: str, *, private: bool) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    except FileExistsError as exc:
        raise OnboardingError(
            f"{path} exists; keys are never overwritten, choose another --out"
        ) from exc
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def _passphrase(args: argparse.Namespace) -> tuple[str, Path]:
    if args.passphrase_file is None:
        path = args.out / PASSPHRASE_FILE
        phrase = new_passphrase()
        _write(path, phrase + "\n", private=True)
        return phrase, path
    try:
        phrase = args.passphrase_file.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise OnboardingError(f"{args.passphrase_file}: cannot read ({exc})") from exc
    return phrase, args.passphrase_file


def run(args: argparse.Namespace) -> int:
    """Make both key pairs, write them under ``--out``, print what to send and to paste."""
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name in (SSH_KEY, PGP_SECRET_FILE, PGP_PUBLIC, CONNECTIONS_JSON, CONNECTIONS_ENV):
        if (out / name).exists():
            raise OnboardingError(f"{out / name} exists; keys are never overwritten")
    phrase, phrase_file = _passphrase(args)
    email = args.pgp_email or f"icechat@{args.firm.lower()}.invalid"
    pgp = make_pgp_keypair(args.pgp_name, email, phrase, args.pgp_algo)
    ssh = make_ssh_keypair(args.ssh_type, comment=f"icechat-archiver-{args.firm}")
    _write(out / SSH_KEY, ssh.private_openssh, private=True)
    _write(out / f"{SSH_KEY}.pub", ssh.public_line + "\n", private=False)
    _write(out / PGP_SECRET_FILE, pgp.secret_armored, private=True)
    _write(out / PGP_PUBLIC, pgp.public_armored, private=False)
    sftp = sftp_connection(
        host=args.host,
        port=args.port,
        firm=args.firm,
        private_key=ssh.private_openssh,
        host_key=args.host_key,
    )
    pgp_conn = pgp_connection(passphrase=phrase, secret_armored=pgp.secret_armored)
    conns = {"icechat_sftp": sftp, "icechat_pgp": pgp_conn}
    _write(out / CONNECTIONS_JSON, json.dumps(conns, indent=2) + "\n", private=True)
    env = "".join(env_line(cid, c) + "\n" for cid, c in conns.items())
    _write(out / CONNECTIONS_ENV, env, private=True)
    _print(args, ssh.public_line, ssh.fingerprint, pgp.public_armored, pgp.fingerprint)
    _print_connections(args, conns, phrase_file)
    return 0


def _print(args: argparse.Namespace, ssh_line: str, ssh_fp: str, pgp_pub: str, pgp_fp: str) -> None:
    out: Path = args.out
    print(f"== Send to ICE: SSH public key for SFTP login {args.firm} ({ssh_fp})")
    print(ssh_line)
    print(f"\n== Send to ICE: OpenPGP public key to encrypt exports to ({pgp_fp})")
    print(pgp_pub.rstrip())
    print(f"\nPrivate halves (owner-only files) are in {out}: {SSH_KEY}, {PGP_SECRET_FILE}.")


def _print_connections(args: argparse.Namespace, conns: dict[str, Any], phrase_file: Path) -> None:
    out: Path = args.out
    sftp, pgp = conns["icechat_sftp"], conns["icechat_pgp"]
    if args.show_secrets:
        shown = conns
    else:
        shown = {
            "icechat_sftp": {
                **sftp,
                "extra": {**sftp["extra"], "private_key": f"<contents of {out / SSH_KEY}>"},
            },
            "icechat_pgp": {
                **pgp,
                "password": f"<contents of {phrase_file}>",
                "extra": {"private_key": f"<contents of {out / PGP_SECRET_FILE}>"},
            },
        }
    print(f"\n== Airflow connections (complete, with secrets: {out / CONNECTIONS_ENV})")
    print(f"   airflow connections import {out / CONNECTIONS_JSON}")
    print("   or set these environment variables:")
    for conn_id, conn in shown.items():
        print(env_line(conn_id, conn))
    print("\n== Or in the Airflow UI (Admin > Connections):")
    s = shown["icechat_sftp"]
    print(f"icechat_sftp: Connection Type = SFTP, Host = {s['host']}, Port = {s['port']}, ")
    print(f"  Username = {s['login']}, Extra = {json.dumps(s['extra'])}")
    g = shown["icechat_pgp"]
    print(f"icechat_pgp: Connection Type = Generic, Password = {g['password']}, ")
    print(f"  Extra = {json.dumps(g['extra'])}")
