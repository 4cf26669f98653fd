"""The data directory in Azure Blob Storage, through the adlfs file system Airflow builds.

``fs`` is adlfs's ``AzureBlobFileSystem`` from ``ObjectStoragePath("abfs://conn_id@container/
prefix").fs`` (Airflow's Azure provider reads the connection). Reads, listings and small files
go through fsspec as for any store; the rest goes to the blob service itself:

- uploads in blocks and downloads in ranges of :data:`~icechat.store.PART` bytes,
  :data:`~icechat.store.PARTS_AT_ONCE` at a time (the SDK's defaults would move up to 64 MiB
  in one request, from memory; fsspec's read cache grows with the file);
- write-if-absent as ``If-None-Match: *`` on the upload (a lost race is ``False``, not an
  overwrite);
- retention as a version-level immutability policy set with the upload (``Locked`` for
  compliance, ``Unlocked`` for governance) and read back, which needs a container with
  version-level immutability support: :meth:`AzureStore.check_locking` refuses any other
  (a policy the service did not keep fails the upload and removes what it wrote, no more);
- a write Azure refuses over a lease or a policy as :class:`~icechat.exceptions.StoreError`
  saying so (``FileExistsError`` only for a lost write-if-absent);
- removal of a file with every earlier version of it (plaintext leaves nothing behind).

The requests the store sends itself (blocks, ranges, policies, removals) log through
:data:`HTTP_LOG`, quiet below WARNING: the SDK logs each request's headers at INFO, which
would fill a task's log. Only this store's clients use it; Airflow's own Azure hooks and
adlfs's few requests (listings, small files) log as the SDK does anywhere else. The SDK
redacts credentials (``Authorization``, a SAS's signature) from what it logs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import ImmutabilityPolicy
from azure.storage.blob.aio import BlobClient
from fsspec.asyn import sync

from icechat.exceptions import StoreError
from icechat.store import COMPLIANCE, GOVERNANCE, PART, PARTS_AT_ONCE, Lock, ObjectStore

#: How S3's lock modes map to Azure's policy modes: a ``Locked`` policy cannot be shortened or
#: removed by anyone (SEC 17a-4(f)); an ``Unlocked`` one can, by a privileged principal.
POLICY_MODE = {COMPLIANCE: "Locked", GOVERNANCE: "Unlocked"}
_LOCK_MODE = {v.lower(): k for k, v in POLICY_MODE.items()}
_T = TypeVar("_T")
#: The SDK's request log for this store's own clients (set it to INFO to see each request).
HTTP_LOG = logging.getLogger(__name__ + ".http")
HTTP_LOG.setLevel(logging.WARNING)


def _answer(exc: AzureError) -> str:
    """What Azure answered (status and error code), without the request or its URL."""
    if isinstance(exc, HttpResponseError):
        code = getattr(exc, "error_code", None)  # the storage SDK's StorageErrorCode, if any
        return f"{exc.status_code} {getattr(code, 'value', code) or exc.reason}"
    return type(exc).__name__


class AzureStore(ObjectStore):
    """A prefix (``container/prefix``) in Azure Blob Storage."""

    def _run(self, coro: Callable[..., Awaitable[_T]], *args: Any, **kwargs: Any) -> _T:
        """Run one of adlfs's asynchronous clients' calls on the file system's own loop."""
        result: _T = sync(self.fs.loop, coro, *args, **kwargs)
        return result

    def _put(self, src: Path, key: str, lock: Lock | None, *, absent_only: bool) -> None:
        container, blob = self._bucket_key(key)
        policy = None
        if lock is not None:
            policy = ImmutabilityPolicy(expiry_time=lock.until, policy_mode=POLICY_MODE[lock.mode])
        try:
            uploaded = self._run(
                self._upload, src, container, blob, overwrite=not absent_only, policy=policy
            )
        except (ResourceExistsError, ResourceModifiedError) as exc:
            if absent_only:  # If-None-Match: * refused: another writer was first
                raise FileExistsError(f"{self.url}: {key} already exists") from exc
            raise self._refused(key, exc) from exc
        except HttpResponseError as exc:
            if exc.status_code in {409, 412}:  # a lease, a policy: not for a retry to fix
                raise self._refused(key, exc) from exc
            raise
        finally:
            self.fs.invalidate_cache(self._path(key))
        if lock is not None:
            self._check_held(key, lock, uploaded)

    def _refused(self, key: str, exc: HttpResponseError) -> StoreError:
        """Azure refused to write ``key`` over what is there, saying why."""
        return StoreError(
            f"{self.url}: Azure refused to write {key} ({_answer(exc)}): the blob there is "
            "leased or under an immutability policy. Release the lease or let the policy "
            "expire (or store under another data directory), then clear the task"
        )

    def _check_held(self, key: str, lock: Lock, uploaded: dict[str, Any]) -> None:
        """Raise unless the blob now holds the policy asked for: a service (or emulator) that
        drops the headers must not leave an original unlocked while the report says locked.
        The version this upload created is removed (nothing older), so that the task's retry
        writes it again, locked."""
        held = self.lock_of(key)
        if held is not None and held.mode == lock.mode:
            return
        container, blob = self._bucket_key(key)
        try:
            self._run(self._discard, container, blob, uploaded)
        except AzureError as exc:
            version = uploaded.get("version_id")
            what = f"version {version} of blob {blob}" if version else f"blob {blob}"
            raise StoreError(
                f"{self.url}: {key} was stored without the {POLICY_MODE[lock.mode]} "
                f"immutability policy asked for, and removing it failed ({_answer(exc)}). "
                f"Delete {what} in container {container} (a lease, another policy or a "
                "missing delete permission stopped it), then clear the task"
            ) from exc
        finally:
            self.fs.invalidate_cache(self._path(key))
        raise StoreError(
            f"{self.url}: {key} was stored, but Azure holds no {POLICY_MODE[lock.mode]} "
            "immutability policy on it, so it was removed again. Enable version-level "
            "immutability support on the container (blob versioning on the account), or "
            "delete the variable icechat_raw_retention"
        )

    async def _discard(self, container: str, blob: str, uploaded: dict[str, Any]) -> None:
        """Delete what one upload created and nothing else: the blob only while it is still
        that upload's (``If-Match`` its ETag), then the version it created, if versioned."""
        client = self.fs.service_client.get_blob_client(container, blob)
        with suppress(ResourceNotFoundError, ResourceModifiedError):  # gone, or not ours now
            await client.delete_blob(
                etag=uploaded["etag"],
                match_condition=MatchConditions.IfNotModified,
                logger=HTTP_LOG,
            )
        if version := uploaded.get("version_id"):
            with suppress(ResourceNotFoundError):
                await client.delete_blob(version_id=version, logger=HTTP_LOG)

    def _client(self, container: str, blob: str) -> BlobClient:
        """A client for one blob with adlfs's credentials that moves :data:`PART` bytes a
        request both ways (the SDK's defaults: one request for up to 64 MiB up, 32 MiB down)."""
        shared = self.fs.service_client.get_blob_client(container, blob)
        return BlobClient.from_blob_url(
            shared.url,
            credential=shared.credential,
            max_single_put_size=PART,
            max_block_size=PART,
            max_single_get_size=PART,
            max_chunk_get_size=PART,
            logger=HTTP_LOG,
        )

    def download(self, key: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._run(self._download, *self._bucket_key(key), dest)
        except ResourceNotFoundError as exc:
            raise FileNotFoundError(f"{self.url}: {key} is not stored") from exc

    async def _download(self, container: str, blob: str, dest: Path) -> None:
        """Ranged reads of :data:`PART` bytes, :data:`PARTS_AT_ONCE` at a time, into ``dest``."""
        async with self._client(container, blob) as client:
            stream = await client.download_blob(max_concurrency=PARTS_AT_ONCE)
            with dest.open("wb") as out:
                await stream.readinto(out)

    async def _upload(
        self,
        src: Path,
        container: str,
        blob: str,
        *,
        overwrite: bool,
        policy: ImmutabilityPolicy | None,
    ) -> dict[str, Any]:
        """Upload ``src`` in blocks; ``overwrite=False`` sends ``If-None-Match: *``. What the
        service answered: the blob's ``etag`` and, on a versioned account, ``version_id``."""
        extra: dict[str, Any] = {"immutability_policy": policy} if policy is not None else {}
        async with self._client(container, blob) as client:
            with src.open("rb") as data:
                return await client.upload_blob(
                    data,
                    overwrite=overwrite,
                    max_concurrency=PARTS_AT_ONCE,
                    metadata={"is_directory": "false"},  # as adlfs marks a file
                    **extra,
                )

    def remove(self, prefix: str) -> int:
        keys = self.files(prefix)
        for key in keys:
            self._run(self._delete_with_versions, *self._bucket_key(key))
        self.fs.invalidate_cache(self._path(prefix))
        return len(keys)

    async def _delete_with_versions(self, container: str, blob: str) -> None:
        """Delete ``blob``, then every version a versioned account kept of it."""
        client = self.fs.service_client.get_container_client(container)
        versions = [
            item.version_id
            async for item in client.list_blobs(
                name_starts_with=blob, include=["versions"], logger=HTTP_LOG
            )
            if item.name == blob and item.version_id
        ]
        with suppress(ResourceNotFoundError):  # another worker removed it first
            await client.delete_blob(blob, logger=HTTP_LOG)
        for version in versions:
            with suppress(ResourceNotFoundError):
                await client.delete_blob(blob, version_id=version, logger=HTTP_LOG)

    def lock(self, key: str, lock: Lock) -> Lock | None:
        container, blob = self._bucket_key(key)
        client = self.fs.service_client.get_blob_client(container, blob)
        policy = ImmutabilityPolicy(expiry_time=lock.until, policy_mode=POLICY_MODE[lock.mode])
        try:
            self._run(client.set_immutability_policy, policy, logger=HTTP_LOG)
        except AzureError as exc:
            raise StoreError(
                f"{self.url}: {key} could not be locked ({_answer(exc)}); the task's identity "
                "needs the right to set immutability policies on the container: grant it, or "
                "set the policy by hand, then clear the task"
            ) from exc
        return self.lock_of(key)

    def lock_of(self, key: str) -> Lock | None:
        container, blob = self._bucket_key(key)
        client = self.fs.service_client.get_blob_client(container, blob)
        try:
            props = self._run(client.get_blob_properties, logger=HTTP_LOG)
        except ResourceNotFoundError as exc:
            raise FileNotFoundError(f"{self.url}: {key} is not stored") from exc
        policy = props.immutability_policy
        mode = _LOCK_MODE.get(str(policy.policy_mode or "").lower())
        return Lock(mode, policy.expiry_time) if mode and policy.expiry_time else None

    def check_locking(self) -> None:
        container, _ = self._bucket_key("")
        client = self.fs.service_client.get_container_client(container)
        try:
            props = self._run(client.get_container_properties, logger=HTTP_LOG)
        except AzureError as exc:
            raise StoreError(
                f"{self.url}: cannot read the properties of container {container} "
                f"({type(exc).__name__}); originals cannot be retained. Check that the "
                "container exists and the connection may read it, or delete the variable "
                "icechat_raw_retention"
            ) from exc
        if not props.immutable_storage_with_versioning_enabled:
            raise StoreError(
                f"{self.url}: container {container} does not have version-level immutability "
                "support, so originals cannot be retained. Enable blob versioning on the "
                "storage account and version-level immutability support on the container (or "
                "the account), without a default retention policy (the connector locks only "
                "raw/); or delete the variable icechat_raw_retention"
            )
