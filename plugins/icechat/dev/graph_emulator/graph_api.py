"""The Microsoft Graph v1.0 surface the connector uses: users, mail folders, messages, ``$batch``.

Every mailbox request passes the app's permissions, the mailbox checks (unknown user,
no mailbox) and the limiter, in that order, as Exchange Online does; a ``$batch`` part is
such a request of its own (https://learn.microsoft.com/en-us/graph/json-batching: "Requests
in a batch are evaluated individually against the applicable throttling limits").
A batch is run only when it is fully parallel (no ``dependsOn``), fully sequential (each
part depends on the one before) or when every part depends on the first; anything else is
refused whole with 400 (the page's tip, microsoftgraph/microsoft-graph-docs issue 16280,
and the JavaScript SDK's ``BatchRequestContent`` validation). Parallel parts are dispatched
up to 4 at a time, each holding a slot of its mailbox's concurrency limit; sequential parts
one at a time (https://learn.microsoft.com/en-us/graph/throttling-limits, "Outlook service
limits for JSON batching"). Answers of parallel parts come back in the order they finish
("Individual responses might appear in a different order than the requests").
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

from icechat.dev.graph_emulator.faults import Limiter, Throttle
from icechat.dev.graph_emulator.ids import parse_rest_id, rest_id, wants_immutable
from icechat.dev.graph_emulator.messages import (
    MessageError,
    attachment_from_request,
    build_message,
    view,
)
from icechat.dev.graph_emulator.odata import ODataError, parse_expand, parse_filter, parse_select
from icechat.dev.graph_emulator.recorder import Recorder
from icechat.dev.graph_emulator.responses import Request, Response, graph_error, parse_query
from icechat.dev.graph_emulator.store import FolderExistsError, Store, User
from icechat.graph.properties import ROOT_FOLDER

MAX_BATCH = 20
BATCH_PARALLELISM = 4  # parts of a parallel $batch Graph sends to Outlook at once
# Entra ID refuses a directory $filter of more than 15 clauses joined by "or"
# (https://developer.microsoft.com/en-us/graph/known-issues/?search=13635 states it for the
# "in" operator; an "or" of "eq" clauses is the same expression).
MAX_OR_CLAUSES = 15
WRITES = frozenset({"POST", "PATCH", "PUT"})
DEFAULT_PAGE = 10
MAX_PAGE = 1000
USER_DEFAULT_SELECT = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
READ_MAIL = frozenset({"Mail.Read", "Mail.ReadWrite", "Mail.ReadBasic.All"})
WRITE_MAIL = frozenset({"Mail.ReadWrite"})
READ_USERS = frozenset({"User.Read.All", "User.ReadWrite.All", "Directory.Read.All"})
_PROP_FILTER = re.compile(
    r"\s*singleValueExtendedProperties/any\(\s*(\w+)\s*:\s*\1/id\s+eq\s+'((?:[^']|'')*)'"
    r"\s+and\s+\1/value\s+eq\s+'((?:[^']|'')*)'\s*\)\s*",
    re.IGNORECASE,
)

# Graph's message for each answer to a mailbox-less user (see NO_MAILBOX_ANSWERS).
NO_MAILBOX_MESSAGES = {
    "MailboxNotEnabledForRESTAPI": (
        "The mailbox is either inactive, soft-deleted, or is hosted on-premise."
    ),
    "ResourceNotFound": "Resource could not be discovered.",
}

MailHandler = Callable[[Request, User, list[str]], Response]


class GraphApi:
    """Answers Graph requests whose caller has been authenticated."""

    def __init__(self, store: Store, limiter: Limiter, recorder: Recorder) -> None:
        self.store = store
        self.limiter = limiter
        self.recorder = recorder
        self._mail_routes: list[tuple[str, re.Pattern[str], MailHandler, bool]] = [
            ("GET", re.compile(r"mailFolders"), self._list_root_folders, False),
            ("POST", re.compile(r"mailFolders"), self._create_root_folder, True),
            ("GET", re.compile(r"mailFolders/([^/]+)"), self._get_folder, False),
            ("GET", re.compile(r"mailFolders/([^/]+)/childFolders"), self._list_children, False),
            ("POST", re.compile(r"mailFolders/([^/]+)/childFolders"), self._create_child, True),
            ("GET", re.compile(r"mailFolders/([^/]+)/messages"), self._list_messages, False),
            ("POST", re.compile(r"mailFolders/([^/]+)/messages"), self._create_message, True),
            ("GET", re.compile(r"mailFolders/[^/]+/messages/([^/]+)"), self._get_message, False),
            ("GET", re.compile(r"messages"), self._list_all_messages, False),
            ("POST", re.compile(r"messages"), self._create_draft, True),
            ("GET", re.compile(r"messages/([^/]+)"), self._get_message, False),
            ("DELETE", re.compile(r"messages/([^/]+)"), self._delete_message, True),
            ("POST", re.compile(r"messages/([^/]+)/permanentDelete"), self._purge_message, True),
            (
                "POST",
                re.compile(r"mailFolders/[^/]+/messages/([^/]+)/permanentDelete"),
                self._purge_message,
                True,
            ),
            ("GET", re.compile(r"messages/([^/]+)/attachments"), self._list_attachments, False),
            ("POST", re.compile(r"messages/([^/]+)/attachments"), self._add_attachment, True),
        ]

    # --- dispatch --------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Answer one authenticated Graph request (``$batch`` included)."""
        segments = [unquote(s) for s in request.path.strip("/").split("/") if s]
        if request.method == "POST" and segments == ["$batch"]:
            return self._batch(request)
        if segments and segments[0].lower() == "me":
            return graph_error(
                request,
                400,
                "BadRequest",
                "/me request is only valid with delegated authentication flow.",
            )
        if not segments or segments[0] != "users":
            return _not_found_segment(request, segments[0] if segments else "")
        if len(segments) <= 2:
            self._pause(request)
            if request.method != "GET":
                return _method_not_allowed(request)
            if not READ_USERS & set(request.roles):
                return graph_error(
                    request,
                    403,
                    "Authorization_RequestDenied",
                    "Insufficient privileges to complete the operation.",
                )
            return (
                self._list_users(request)
                if len(segments) == 1
                else self._get_user(request, segments[1])
            )
        rest = "/".join(quote(s, safe="") for s in segments[2:])
        for method, pattern, handler, writes in self._mail_routes:
            match = pattern.fullmatch(rest)
            if match and method == request.method:
                args = [unquote(g) for g in match.groups()]
                return self._mailbox_call(request, segments[1], handler, args, writes)
        if any(p.fullmatch(rest) for _, p, _, _ in self._mail_routes):
            return _method_not_allowed(request)
        return _not_found_segment(request, segments[2])

    def _pause(self, request: Request) -> None:
        latency = self.limiter.latency()
        if latency:
            time.sleep(latency)

    def _mailbox_call(
        self, request: Request, user_key: str, handler: MailHandler, args: list[str], writes: bool
    ) -> Response:
        needed = WRITE_MAIL if writes else READ_MAIL
        if not needed & set(request.roles):
            self._pause(request)
            return graph_error(
                request,
                403,
                "ErrorAccessDenied",
                "Access is denied. Check credentials and try again.",
            )
        user = self.store.user(user_key)
        if user is None:
            self._pause(request)
            return graph_error(
                request, 404, "ErrorInvalidUser", f"The requested user '{user_key}' is invalid."
            )
        request.mailbox = user.user_principal_name
        if not user.has_mailbox:
            self._pause(request)
            return graph_error(
                request,
                404,
                user.no_mailbox_answer,
                NO_MAILBOX_MESSAGES[user.no_mailbox_answer],
            )
        key = (request.client_id or "", user.id)
        throttle = self.limiter.enter(key, len(request.body) if request.method in WRITES else 0)
        if throttle is not None:
            return _throttled(request, throttle)
        try:
            self._pause(request)
            response = handler(request, user, args)
            if response.status == 201 and handler in (self._create_message, self._create_draft):
                after = self.limiter.throttle_after_success()
                if after is not None:
                    response = _throttled(request, after)
        finally:
            self.limiter.leave(key)
        return response

    # --- users -----------------------------------------------------------------------

    def _user_view(self, request: Request, user: User) -> dict[str, Any]:
        select = parse_select(request.query.get("$select")) or list(USER_DEFAULT_SELECT)
        doc = user.graph()
        wanted = {s.lower() for s in select} | {"id"}
        return {k: v for k, v in doc.items() if k.lower() in wanted}

    def _get_user(self, request: Request, key: str) -> Response:
        user = self.store.user(key)
        if user is None:
            return graph_error(
                request,
                404,
                "Request_ResourceNotFound",
                f"Resource '{key}' does not exist or one of its queried reference-property"
                " objects are not present.",
            )
        context = f"{request.base_url}/v1.0/$metadata#users/$entity"
        return Response(200, {"@odata.context": context, **self._user_view(request, user)})

    def _list_users(self, request: Request) -> Response:
        try:
            where = parse_filter(request.query["$filter"]) if "$filter" in request.query else None
        except ODataError as exc:
            return graph_error(
                request, 400, "Request_UnsupportedQuery", f"Invalid filter clause: {exc}"
            )
        if where is not None and where.or_clauses > MAX_OR_CLAUSES:
            return graph_error(
                request,
                400,
                "Request_UnsupportedQuery",
                "Too many child clauses specified in search filter expression containing 'OR'"
                f" operators: {where.or_clauses}. Max allowed: {MAX_OR_CLAUSES}.",
            )
        users = [u for u in self.store.users() if where is None or where(u.graph())]
        return self._page(
            request, [self._user_view(request, u) for u in users], "users", default=100
        )

    # --- folders ---------------------------------------------------------------------

    def _folder(self, request: Request, user: User, key: str) -> dict[str, Any] | Response:
        folder = self.store.folder(user.id, key)
        if folder is None:
            return _item_not_found(request)
        return folder

    def _list_root_folders(self, request: Request, user: User, args: list[str]) -> Response:
        return self._list_children(request, user, [ROOT_FOLDER])

    def _create_root_folder(self, request: Request, user: User, args: list[str]) -> Response:
        return self._create_child(request, user, [ROOT_FOLDER])

    def _get_folder(self, request: Request, user: User, args: list[str]) -> Response:
        folder = self._folder(request, user, args[0])
        if isinstance(folder, Response):
            return folder
        return Response(200, {"@odata.context": _context(request, "mailFolders/$entity"), **folder})

    def _list_children(self, request: Request, user: User, args: list[str]) -> Response:
        parent = self._folder(request, user, args[0])
        if isinstance(parent, Response):
            return parent
        try:
            where = parse_filter(request.query["$filter"]) if "$filter" in request.query else None
        except ODataError as exc:
            return graph_error(
                request, 400, "ErrorInvalidUrlQueryFilter", f"Invalid filter clause: {exc}"
            )
        # Hidden folders are listed only on request (Learn, "List mailFolders", "List
        # childFolders": includeHiddenFolders=true).
        hidden = request.query.get("includeHiddenFolders", "").lower() == "true"
        children = [
            f
            for f in self.store.child_folders(user.id, parent["id"], include_hidden=hidden)
            if where is None or where(f)
        ]
        return self._page(request, children, "mailFolders")

    def _create_child(self, request: Request, user: User, args: list[str]) -> Response:
        parent = self._folder(request, user, args[0])
        if isinstance(parent, Response):
            return parent
        try:
            body = request.json()
        except ValueError:
            return graph_error(
                request, 400, "RequestBodyRead", "The request body is not valid JSON."
            )
        name = body.get("displayName") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name.strip():
            return graph_error(
                request, 400, "ErrorInvalidRequest", "The folder needs a displayName."
            )
        # isHidden can be set only at creation (Learn, "Create MailFolder", "Hidden mail folders").
        hidden = body.get("isHidden", False)
        if not isinstance(hidden, bool):
            return graph_error(
                request,
                400,
                "RequestBodyRead",
                f"Cannot convert the literal '{hidden}' to the expected type 'Edm.Boolean'.",
            )
        try:
            # The name is taken even by a hidden folder: Exchange refuses a second folder of
            # a name under one parent (MS-OXWSFOLD 3.1.4.2 CreateFolder; MS-ASCMD FolderCreate
            # status 2), which Graph answers with ErrorFolderExists.
            folder = self.store.create_folder(user.id, parent["id"], name, hidden=hidden)
        except FolderExistsError:
            return graph_error(
                request,
                409,
                "ErrorFolderExists",
                "A folder with the specified name already exists.",
            )
        return Response(201, {"@odata.context": _context(request, "mailFolders/$entity"), **folder})

    # --- messages --------------------------------------------------------------------

    def _create_message(self, request: Request, user: User, args: list[str]) -> Response:
        folder = self._folder(request, user, args[0])
        if isinstance(folder, Response):
            return folder
        return self._store_message(request, user, folder["id"])

    def _create_draft(self, request: Request, user: User, args: list[str]) -> Response:
        drafts = self.store.folder(user.id, "drafts")
        assert drafts is not None  # every mailbox has its well-known folders
        return self._store_message(request, user, drafts["id"])

    def _store_message(self, request: Request, user: User, folder_id: str) -> Response:
        try:
            doc = build_message(request.json(), folder_id)
        except ValueError as exc:
            code = exc.code if isinstance(exc, MessageError) else "RequestBodyRead"
            return graph_error(request, 400, code, str(exc))
        self.store.add_message(user.id, folder_id, doc)
        return Response(
            201,
            {"@odata.context": _context(request, "messages/$entity"), **_ided(request, doc)},
        )

    def _list_all_messages(self, request: Request, user: User, args: list[str]) -> Response:
        return self._query_messages(request, user, None)

    def _list_messages(self, request: Request, user: User, args: list[str]) -> Response:
        folder = self._folder(request, user, args[0])
        if isinstance(folder, Response):
            return folder
        return self._query_messages(request, user, folder["id"])

    def _query_messages(self, request: Request, user: User, folder_id: str | None) -> Response:
        text = request.query.get("$filter")
        try:
            where = parse_filter(text) if text else None
            select = parse_select(request.query.get("$select"))
            expand = parse_expand(request.query.get("$expand", ""))
        except ODataError as exc:
            return graph_error(request, 400, "ErrorInvalidUrlQueryFilter", f"Invalid query: {exc}")
        hints: dict[str, Any] = {}
        if where is not None:
            for path, value in where.equals:
                if path.lower() == "internetmessageid" and isinstance(value, str):
                    hints["internet_message_id"] = value
            prop = _PROP_FILTER.fullmatch(text or "")
            if prop:
                hints["prop"] = (prop.group(2).replace("''", "'"), prop.group(3).replace("''", "'"))
        docs = self.store.messages(user.id, folder_id, **hints)
        try:
            items = [
                _ided(request, d, view(d, select, expand))
                for d in docs
                if where is None or where(d)
            ]
        except MessageError as exc:
            return graph_error(request, 400, exc.code, str(exc))
        return self._page(request, items, "messages")

    def _message(self, user: User, key: str) -> dict[str, Any] | None:
        """A message by immutable id, or by REST id while it is in the folder that id names."""
        doc = self.store.message(user.id, key)
        if doc is not None:
            return doc
        named = parse_rest_id(key)
        if named is None:
            return None
        doc = self.store.message(user.id, named[1])
        return doc if doc is not None and doc.get("parentFolderId") == named[0] else None

    def _get_message(self, request: Request, user: User, args: list[str]) -> Response:
        doc = self._message(user, args[0])
        if doc is None:
            return _item_not_found(request)
        try:
            body = view(
                doc,
                parse_select(request.query.get("$select")),
                parse_expand(request.query.get("$expand", "")),
            )
        except (ODataError, MessageError) as exc:
            return graph_error(request, 400, "BadRequest", str(exc))
        return Response(
            200,
            {"@odata.context": _context(request, "messages/$entity"), **_ided(request, doc, body)},
        )

    def _delete_message(self, request: Request, user: User, args: list[str]) -> Response:
        doc = self._message(user, args[0])
        if doc is None:
            return _item_not_found(request)
        deleted = self.store.folder(user.id, "deleteditems")
        assert deleted is not None  # every mailbox has its well-known folders
        self.store.move_message(user.id, doc["id"], deleted["id"])
        return Response(204)

    def _purge_message(self, request: Request, user: User, args: list[str]) -> Response:
        """``permanentDelete``: the item leaves every folder the client can reach; 204.

        https://learn.microsoft.com/en-us/graph/api/message-permanentdelete (v1.0): "Email
        clients ... can't access permanently deleted items"; no request body; 204 No Content.
        """
        doc = self._message(user, args[0])
        if doc is None:
            return _item_not_found(request)
        self.store.delete_message(user.id, doc["id"])
        return Response(204)

    def _list_attachments(self, request: Request, user: User, args: list[str]) -> Response:
        doc = self._message(user, args[0])
        if doc is None:
            return _item_not_found(request)
        return self._page(request, list(doc.get("attachments") or []), "attachments")

    def _add_attachment(self, request: Request, user: User, args: list[str]) -> Response:
        doc = self._message(user, args[0])
        if doc is None:
            return _item_not_found(request)
        try:
            attachment = attachment_from_request(request.json())
        except ValueError as exc:
            code = exc.code if isinstance(exc, MessageError) else "RequestBodyRead"
            return graph_error(request, 400, code, str(exc))
        doc["attachments"] = [*doc.get("attachments", []), attachment]
        doc["hasAttachments"] = doc["hasAttachments"] or not attachment["isInline"]
        self.store.replace_message(user.id, doc)
        return Response(
            201, {"@odata.context": _context(request, "attachments/$entity"), **attachment}
        )

    # --- paging ----------------------------------------------------------------------

    def _page(
        self,
        request: Request,
        items: list[dict[str, Any]],
        entity: str,
        default: int = DEFAULT_PAGE,
    ) -> Response:
        try:
            top = min(int(request.query.get("$top", default)), MAX_PAGE)
            skip = int(request.query.get("$skip", 0))
        except ValueError:
            return graph_error(request, 400, "BadRequest", "$top and $skip must be integers.")
        page = items[skip : skip + top]
        body: dict[str, Any] = {"@odata.context": _context(request, entity), "value": page}
        if skip + top < len(items):
            query = dict(request.query) | {"$top": str(top), "$skip": str(skip + top)}
            body["@odata.nextLink"] = f"{request.base_url}/v1.0{request.path}?{urlencode(query)}"
        return Response(200, body)

    # --- $batch ----------------------------------------------------------------------

    def _batch(self, request: Request) -> Response:
        self._pause(request)
        try:
            payload = request.json()
            subs = payload["requests"]
            if not isinstance(subs, list) or not all(isinstance(s, dict) for s in subs):
                raise TypeError("requests must be a list of objects")
            if not all(isinstance(s.get("dependsOn") or [], list) for s in subs):
                raise TypeError("dependsOn must be a list of ids")
        except (ValueError, KeyError, TypeError):
            return graph_error(request, 400, "BadRequest", "Invalid batch payload format.")
        if not subs or len(subs) > MAX_BATCH:
            return graph_error(
                request,
                400,
                "BadRequest",
                f"The batch holds {len(subs)} requests; between 1 and {MAX_BATCH} are allowed.",
            )
        ids = [str(s.get("id", "")) for s in subs]
        problem = _batch_problem(subs, ids)
        if problem:
            return graph_error(request, 400, "BadRequest", problem)
        shape = _batch_shape(subs, ids)
        if shape is None:
            return graph_error(
                request,
                400,
                "BadRequest",
                "Batch should be either fully sequential or fully parallel.",
            )
        parts = list(zip(subs, ids, strict=True))
        statuses: dict[str, int] = {}
        if shape == "sequential":
            responses = [self._batch_part(request, sub, sub_id, statuses) for sub, sub_id in parts]
        else:
            head = parts[:1] if shape == "after_first" else []
            responses = [self._batch_part(request, sub, sub_id, statuses) for sub, sub_id in head]
            with ThreadPoolExecutor(BATCH_PARALLELISM) as pool:
                running = [
                    pool.submit(self._batch_part, request, sub, sub_id, statuses)
                    for sub, sub_id in parts[len(head) :]
                ]
                responses += [done.result() for done in as_completed(running)]
        return Response(200, {"responses": responses})

    def _batch_part(
        self, request: Request, sub: dict[str, Any], sub_id: str, statuses: dict[str, int]
    ) -> dict[str, Any]:
        """Run one part (or answer 424 when a part it depends on failed) and record it."""
        failed = [d for d in sub.get("dependsOn") or [] if not 200 <= statuses.get(str(d), 0) < 300]
        if failed:
            answer = graph_error(
                request,
                424,
                "FailedDependency",
                f"Request {sub_id} depends on failed request {failed[0]}.",
            )
            sub_request = None
        else:
            sub_request = self._sub_request(request, sub)
            answer = self.handle(sub_request)
        statuses[sub_id] = answer.status
        self.recorder.record(
            arrived=request.arrived,
            method=str(sub.get("method", "")).upper(),
            path=str(sub.get("url", "")),
            client=request.client_id,
            mailbox=sub_request.mailbox if sub_request else None,
            status=answer.status,
            retry_after=answer.retry_after,
            answer=request.request_id,
            batch_of=request.request_id,
        )
        entry: dict[str, Any] = {
            "id": sub_id,
            "status": answer.status,
            "headers": answer.all_headers(),
        }
        if answer.body is not None:
            entry["body"] = answer.body
        return entry

    def _sub_request(self, outer: Request, sub: dict[str, Any]) -> Request:
        url = str(sub["url"])
        parts = urlsplit(url)
        path = parts.path
        if parts.scheme:
            path = path.split("/v1.0", 1)[-1]
        path = "/" + path.lstrip("/")
        body = sub.get("body")
        raw = (
            b""
            if body is None
            else body.encode()
            if isinstance(body, str)
            else json.dumps(body, ensure_ascii=False).encode()
        )
        headers = {str(k).lower(): str(v) for k, v in (sub.get("headers") or {}).items()}
        headers.setdefault(
            "client-request-id", outer.header("client-request-id") or outer.request_id
        )
        return Request(
            method=str(sub["method"]).upper(),
            path=path,
            query=parse_query(parts.query),
            headers=headers,
            body=raw,
            base_url=outer.base_url,
            client_id=outer.client_id,
            roles=outer.roles,
            arrived=outer.arrived,
            batch_of=outer.request_id,
        )


