"""The emulator's persistent state: tenant, users, apps, mail folders and messages, in SQLite.

One connection guarded by a lock: every change is one transaction, so a crash or a restart
never leaves half an item, and uniqueness (one folder name per parent, hidden folders
included) holds under any number of concurrent creators.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from icechat.graph.properties import ROOT_FOLDER

WELL_KNOWN_FOLDERS: tuple[tuple[str, str], ...] = (
    ("inbox", "Inbox"),
    ("drafts", "Drafts"),
    ("sentitems", "Sent Items"),
    ("deleteditems", "Deleted Items"),
    ("archive", "Archive"),
    ("junkemail", "Junk Email"),
)
DEFAULT_PERMISSIONS = ("Mail.ReadWrite", "User.Read.All")
# What Graph answers mail requests for a user without an Exchange Online mailbox: one code
# or the other, per account (microsoft-graph-docs-contrib#7160, microsoft-graph-docs#10481).
NO_MAILBOX_ANSWERS = ("MailboxNotEnabledForRESTAPI", "ResourceNotFound")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY, upn TEXT NOT NULL UNIQUE COLLATE NOCASE, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS apps (client_id TEXT PRIMARY KEY COLLATE NOCASE, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS folders (
    id TEXT PRIMARY KEY, user_id TEXT NOT NULL, parent_id TEXT, well_known TEXT,
    display_name TEXT NOT NULL COLLATE NOCASE, seq INTEGER NOT NULL,
    hidden INTEGER NOT NULL DEFAULT 0);
CREATE UNIQUE INDEX IF NOT EXISTS folder_name ON folders (user_id, parent_id, display_name);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY, user_id TEXT NOT NULL, folder_id TEXT NOT NULL,
    internet_message_id TEXT COLLATE NOCASE, seq INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS message_folder ON messages (user_id, folder_id, seq);
CREATE INDEX IF NOT EXISTS message_imid ON messages (user_id, internet_message_id);
CREATE TABLE IF NOT EXISTS message_props (
    message_id TEXT NOT NULL, prop_id TEXT NOT NULL COLLATE NOCASE,
    value TEXT COLLATE NOCASE);
CREATE INDEX IF NOT EXISTS message_prop ON message_props (prop_id, value);
"""


class FolderExistsError(Exception):
    """A folder of that name already exists under the parent (Graph answers 409)."""


@dataclass(frozen=True)
class User:
    """A directory user; without a mailbox, mail requests get ``no_mailbox_answer`` (a 404)."""

    id: str
    user_principal_name: str
    mail: str | None
    display_name: str
    proxy_addresses: tuple[str, ...]
    account_enabled: bool
    has_mailbox: bool
    no_mailbox_answer: str = NO_MAILBOX_ANSWERS[0]

    def graph(self) -> dict[str, Any]:
        """The user as Graph returns it (every property; callers apply ``$select``)."""
        given, _, surname = self.display_name.partition(" ")
        return {
            "id": self.id,
            "userPrincipalName": self.user_principal_name,
            "displayName": self.display_name,
            "givenName": given or None,
            "surname": surname or None,
            "mail": self.mail,
            "proxyAddresses": list(self.proxy_addresses),
            "accountEnabled": self.account_enabled,
            "businessPhones": [],
            "jobTitle": None,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": None,
        }


@dataclass(frozen=True)
class App:
    """An app registration: client secret and/or certificates, and its application permissions."""

    client_id: str
    display_name: str
    secret: str | None
    certificates: tuple[str, ...]
    permissions: tuple[str, ...] = DEFAULT_PERMISSIONS
    thumbprints: tuple[str, ...] = ()  # SHA-1 hex: trusts a matching ``x5c`` certificate


def new_graph_id(prefix: str = "AAMkAG") -> str:
    """An opaque id shaped like Exchange's (base64url, long, stable once issued)."""
    return prefix + secrets.token_urlsafe(48)


