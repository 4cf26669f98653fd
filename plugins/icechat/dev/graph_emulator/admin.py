"""``/_emulator/...``: settings, the request log, violations, state and ``.eml`` export.

Local-only plumbing for tests and the demo, outside the Graph surface and without auth.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from icechat.dev.graph_emulator.eml import zip_eml
from icechat.dev.graph_emulator.faults import FaultConfig, Limiter
from icechat.dev.graph_emulator.recorder import Recorder
from icechat.dev.graph_emulator.responses import Request, Response, graph_error
from icechat.dev.graph_emulator.store import Store, apply_directory
from icechat.graph.properties import ROOT_FOLDER


class Admin:
    """Answers the emulator's own endpoints."""

    def __init__(
        self,
        store: Store,
        limiter: Limiter,
        recorder: Recorder,
        start_config: FaultConfig,
        on_config: Callable[[FaultConfig], None],
        info: Callable[[str], dict[str, Any]],
        tenant_id: Callable[[], str],
    ) -> None:
        self.store = store
        self.limiter = limiter
        self.recorder = recorder
        self.start_config = start_config
        self.on_config = on_config
        self.info = info
        self.tenant_id = tenant_id

    def handle(self, request: Request) -> Response:
        """Dispatch ``request.path`` (below ``/_emulator``)."""
        parts = [unquote(p) for p in request.path.strip("/").split("/") if p]
        route = (request.method, parts[0] if parts else "")
        try:
            body = request.json() if request.body else None
        except ValueError:
            return graph_error(request, 400, "BadRequest", "The request body is not valid JSON.")
        if route == ("GET", "info"):
            return Response(200, self.info(request.base_url))
        if route == ("GET", "config"):
            return Response(200, self.limiter.config.as_dict())
        if route == ("POST", "config"):
            return self._configure(request, body or {})
        if route == ("GET", "requests"):
            since = int(request.query.get("since", 0))
            return Response(200, {"requests": self.recorder.records(since)})
        if route == ("GET", "violations"):
            return Response(200, {"violations": self.recorder.violations()})
        if route == ("GET", "state"):
            return Response(200, self.state(request.query.get("messages", "false") == "true"))
        if route == ("POST", "reset"):
            self.store.clear_mail()
            self.recorder.clear()
            self.limiter.forget_peaks()
            self.on_config(self.start_config)
            return Response(200, {"reset": True, "config": self.start_config.as_dict()})
        if route == ("POST", "users"):
            if isinstance(body, dict) and body.get("tenant_id") not in (None, self.tenant_id()):
                return graph_error(
                    request, 400, "BadRequest", "The tenant id is fixed once the emulator runs."
                )
            try:
                users, apps = apply_directory(self.store, body)
            except (ValueError, KeyError, TypeError) as exc:
                return graph_error(request, 400, "BadRequest", f"Invalid directory: {exc}")
            return Response(200, {"users": users, "apps": apps})
        if (
            request.method == "GET"
            and len(parts) == 5
            and parts[0] == "mailboxes"
            and parts[4] == "eml"
        ):
            return self._eml(request, parts[1], parts[3])
        return graph_error(
            request, 404, "NotFound", f"No emulator endpoint {request.method} {request.path}."
        )

    def _configure(self, request: Request, changes: Any) -> Response:
        if not isinstance(changes, dict):
            return graph_error(request, 400, "BadRequest", "Send a JSON object of settings.")
        try:
            config = self.limiter.config.updated(changes)
        except (ValueError, TypeError) as exc:
            return graph_error(request, 400, "BadRequest", str(exc))
        self.on_config(config)
        return Response(200, config.as_dict())

    def state(self, with_messages: bool) -> dict[str, Any]:
        """Users (with folders and counts), apps without their secrets, optionally messages.

        ``concurrency`` lists, per app and mailbox, the most requests it ever had in flight
        at once (refused ones included): above ``max_concurrent`` means a client overran it.
        """
        counts = self.store.message_counts()
        users = []
        for user in self.store.users():
            entry: dict[str, Any] = {
                "id": user.id,
                "userPrincipalName": user.user_principal_name,
                "mail": user.mail,
                "proxyAddresses": list(user.proxy_addresses),
                "accountEnabled": user.account_enabled,
                "hasMailbox": user.has_mailbox,
                "messageCount": sum(counts.get(user.id, {}).values()),
                "folders": [],
            }
            root = self.store.folder(user.id, ROOT_FOLDER) if user.has_mailbox else None
            folders = (
                self.store.child_folders(user.id, root["id"], include_hidden=True) if root else []
            )
            for folder in folders:
                item: dict[str, Any] = {
                    "id": folder["id"],
                    "displayName": folder["displayName"],
                    "isHidden": folder["isHidden"],
                    "messageCount": counts.get(user.id, {}).get(folder["id"], 0),
                }
                if with_messages:
                    item["messages"] = [
                        _summary(doc) for doc in self.store.messages(user.id, folder["id"])
                    ]
                entry["folders"].append(item)
            users.append(entry)
        apps = [
            {
                "client_id": app.client_id,
                "permissions": list(app.permissions),
                "has_secret": app.secret is not None,
                "certificates": len(app.certificates),
                "thumbprints": list(app.thumbprints),
            }
            for app in self.store.apps()
        ]
        upns = {user.id: user.user_principal_name for user in self.store.users()}
        concurrency = [
            {"client": client, "mailbox": upns.get(user_id, user_id), "peak": peak}
            for (client, user_id), peak in sorted(self.limiter.peaks().items())
        ]
        return {"users": users, "apps": apps, "concurrency": concurrency}

    def _eml(self, request: Request, mailbox: str, folder_name: str) -> Response:
        user = self.store.user(mailbox)
        folder = self.store.folder_by_name(user.id, folder_name) if user else None
        if user is None or folder is None:
            return graph_error(
                request, 404, "NotFound", f"No folder '{folder_name}' in mailbox '{mailbox}'."
            )
        data = zip_eml(self.store.messages(user.id, folder["id"]))
        filename = json.dumps(f"{user.user_principal_name}-{folder_name}.zip")
        return Response(
            200,
            raw=data,
            headers={
                "Content-Type": "application/zip",
                "Content-Disposition": f"attachment; filename={filename}",
            },
        )


def _summary(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        key: doc.get(key)
        for key in (
            "id",
            "internetMessageId",
            "subject",
            "receivedDateTime",
            "sentDateTime",
            "isDraft",
            "isRead",
            "hasAttachments",
            "from",
            "toRecipients",
            "singleValueExtendedProperties",
        )
    } | {"attachments": [a.get("name") for a in doc.get("attachments") or []]}