def _batch_problem(subs: list[dict[str, Any]], ids: list[str]) -> str | None:
    if any(not i for i in ids) or len(set(ids)) != len(ids):
        return "Every batch request needs an 'id', unique within the batch."
    seen: set[str] = set()
    for sub, sub_id in zip(subs, ids, strict=True):
        if not sub.get("method") or not sub.get("url"):
            return f"Batch request {sub_id} needs 'method' and 'url'."
        headers = {str(k).lower() for k in (sub.get("headers") or {})}
        if sub.get("body") is not None and "content-type" not in headers:
            return f"Write request id : {sub_id} does not contain Content-Type header or body."
        for dep in sub.get("dependsOn") or []:
            if str(dep) not in seen:
                return f"Request {sub_id} depends on '{dep}', which is not an earlier request."
        seen.add(sub_id)
    return None


def _batch_shape(subs: list[dict[str, Any]], ids: list[str]) -> str | None:
    """``parallel``, ``sequential`` or ``after_first``: the dependency shapes Graph runs."""
    deps = [[str(d) for d in sub.get("dependsOn") or []] for sub in subs]
    if not any(deps):
        return "parallel"
    if deps[0]:
        return None
    if all(dep == [ids[n - 1]] for n, dep in enumerate(deps) if n):
        return "sequential"
    if all(dep == [ids[0]] for dep in deps[1:]):
        return "after_first"
    return None


def _ided(
    request: Request, doc: dict[str, Any], body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A message's view with its id in the form this request's own ``Prefer`` asks for."""
    out = view(doc) if body is None else body
    if wants_immutable(request.header("prefer")):
        return out
    return {**out, "id": rest_id(str(doc["id"]), str(doc["parentFolderId"]))}


def _throttled(request: Request, throttle: Throttle) -> Response:
    return graph_error(
        request, throttle.status, throttle.code, throttle.message, retry_after=throttle.retry_after
    )


def _context(request: Request, entity: str) -> str:
    return f"{request.base_url}/v1.0/$metadata#{entity}"


def _not_found_segment(request: Request, segment: str) -> Response:
    return graph_error(
        request, 400, "BadRequest", f"Resource not found for the segment '{segment}'."
    )


def _method_not_allowed(request: Request) -> Response:
    return graph_error(
        request,
        405,
        "Request_BadRequest",
        f"The HTTP method '{request.method}' is not allowed here.",
    )


def _item_not_found(request: Request) -> Response:
    """Exchange's answer for a message id it does not hold."""
    return graph_error(
        request, 404, "ErrorItemNotFound", "The specified object was not found in the store."
    )