def user_from_spec(spec: Mapping[str, Any]) -> User:
    """A User from a users-file entry (see the README for the keys)."""
    upn = str(spec["userPrincipalName"])
    mail = spec.get("mail", upn)
    addresses = spec.get("proxyAddresses")
    if addresses is None:
        addresses = [f"SMTP:{mail}"] if mail else []
    answer = str(spec.get("noMailboxAnswer") or NO_MAILBOX_ANSWERS[0])
    if answer not in NO_MAILBOX_ANSWERS:
        raise ValueError(
            f"user {upn}: noMailboxAnswer must be one of {', '.join(NO_MAILBOX_ANSWERS)}"
        )
    return User(
        id=str(spec.get("id") or uuid.uuid5(uuid.NAMESPACE_URL, "user:" + upn.lower())),
        user_principal_name=upn,
        mail=str(mail) if mail else None,
        display_name=str(spec.get("displayName") or upn.split("@")[0]),
        proxy_addresses=tuple(str(a) for a in addresses),
        account_enabled=bool(spec.get("accountEnabled", True)),
        has_mailbox=bool(spec.get("hasMailbox", True)),
        no_mailbox_answer=answer,
    )


def app_from_spec(spec: Mapping[str, Any]) -> App:
    """An App from a users-file entry: client_id, secret, certificate_pem(s), thumbprint(s)."""
    certs = list(spec.get("certificates") or [])
    if spec.get("certificate_pem"):
        certs.append(spec["certificate_pem"])
    prints = list(spec.get("thumbprints") or [])
    if spec.get("thumbprint"):
        prints.append(spec["thumbprint"])
    return App(
        client_id=str(spec["client_id"]),
        display_name=str(spec.get("display_name") or spec["client_id"]),
        secret=spec.get("secret"),
        certificates=tuple(str(c) for c in certs),
        permissions=tuple(spec.get("permissions") or DEFAULT_PERMISSIONS),
        thumbprints=tuple(str(t).replace(":", "").upper() for t in prints),
    )


