"""The data directory in Azure Blob Storage: the same promises as on S3, against Azurite on
loopback, with the store built as a task builds it (an Airflow connection and
``ObjectStoragePath`` on ``abfs://`` or ``wasb://``).

Azurite has no immutability policies: the tests prove that retention is refused on a container
without version-level immutability support and that a dropped policy is noticed, never that
a policy holds.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, date, datetime

import pytest

from icechat.azure_store import HTTP_LOG, AzureStore
from icechat.dev.azurite import ACCOUNT_KEY
from icechat.exceptions import StoreError
from icechat.glue.connections import mapping_table
from icechat.ice.rawstore import keep_originals
from icechat.retention import parse_retention
from icechat.settings import Settings
from icechat.store import COMPLIANCE, PART, Lock, workspace
from tests.support.fixtures.azurite import CONN_ID
from tests.support.store_contract import (
    assert_a_failed_task_stores_nothing,
    assert_comes_back_whole,
    assert_create_writes_only_where_nothing_is,
    assert_pieces_are_read_where_they_are,
    fetched_original,
    write,
)
from tests.support.store_peak import assert_a_large_file_never_sits_in_memory


def names(azure_container) -> list[str]:
    return sorted(b.name for b in azure_container.container().list_blobs())


@pytest.mark.parametrize("scheme", ["abfs", "wasb"])
def test_files_go_up_and_come_back_whole(azure_container, tmp_path, scheme):
    store = azure_container.store(scheme=scheme)
    assert isinstance(store, AzureStore)
    store.upload(write(tmp_path / "a.xml", b"<FileDump/>"), "raw/2026-11-26/a.xml")
    store.write_bytes("reports/2026-11-26.json", b"{}")
    assert names(azure_container) == [
        "icechat/raw/2026-11-26/a.xml",
        "icechat/reports/2026-11-26.json",
    ]
    assert_comes_back_whole(store, tmp_path)
    assert names(azure_container) == ["icechat/reports/2026-11-26.json"]


def test_pieces_of_files_are_read_where_they_are_and_a_missing_file_is_named(
    azure_container, tmp_path
):
    assert_pieces_are_read_where_they_are(azure_container.store(), tmp_path)


def test_a_large_file_goes_up_in_blocks_of_8_mib_and_comes_back_whole(azure_container, tmp_path):
    data = bytes(range(256)) * ((2 * PART + 1000) // 256) + b"tail"
    store = azure_container.store()
    store.upload(write(tmp_path / "big.zip.pgp", data), "raw/big.zip.pgp")
    blob = azure_container.container().get_blob_client("icechat/raw/big.zip.pgp")
    committed, _ = blob.get_block_list("committed")
    assert [b.size for b in committed] == [PART, PART, len(data) - 2 * PART]
    store.download("raw/big.zip.pgp", tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == data


def test_a_large_file_never_sits_in_memory(azure_container):
    """Up and down, the peak grows by a few blocks whatever the file's size (the SDK's and
    fsspec's defaults grew it by 55 MiB for a 96 MiB download)."""
    store_args = ["azure", azure_container.server.connection_string, azure_container.name]
    assert_a_large_file_never_sits_in_memory(store_args)


def test_a_changed_file_gets_another_stamp(azure_container, tmp_path):
    store = azure_container.store()
    store.write_bytes("work/d/a.jsonl", b"v1")
    before = store.stamps("work/d")
    store.write_bytes("work/d/a.jsonl", b"v2")
    after = store.stamps("work/d")
    assert list(before) == list(after) == ["work/d/a.jsonl"]
    assert before != after


def test_create_writes_only_where_nothing_is(azure_container, tmp_path):
    assert_create_writes_only_where_nothing_is(azure_container.store(), tmp_path)


def test_create_loses_a_race_without_overwriting(azure_container, tmp_path, monkeypatch):
    """Another worker wrote the original between our look and our write: If-None-Match: *
    makes Azure refuse ours, small or in blocks, and the first stays."""
    store = azure_container.store()
    store.upload(write(tmp_path / "a", b"first"), "raw/a")
    monkeypatch.setattr(store, "exists", lambda key: False)
    assert store.create(write(tmp_path / "b", b"second"), "raw/a") is False
    assert store.create(write(tmp_path / "c", b"x" * (PART + 1)), "raw/a") is False
    assert store.read_bytes("raw/a") == b"first"


