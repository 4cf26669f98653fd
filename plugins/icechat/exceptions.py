"""Every error the connector raises, in one place.

Each message names the object that failed (file, line, row, item, mailbox) and what to
do about it; the cause is chained with ``raise ... from``.
"""

from __future__ import annotations

from typing import ClassVar


class IceChatError(Exception):
    """Base of every error raised by icechat."""

    #: Whether trying again later may succeed (network, throttling, a delivery still
    #: arriving). The DAG retries only these; anything else needs a person.
    transient: ClassVar[bool] = False


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
        where = file if line is None else f"{file}:{line}"
        if line is not None and column is not None:
            where += f":{column}"
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


class ArchiveCorruptError(ArchiveError):
    """A .gz or .zip part's compressed data is damaged or truncated (bad CRC, cut short)."""


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

    transient = True


class LedgerError(IceChatError):
    """The import ledger cannot be opened or has a schema this version does not know."""


class RenderOutputError(RenderError):
    """Rendered emails cannot be written to the folder asked for."""


class ItemsFileError(RenderError):
    """A day's rendered items cannot be read back: damaged, changed since they were mapped,
    or written by an earlier version."""


class ShardFileError(IceChatError):
    """A shard of a day's plan cannot be read back: damaged, or written by an earlier version."""


class MappingFileError(IceChatError):
    """The custom user-mapping CSV has problems (each named with its line)."""


class MarkerMismatchError(IceChatError):
    """What was delivered does not match the day's ``.done`` marker."""


class GraphEmulatorError(IceChatError):
    """The Graph emulator cannot start: a bad users file, setting or state directory."""


class SampleError(IceChatError):
    """The sample generator was asked for a day it cannot write (bad size, parts or key)."""


class DeliveryError(IceChatError):
    """The day's export on the SFTP site cannot be found, trusted or fetched."""

    transient = True


class MarkerFormatError(DeliveryError):
    """A ``.done`` completion marker has a line that does not follow the spec."""

    transient = False


class AmbiguousDeliveryError(DeliveryError):
    """The day's files carry the firm code in several spellings and none is the one given."""

    transient = False


class DeliveryTimeoutError(DeliveryError):
    """The day's parts did not arrive complete before the deadline."""

    transient = False


class SftpConnectError(DeliveryError):
    """The SFTP site refused the connection or the login."""


class SftpSettingsError(DeliveryError):
    """The ``icechat_sftp`` connection has an extra the connector cannot use (a bad firm_code)."""

    transient = False


class HostKeyError(DeliveryError):
    """The SFTP server's host key is not pinned, or is not the pinned one."""

    transient = False


class TransferError(DeliveryError):
    """A download ended with bytes that differ from what the site or the marker announced."""


class PgpError(IceChatError):
    """An export part cannot be decrypted."""


class PgpKeyMissingError(PgpError):
    """A part is encrypted but no ``icechat_pgp`` key is configured."""


class PgpKeyError(PgpError):
    """The configured ``icechat_pgp`` key cannot be imported as a secret key."""


class PgpWrongKeyError(PgpError):
    """A part is encrypted to a key other than the configured one."""


class PgpPassphraseError(PgpError):
    """The configured passphrase does not unlock the secret key."""


class PgpCorruptError(PgpError):
    """An encrypted part is damaged or truncated."""


class PgpIntegrityError(PgpError):
    """An encrypted part fails or lacks its integrity check (MDC): it may have been altered."""


class NotOpenPgpError(PgpError):
    """A part named as encrypted holds no OpenPGP data."""


class OnboardingError(IceChatError):
    """Onboarding keys cannot be made or written."""


class SettingsError(IceChatError):
    """An Airflow Variable of the connector has a value it cannot use."""


class OriginalChangedError(IceChatError):
    """An original in raw/ no longer has the bytes its manifest recorded."""


class StoreError(IceChatError):
    """The data directory cannot do what is asked of it: lock originals, hold the ledger,
    give back a file's bytes."""


class VerifyIncompleteError(IceChatError):
    """Graph was unavailable for some mailboxes; checking again resumes the verification."""

    transient = True


class EvidenceError(IceChatError):
    """The evidence folder for a day cannot be written (no verification yet, folder in use)."""


class DevServerError(IceChatError):
    """A local server for tests or the demo (sshd, Airflow) could not start or stopped early."""


class DemoError(IceChatError):
    """The demo could not prepare its state or its run of the DAG did not archive the day."""