class Store:
    """All emulator state, on disk in ``{state_dir}/graph.sqlite3``."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / "graph.sqlite3"
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(folders)")}
        if "hidden" not in columns:  # state written before hidden folders were modelled
            self._db.execute("ALTER TABLE folders ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0")
        self._seq = self._scalar("SELECT COALESCE(MAX(seq), 0) FROM messages") or 0

    def close(self) -> None:
        """Close the database (the files stay for the next start)."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self._lock:
            row = self._db.execute(sql, params).fetchone()
        return row[0] if row else None

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def meta(self, key: str, default: str) -> str:
        """A tenant-wide setting, stored on first read so it survives restarts."""
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (key, default))
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Replace a tenant-wide setting."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # --- directory -------------------------------------------------------------------

    def put_user(self, user: User) -> None:
        """Add or replace a user; a user with a mailbox gets the well-known folders."""
        doc = json.dumps(user.__dict__ | {"proxy_addresses": list(user.proxy_addresses)})
        with self._tx() as db:
            db.execute(
                "DELETE FROM users WHERE id = ? OR upn = ?", (user.id, user.user_principal_name)
            )
            db.execute(
                "INSERT INTO users VALUES (?, ?, ?)", (user.id, user.user_principal_name, doc)
            )
            if user.has_mailbox:
                self._ensure_default_folders(db, user.id)

    def _ensure_default_folders(self, db: sqlite3.Connection, user_id: str) -> None:
        exists = db.execute(
            "SELECT 1 FROM folders WHERE user_id = ? AND well_known = ?", (user_id, ROOT_FOLDER)
        ).fetchone()
        if exists:
            return
        root = new_graph_id("AQMkAG")
        db.execute(
            "INSERT INTO folders VALUES (?, ?, NULL, ?, ?, 0, 0)",
            (root, user_id, ROOT_FOLDER, "Top of Information Store"),
        )
        for seq, (well_known, name) in enumerate(WELL_KNOWN_FOLDERS, start=1):
            db.execute(
                "INSERT INTO folders VALUES (?, ?, ?, ?, ?, ?, 0)",
                (new_graph_id("AQMkAG"), user_id, root, well_known, name, seq),
            )

    def users(self) -> list[User]:
        """Every user, in UPN order."""
        return [_user(doc) for (doc,) in self._rows("SELECT doc FROM users ORDER BY upn")]

    def user(self, key: str) -> User | None:
        """A user by object id or userPrincipalName (case-insensitive), as Graph resolves it."""
        rows = self._rows("SELECT doc FROM users WHERE id = ? OR upn = ?", (key, key))
        return _user(rows[0][0]) if rows else None

    def put_app(self, app: App) -> None:
        """Add or replace an app registration."""
        doc = json.dumps(
            {
                "client_id": app.client_id,
                "display_name": app.display_name,
                "secret": app.secret,
                "certificates": list(app.certificates),
                "permissions": list(app.permissions),
                "thumbprints": list(app.thumbprints),
            }
        )
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO apps VALUES (?, ?)", (app.client_id, doc))

    def app(self, client_id: str) -> App | None:
        """An app registration by client id."""
        rows = self._rows("SELECT doc FROM apps WHERE client_id = ?", (client_id,))
        return app_from_spec(json.loads(rows[0][0])) if rows else None

    def apps(self) -> list[App]:
        """Every app registration."""
        return [app_from_spec(json.loads(doc)) for (doc,) in self._rows("SELECT doc FROM apps")]

    # --- folders ---------------------------------------------------------------------

    def folder(self, user_id: str, key: str) -> dict[str, Any] | None:
        """A folder by id or well-known name (``msgfolderroot``, ``inbox``...), hidden or not."""
        rows = self._rows(
            "SELECT id, parent_id, display_name, well_known, hidden FROM folders"
            " WHERE user_id = ? AND (id = ? OR well_known = ?)",
            (user_id, key, key.lower()),
        )
        return self._folder_doc(user_id, rows[0]) if rows else None

    def child_folders(
        self, user_id: str, parent_id: str, *, include_hidden: bool
    ) -> list[dict[str, Any]]:
        """The folders directly under ``parent_id``, in creation order."""
        rows = self._rows(
            "SELECT id, parent_id, display_name, well_known, hidden FROM folders"
            " WHERE user_id = ? AND parent_id = ? AND (hidden = 0 OR ?) ORDER BY seq",
            (user_id, parent_id, include_hidden),
        )
        return [self._folder_doc(user_id, row) for row in rows]

    def folder_by_name(self, user_id: str, name: str) -> dict[str, Any] | None:
        """A child of msgfolderroot by display name (case-insensitive), hidden or not."""
        root = self.folder(user_id, ROOT_FOLDER)
        if root is None:
            return None
        rows = self._rows(
            "SELECT id, parent_id, display_name, well_known, hidden FROM folders"
            " WHERE user_id = ? AND parent_id = ? AND display_name = ?",
            (user_id, root["id"], name),
        )
        return self._folder_doc(user_id, rows[0]) if rows else None

    def create_folder(
        self, user_id: str, parent_id: str, name: str, *, hidden: bool = False
    ) -> dict[str, Any]:
        """Create a folder; raises FolderExistsError if the parent already has that name.

        The name is taken whether the folder holding it is hidden or not.
        """
        folder_id = new_graph_id("AAMkAG")
        try:
            with self._tx() as db:
                seq = db.execute(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM folders WHERE user_id = ?", (user_id,)
                ).fetchone()[0]
                db.execute(
                    "INSERT INTO folders VALUES (?, ?, ?, NULL, ?, ?, ?)",
                    (folder_id, user_id, parent_id, name, seq, int(hidden)),
                )
        except sqlite3.IntegrityError as exc:
            raise FolderExistsError(name) from exc
        return self._folder_doc(user_id, (folder_id, parent_id, name, None, int(hidden)))

    def _folder_doc(self, user_id: str, row: tuple[Any, ...]) -> dict[str, Any]:
        folder_id, parent_id, name, _, hidden = row
        with self._lock:
            children = self._db.execute(
                "SELECT COUNT(*) FROM folders WHERE parent_id = ?", (folder_id,)
            ).fetchone()[0]
            total = self._db.execute(
                "SELECT COUNT(*) FROM messages WHERE user_id = ? AND folder_id = ?",
                (user_id, folder_id),
            ).fetchone()[0]
        return {
            "id": folder_id,
            "displayName": name,
            "parentFolderId": parent_id,
            "childFolderCount": children,
            "unreadItemCount": 0,
            "totalItemCount": total,
            "isHidden": bool(hidden),
        }

    # --- messages --------------------------------------------------------------------

    def add_message(self, user_id: str, folder_id: str, doc: dict[str, Any]) -> None:
        """Store a message document (which carries its id and extended properties)."""
        with self._tx() as db:
            self._seq += 1
            db.execute(
                "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)",
                (
                    doc["id"],
                    user_id,
                    folder_id,
                    doc.get("internetMessageId"),
                    self._seq,
                    json.dumps(doc),
                ),
            )
            db.executemany(
                "INSERT INTO message_props VALUES (?, ?, ?)",
                [
                    (
                        doc["id"],
                        str(p.get("id")),
                        None if p.get("value") is None else str(p["value"]),
                    )
                    for p in doc.get("singleValueExtendedProperties") or []
                ],
            )

    def replace_message(self, user_id: str, doc: dict[str, Any]) -> None:
        """Rewrite a stored message document (e.g. after adding an attachment)."""
        with self._tx() as db:
            db.execute(
                "UPDATE messages SET doc = ? WHERE user_id = ? AND id = ?",
                (json.dumps(doc), user_id, doc["id"]),
            )

    def move_message(self, user_id: str, message_id: str, folder_id: str) -> None:
        """Move a message to another folder of the same mailbox."""
        with self._tx() as db:
            row = db.execute(
                "SELECT doc FROM messages WHERE user_id = ? AND id = ?", (user_id, message_id)
            ).fetchone()
            if row is None:
                return
            doc = json.loads(row[0]) | {"parentFolderId": folder_id}
            db.execute(
                "UPDATE messages SET folder_id = ?, doc = ? WHERE user_id = ? AND id = ?",
                (folder_id, json.dumps(doc), user_id, message_id),
            )

    def delete_message(self, user_id: str, message_id: str) -> None:
        """Remove a message for good (Graph's permanentDelete)."""
        with self._tx() as db:
            db.execute("DELETE FROM messages WHERE user_id = ? AND id = ?", (user_id, message_id))
            db.execute("DELETE FROM message_props WHERE message_id = ?", (message_id,))

    def message(self, user_id: str, message_id: str) -> dict[str, Any] | None:
        """One message document by id."""
        rows = self._rows(
            "SELECT doc FROM messages WHERE user_id = ? AND id = ?", (user_id, message_id)
        )
        return json.loads(rows[0][0]) if rows else None

    def messages(
        self,
        user_id: str,
        folder_id: str | None = None,
        *,
        internet_message_id: str | None = None,
        prop: tuple[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Messages of a mailbox (or one folder), narrowed by an indexed key when given."""
        sql = "SELECT m.doc FROM messages m WHERE m.user_id = ?"
        params: list[Any] = [user_id]
        if folder_id is not None:
            sql += " AND m.folder_id = ?"
            params.append(folder_id)
        if internet_message_id is not None:
            sql += " AND m.internet_message_id = ?"
            params.append(internet_message_id)
        if prop is not None:
            sql += (
                " AND m.id IN (SELECT message_id FROM message_props"
                " WHERE prop_id = ? AND value = ?)"
            )
            params.extend(prop)
        return [json.loads(doc) for (doc,) in self._rows(sql + " ORDER BY m.seq", params)]

    def message_counts(self) -> dict[str, dict[str, int]]:
        """Message count per user id and folder id."""
        counts: dict[str, dict[str, int]] = {}
        for user_id, folder_id, count in self._rows(
            "SELECT user_id, folder_id, COUNT(*) FROM messages GROUP BY user_id, folder_id"
        ):
            counts.setdefault(user_id, {})[folder_id] = count
        return counts

    def clear_mail(self) -> None:
        """Delete every message and every folder that is not well-known (the emulator reset)."""
        with self._tx() as db:
            db.execute("DELETE FROM message_props")
            db.execute("DELETE FROM messages")
            db.execute("DELETE FROM folders WHERE well_known IS NULL")


def _user(doc: str) -> User:
    data = json.loads(doc)
    data["proxy_addresses"] = tuple(data["proxy_addresses"])
    return User(**data)


def apply_directory(store: Store, data: Any) -> tuple[int, int]:
    """Load a users file's content: a list of users, or ``{tenant_id?, users, apps}``.

    Returns the number of users and apps loaded; raises ValueError naming the bad entry.
    """
    if isinstance(data, list):
        data = {"users": data}
    if not isinstance(data, Mapping):
        raise ValueError("expected a JSON list of users or an object with 'users' and 'apps'")
    if data.get("tenant_id"):
        store.set_meta("tenant_id", str(data["tenant_id"]))
    users, apps = data.get("users") or [], data.get("apps") or []
    for kind, entries, key in (("users", users, "userPrincipalName"), ("apps", apps, "client_id")):
        for index, entry in enumerate(entries):
            if not isinstance(entry, Mapping) or not entry.get(key):
                raise ValueError(f"{kind}[{index}] needs a '{key}'")
    for entry in users:
        store.put_user(user_from_spec(entry))
    for entry in apps:
        store.put_app(app_from_spec(entry))
    return len(users), len(apps)
