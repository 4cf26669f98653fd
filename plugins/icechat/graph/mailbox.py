"""What the import does in one mailbox through Graph: its folder, item creates, dedupe lookups.

The folder is a child of ``msgfolderroot``, found or created idempotently: a concurrent
create that loses the race (``ErrorFolderExists``, 409 or 400) re-reads the folder. The
look-up includes hidden folders, which Graph lists only when asked: a hidden folder of that
name still takes the name, so it is the one to use.
Items are looked up by their dedupe key (a named extended property) so that a create whose
outcome is unknown is never sent twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from icechat.exceptions import GraphError, GraphRequestError
from icechat.graph.client import GraphClient, GraphRequest, GraphResponse, user_path
from icechat.graph.properties import DEDUPE_KEY, ROOT_FOLDER

log = logging.getLogger(__name__)

FOLDER_EXISTS_CODES = frozenset({"ErrorFolderExists", "ErrorDuplicateFolderName"})


def _literal(value: str) -> str:
    """An OData string literal."""
    return "'" + value.replace("'", "''") + "'"


def dedupe_key(payload: Mapping[str, Any]) -> str | None:
    """The dedupe key a rendered message carries in its extended properties, if any."""
    for prop in payload.get("singleValueExtendedProperties") or ():
        if isinstance(prop, Mapping) and str(prop.get("id", "")).casefold() == (
            DEDUPE_KEY.casefold()
        ):
            value = prop.get("value")
            return str(value) if value else None
    return None


def find_folder(client: GraphClient, mailbox: str, name: str) -> str | None:
    """The id of the top-level folder ``name`` in ``mailbox``, hidden or not, if it exists."""
    body = client.get(
        f"{user_path(mailbox)}/mailFolders/{ROOT_FOLDER}/childFolders",
        mailbox=mailbox,
        params={
            "$filter": f"displayName eq {_literal(name)}",
            "$select": "id,displayName,isHidden",
            "includeHiddenFolders": "true",
        },
    )
    for folder in body.get("value", []):
        if str(folder.get("displayName", "")).casefold() == name.casefold():
            if folder.get("isHidden"):
                log.warning(
                    "folder %r in %s is hidden: items go into it, but Outlook does not show it",
                    name,
                    mailbox,
                )
            return str(folder["id"])
    return None


def ensure_folder(client: GraphClient, mailbox: str, name: str) -> str:
    """The id of the top-level folder ``name``, created if absent (safe against racing creators)."""
    found = find_folder(client, mailbox, name)
    if found is not None:
        return found

    def recover(_request: GraphRequest) -> GraphResponse | None:
        existing = find_folder(client, mailbox, name)
        return None if existing is None else GraphResponse(200, {"id": existing})

    request = GraphRequest(
        "POST",
        f"{user_path(mailbox)}/mailFolders/{ROOT_FOLDER}/childFolders",
        {"displayName": name},
    )
    try:
        created = client.send(request, mailbox=mailbox, recover=recover)
    except GraphRequestError as exc:
        if exc.status not in (400, 409) or (
            exc.status == 400 and exc.code not in FOLDER_EXISTS_CODES
        ):
            raise
        log.info("folder %r in %s was created concurrently; re-reading it", name, mailbox)
        existing = find_folder(client, mailbox, name)
        if existing is None:
            raise GraphError(
                f"Graph says folder {name!r} exists in {mailbox} but does not list it under "
                f"{ROOT_FOLDER}: rename the folder in the mailbox or set icechat_folder_name",
                mailbox=mailbox,
            ) from exc
        return existing
    log.info("created folder %r in %s", name, mailbox)
    return str(created.body["id"])


def create_request(mailbox: str, folder_id: str, payload: Mapping[str, Any]) -> GraphRequest:
    """The POST that creates one item (a message, not a draft) in the folder."""
    return GraphRequest("POST", f"{user_path(mailbox)}/mailFolders/{folder_id}/messages", payload)


def lookup_request(mailbox: str, folder_id: str, key: str, select: str = "id") -> GraphRequest:
    """The GET that finds items in the folder carrying dedupe key ``key`` (``select``-ed)."""
    prop = f"ep/id eq {_literal(DEDUPE_KEY)} and ep/value eq {_literal(key)}"
    return GraphRequest.get(
        f"{user_path(mailbox)}/mailFolders/{folder_id}/messages",
        {"$filter": f"singleValueExtendedProperties/Any(ep: {prop})", "$select": select},
    )


def found_id(response: GraphResponse) -> str | None:
    """The id of the first item a lookup response lists, if any."""
    items = response.body.get("value") or []
    return str(items[0]["id"]) if items else None


def find_item(client: GraphClient, mailbox: str, folder_id: str, key: str) -> str | None:
    """The id of the item with dedupe key ``key`` in the folder, if Graph holds one."""
    return found_id(client.send(lookup_request(mailbox, folder_id, key), mailbox=mailbox))