def test_of_two_workers_creating_one_original_exactly_one_wins(azure_container, tmp_path):
    store = azure_container.store()
    srcs = [write(tmp_path / f"w{i}", f"worker {i}".encode()) for i in range(2)]
    results: dict[int, bool] = {}
    start = threading.Barrier(2)

    def create(i: int) -> None:
        start.wait()
        results[i] = store.create(srcs[i], "raw/a")

    threads = [threading.Thread(target=create, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results.values()) == [False, True]
    winner = next(i for i, won in results.items() if won)
    assert store.read_bytes("raw/a") == f"worker {winner}".encode()


def test_a_task_works_in_its_own_folder_and_stores_what_it_wrote(azure_container, tmp_path):
    store = azure_container.store()
    store.write_bytes("work/d/parts/p.xml", b"<p/>")
    store.write_bytes("work/verify/d/checkpoint.jsonl", b"{}\n")
    store.write_bytes("raw/d/manifest.json", b"{}")
    with workspace(
        store,
        inputs=["work/d/parts", "work/verify/d"],
        outputs=["work/d/items", "work/verify/d"],
        scratch=tmp_path,
    ) as w:
        assert w.parent == tmp_path
        assert (w / "work/d/parts/p.xml").read_bytes() == b"<p/>"
        assert not (w / "raw").exists(), "only the inputs are copied"
        write(w / "work/d/items/p/index.jsonl", b"{}\n")
        write(w / "work/d/items/p/.index.jsonl.123.partial", b"half")
        (w / "work/verify/d/checkpoint.jsonl").unlink()
    assert not w.exists()
    assert store.files("work") == ["work/d/items/p/index.jsonl", "work/d/parts/p.xml"]
    assert store.files("raw") == ["raw/d/manifest.json"]


def test_a_failed_task_stores_nothing_and_leaves_no_folder(azure_container, tmp_path):
    assert_a_failed_task_stores_nothing(azure_container.store(), tmp_path)


def test_retention_on_a_container_without_version_level_immutability_is_refused(
    azure_container,
):
    """Azurite, like a container nobody enabled it on, has no version-level immutability:
    the glue refuses before a task fetches anything, saying what to enable."""
    with pytest.raises(StoreError) as err:
        azure_container.store(retention=parse_retention("7y", "icechat_raw_retention"))
    message = str(err.value)
    assert f"container {azure_container.name} does not have version-level immutability" in message
    assert "Enable blob versioning" in message and "icechat_raw_retention" in message
    assert names(azure_container) == []


def test_retention_on_a_missing_container_is_refused(azure_container):
    azure_container.container().delete_container()
    with pytest.raises(StoreError, match="cannot read the properties of container"):
        azure_container.store(retention=parse_retention("7y", "icechat_raw_retention"))


def test_a_policy_the_service_did_not_keep_is_an_error_not_a_silent_unlocked_original(
    azure_container, tmp_path
):
    """Azurite takes the upload and drops the policy headers: the store reads the policy
    back and says so, rather than letting the manifest record a lock nobody holds, and
    removes the unlocked blob it wrote (a retry's create would otherwise find it)."""
    store = azure_container.store()
    until = datetime(2099, 12, 31, tzinfo=UTC)
    with pytest.raises(StoreError, match="holds no Locked immutability policy on it"):
        store.create(write(tmp_path / "a", b"original"), "raw/a", lock=Lock(COMPLIANCE, until))
    assert names(azure_container) == [], "no unlocked original is left for a retry to skip"


def test_an_unlocked_blob_that_cannot_be_removed_again_is_a_store_error_saying_what_to_do(
    azure_container, tmp_path, monkeypatch
):
    """Azure refuses the removal (here a lease taken meanwhile; in production a policy or a
    missing permission): the task fails with what to delete, not a raw HTTP error."""
    store = azure_container.store()
    read_lock = store.lock_of

    def leased_meanwhile(key: str) -> Lock | None:
        azure_container.container().get_blob_client(f"icechat/{key}").acquire_lease()
        return read_lock(key)

    monkeypatch.setattr(store, "lock_of", leased_meanwhile)
    until = datetime(2099, 12, 31, tzinfo=UTC)
    with pytest.raises(StoreError) as err:
        store.create(write(tmp_path / "a", b"original"), "raw/a", lock=Lock(COMPLIANCE, until))
    message = str(err.value)
    assert "raw/a was stored without the Locked immutability policy asked for" in message
    assert "removing it failed (412 LeaseIdMissing)" in message
    assert f"Delete blob icechat/raw/a in container {azure_container.name}" in message


def test_an_original_stored_unlocked_that_azure_will_not_lock_is_refused(azure_container, tmp_path):
    """Retention set after the day was stored: the re-fetch sets the policy now; Azure's
    refusal (Azurite's: not implemented; in production a missing right) fails the task with
    its answer, and no manifest records a lock."""
    store, day = azure_container.store(), date(2026, 11, 26)
    fetched_original(tmp_path, day, "A.xml", b"original")
    store.upload(write(tmp_path / "earlier", b"original"), "raw/2026-11-26/A.xml")
    until = datetime(2099, 12, 31, tzinfo=UTC)
    with pytest.raises(StoreError) as err:
        keep_originals(store, tmp_path, day, Lock(COMPLIANCE, until))
    message = str(err.value)
    assert "raw/2026-11-26/A.xml could not be locked (501 " in message
    assert "set the policy by hand, then clear the task" in message
    assert store.read_bytes("raw/2026-11-26/manifest.json") is None


def test_a_file_without_a_policy_has_no_lock(azure_container, tmp_path):
    store = azure_container.store()
    store.upload(write(tmp_path / "a", b"x"), "raw/a")
    assert store.lock_of("raw/a") is None


def test_a_missing_file_has_no_lock_to_read(azure_container):
    with pytest.raises(FileNotFoundError, match="raw/a is not stored"):
        azure_container.store().lock_of("raw/a")


def test_writing_over_a_leased_blob_says_what_azure_answered(azure_container, tmp_path):
    """A 412 from a lease (or a 409 from a policy) is not "already exists": upload overwrites
    whatever is there, so the message says what stopped it."""
    store = azure_container.store()
    store.upload(write(tmp_path / "a", b"first"), "raw/a")
    azure_container.container().get_blob_client("icechat/raw/a").acquire_lease()
    with pytest.raises(StoreError) as err:
        store.upload(write(tmp_path / "b", b"second"), "raw/a")
    assert "Azure refused to write raw/a (412 LeaseIdMissing)" in str(err.value)
    assert "Release the lease" in str(err.value)
    assert store.create(write(tmp_path / "c", b"third"), "raw/a") is False
    assert store.read_bytes("raw/a") == b"first"


def test_the_stores_requests_stay_out_of_the_log_and_no_secret_reaches_it(
    azure_container, tmp_path, caplog
):
    """The SDK logs each request at INFO: the store's own (a block, a range each) would fill
    a task's log, so they log below WARNING only on the store's logger, and the SDK's own
    logger (Airflow's Azure hooks log there) keeps its level."""
    store = azure_container.store()
    data = b"x" * (PART + 1)
    caplog.set_level(logging.INFO)
    store.upload(write(tmp_path / "a", data), "raw/a")
    store.download("raw/a", tmp_path / "back")
    assert store.lock_of("raw/a") is None
    sdk = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
    assert sdk.level == logging.NOTSET
    assert [r for r in caplog.records if r.name.startswith("azure")] == []
    caplog.set_level(logging.INFO, logger=HTTP_LOG.name)
    store.upload(write(tmp_path / "b", data), "raw/b")
    assert "Request URL" in caplog.text and "'Authorization': 'REDACTED'" in caplog.text
    assert ACCOUNT_KEY not in caplog.text and ACCOUNT_KEY[:20] not in caplog.text


@pytest.mark.parametrize("scheme", ["abfs", "wasb"])
def test_the_mapping_file_can_live_in_the_container(azure_container, scheme):
    azure_container.store()  # the connection, as a deployment has it
    blob = azure_container.container().get_blob_client("config/mapping.csv")
    blob.upload_blob(b"ImId,Mailbox\njdoe1,john.doe@acme.example\n")
    url = f"{scheme}://{CONN_ID}@{azure_container.name}/config/mapping.csv"
    table = mapping_table(Settings(mapping_csv=url))
    assert table is not None and table.mailbox_for("jdoe1") == "john.doe@acme.example"
