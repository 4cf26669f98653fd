"""Every error the connector raises, in one place.

Each message names the object that failed (file, line, row, item, mailbox) and what to
do about it; the cause is chained with ``raise ... from``.
"""

from __future__ import annotations


class IceChatError(Exception):
    """Base of every error raised by icechat."""


class ExportFormatError(IceChatError):
    """An export part is not well-formed XML of the configured profile."""

    def __init__(
        self,
        message: str,
        *,
        file: str,
        line: int | None = None,
        column: int | None = None,
        items_read: int = 0,
    ) -> None:
        where = file if line is None else f"{file}:{line}:{column or 0}"
        super().__init__(
            f"{where}: {message} ({items_read} chat items were read before this point)"
        )
        self.file = file
        self.line = line
        self.column = column
        self.items_read = items_read


class HostileInputError(ExportFormatError):
    """A part tries something the format never needs (DTD, entities, path escape, bomb)."""


class ArchiveError(IceChatError):
    """A .gz or .zip part cannot be opened safely."""


class ArchiveLimitError(ArchiveError):
    """A compressed part expands beyond the configured size or ratio limit."""


class UnsafePathError(ArchiveError):
    """An archive member or remote name would land outside its target directory."""


class RenderError(IceChatError):
    """A chat item cannot be rendered as an email."""


class GraphSettingsError(IceChatError):
    """The Graph connection lacks a client id, tenant, or a secret/certificate."""


class GraphError(IceChatError):
    """Microsoft Graph answered with a permanent error (or kept failing past the retry budget)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        mailbox: str | None = None,
    ) -> None:
        details = ", ".join(
            f"{name} {value}"
            for name, value in (
                ("mailbox", mailbox),
                ("HTTP", status),
                ("code", code),
                ("request-id", request_id),
            )
            if value is not None
        )
        super().__init__(f"{message} ({details})" if details else message)
        self.status = status
        self.code = code
        self.request_id = request_id
        self.mailbox = mailbox


class GraphAuthError(GraphError):
    """Entra ID refused to issue a token for the app (wrong tenant, id, secret or certificate)."""


class GraphPermissionError(GraphError):
    """Graph refused the app's token: Mail.ReadWrite (application) or admin consent missing."""


class MailboxNotFoundError(GraphError):
    """The user has no Exchange Online mailbox reachable through Graph."""


class GraphRequestError(GraphError):
    """Graph rejected a request as malformed or not allowed; retrying will not help."""


class GraphUnavailableError(GraphError):
    """Graph kept throttling or failing transiently until the retry budget ran out."""


class LedgerError(IceChatError):
    """The import ledger cannot be opened or has a schema this version does not know."""


class GraphEmulatorError(IceChatError):
    """The Graph emulator cannot start: a bad users file, setting or state directory."""
