"""The data directory in object storage: files go up and come back whole, large ones in parts
and in bounded memory, each task works in its own scratch folder, originals can be locked.

Against a real S3 server on loopback (moto's), never a mocked client.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, date, datetime

import pytest
from botocore.exceptions import EndpointConnectionError

from icechat.dev.s3server import LocalS3Server
from icechat.exceptions import StoreError
from icechat.ice.rawstore import keep_originals
from icechat.store import PART, LocalStore, Lock, workspace
from tests.support.fixtures.s3_server import S3Bucket
from tests.support.loopback import serving
from tests.support.store_contract import (
    assert_a_failed_task_stores_nothing,
    assert_comes_back_whole,
    assert_create_writes_only_where_nothing_is,
    assert_pieces_are_read_where_they_are,
    fetched_original,
    write,
)
from tests.support.store_peak import assert_a_large_file_never_sits_in_memory


def test_files_go_up_and_come_back_whole(s3_bucket, tmp_path):
    store = s3_bucket.store()
    store.upload(write(tmp_path / "a.xml", b"<FileDump/>"), "raw/2026-11-26/a.xml")
    store.write_bytes("reports/2026-11-26.json", b"{}")
    assert_comes_back_whole(store, tmp_path)


def test_a_large_file_goes_up_in_parts_of_8_mib(s3_bucket, tmp_path):
    data = os.urandom(2 * PART + 1000)
    src = write(tmp_path / "big.zip.pgp", data)
    store = s3_bucket.store()
    store.upload(src, "raw/big.zip.pgp")
    head = s3_bucket.client().head_object(Bucket=s3_bucket.name, Key="icechat/raw/big.zip.pgp")
    assert head["ETag"].strip('"').endswith("-3"), "three parts: 8 MiB, 8 MiB, the rest"
    store.download("raw/big.zip.pgp", tmp_path / "back")
    assert (
        hashlib.sha256((tmp_path / "back").read_bytes()).digest() == hashlib.sha256(data).digest()
    )


def test_a_large_file_never_sits_in_memory(s3_bucket):
    """Up and down through the store, the peak grows by a few parts whatever the file's size:
    96 MiB costs no more than 16 MiB (a store holding the file would grow by 80 MiB more)."""
    store_args = [s3_bucket.server.endpoint, s3_bucket.name]
    assert_a_large_file_never_sits_in_memory(store_args)


def test_create_writes_only_where_nothing_is(s3_bucket, tmp_path):
    assert_create_writes_only_where_nothing_is(s3_bucket.store(), tmp_path)


def test_create_loses_a_race_without_overwriting(s3_bucket, tmp_path, monkeypatch):
    """Another worker wrote the original between our look and our write: S3's If-None-Match
    refuses ours, and the first stays."""
    store = s3_bucket.store()
    store.upload(write(tmp_path / "a", b"first"), "raw/a")
    monkeypatch.setattr(store, "exists", lambda key: False)
    assert store.create(write(tmp_path / "b", b"second"), "raw/a") is False
    assert store.read_bytes("raw/a") == b"first"


def test_a_task_works_in_its_own_folder_and_stores_what_it_wrote(s3_bucket, tmp_path):
    store = s3_bucket.store()
    store.write_bytes("work/d/parts/p.xml", b"<p/>")
    store.write_bytes("raw/d/manifest.json", b"{}")
    with workspace(store, inputs=["work/d/parts"], outputs=["work/d/items"], scratch=tmp_path) as w:
        assert w.parent == tmp_path
        assert (w / "work/d/parts/p.xml").read_bytes() == b"<p/>"
        assert not (w / "raw").exists(), "only the inputs are copied"
        write(w / "work/d/items/p/index.jsonl", b"{}\n")
        write(w / "work/d/items/p/.index.jsonl.123.partial", b"half")
        write(w / "work/d/other.txt", b"not an output")
    assert not w.exists()
    assert store.files("work/d") == ["work/d/items/p/index.jsonl", "work/d/parts/p.xml"]


def test_a_failed_task_stores_nothing_and_leaves_no_folder(s3_bucket, tmp_path):
    assert_a_failed_task_stores_nothing(s3_bucket.store(), tmp_path)


def test_a_local_folder_is_its_own_workspace(tmp_path):
    store = LocalStore(tmp_path / "data")
    with workspace(store, inputs=["raw"], outputs=["work"]) as w:
        assert w == tmp_path / "data"


def test_removed_plaintext_leaves_no_earlier_version(s3_bucket, tmp_path):
    store = s3_bucket.store()
    store.write_bytes("work/d/items/a.jsonl", b"v1")
    store.write_bytes("work/d/items/a.jsonl", b"v2")
    assert store.remove("work/d") == 1
    listed = s3_bucket.client().list_object_versions(Bucket=s3_bucket.name, Prefix="icechat/work")
    assert listed.get("Versions", []) == [] and listed.get("DeleteMarkers", []) == []


# A fixed date the S3 server's own clock is far from reaching: no test reads today's date.
LOCKED_UNTIL = datetime(2099, 12, 31, tzinfo=UTC)


def test_a_locked_original_cannot_be_deleted_or_overwritten_before_its_date(s3_bucket, tmp_path):
    store = s3_bucket.store()
    store.check_locking()
    until = LOCKED_UNTIL
    assert store.create(write(tmp_path / "a", b"original"), "raw/a", lock=Lock("COMPLIANCE", until))
    lock = store.lock_of("raw/a")
    assert lock is not None and (lock.mode, lock.until) == ("COMPLIANCE", until)
    client, key = s3_bucket.client(), "icechat/raw/a"
    (version,) = client.list_object_versions(Bucket=s3_bucket.name, Prefix=key)["Versions"]
    with pytest.raises(client.exceptions.ClientError, match="AccessDenied"):
        client.delete_object(Bucket=s3_bucket.name, Key=key, VersionId=version["VersionId"])
    with pytest.raises(client.exceptions.ClientError, match="AccessDenied"):
        client.delete_object(
            Bucket=s3_bucket.name,
            Key=key,
            VersionId=version["VersionId"],
            BypassGovernanceRetention=True,
        )
    # A write under the same name is a new version; the locked one stays, byte for byte.
    client.put_object(Bucket=s3_bucket.name, Key=key, Body=b"forged")
    kept = client.get_object(Bucket=s3_bucket.name, Key=key, VersionId=version["VersionId"])
    assert kept["Body"].read() == b"original"
    assert store.create(write(tmp_path / "b", b"again"), "raw/a") is False


def test_an_original_already_stored_unlocked_is_locked_when_retention_is_asked(
    s3_bucket, tmp_path, caplog
):
    """Stored before retention was set (or by a worker whose lock was not kept): a re-fetch
    locks it now and records the lock the bucket then holds, saying so in the log."""
    store, day = s3_bucket.store(), date(2026, 11, 26)
    fetched_original(tmp_path, day, "A.xml", b"original")
    store.upload(write(tmp_path / "earlier", b"original"), "raw/2026-11-26/A.xml")
    raw = keep_originals(store, tmp_path, day, Lock("GOVERNANCE", LOCKED_UNTIL))
    held = store.lock_of("raw/2026-11-26/A.xml")
    assert held is not None and (held.mode, held.until) == ("GOVERNANCE", LOCKED_UNTIL)
    assert [(r.lock_mode, r.retain_until) for r in raw.records] == [
        ("governance", LOCKED_UNTIL.isoformat())
    ]
    assert "raw/2026-11-26/A.xml was stored without a retention lock" in caplog.text
    assert "locking it now (governance until 2099-" in caplog.text


def test_an_original_the_task_may_not_lock_is_refused_saying_what_to_do(s3_plain_bucket, tmp_path):
    """A bucket that refuses the lock (here: no Object Lock; in production also a missing
    s3:PutObjectRetention): no manifest claims a lock nobody holds."""
    store, day = s3_plain_bucket.store(), date(2026, 11, 26)
    fetched_original(tmp_path, day, "A.xml", b"original")
    store.upload(write(tmp_path / "earlier", b"original"), "raw/2026-11-26/A.xml")
    with pytest.raises(StoreError) as err:
        keep_originals(store, tmp_path, day, Lock("GOVERNANCE", LOCKED_UNTIL))
    message = str(err.value)
    assert "raw/2026-11-26/A.xml could not be locked" in message
    assert "s3:PutObjectRetention" in message and "lock the object by hand" in message
    assert store.read_bytes("raw/2026-11-26/manifest.json") is None, "no manifest claims a lock"


def test_an_original_already_stored_locked_is_recorded_with_the_lock_it_holds(s3_bucket, tmp_path):
    store, day = s3_bucket.store(), date(2026, 11, 26)
    fetched_original(tmp_path, day, "A.xml", b"original")
    held = Lock("COMPLIANCE", LOCKED_UNTIL)
    assert store.create(write(tmp_path / "first", b"original"), "raw/2026-11-26/A.xml", lock=held)
    raw = keep_originals(store, tmp_path, day, Lock("GOVERNANCE", datetime(2098, 1, 1, tzinfo=UTC)))
    assert [(r.lock_mode, r.retain_until) for r in raw.records] == [
        ("compliance", LOCKED_UNTIL.isoformat())
    ]


def test_a_bucket_without_object_lock_is_refused_saying_what_to_do(s3_plain_bucket):
    with pytest.raises(StoreError, match="does not have Object Lock enabled|has no Object Lock"):
        s3_plain_bucket.store().check_locking()


def test_a_local_folder_cannot_lock(tmp_path):
    with pytest.raises(StoreError, match="icechat_raw_retention"):
        LocalStore(tmp_path).check_locking()


def test_what_a_task_deleted_under_its_outputs_is_deleted_from_the_store(s3_bucket, tmp_path):
    """A finished verification removes its checkpoint: the bucket must not keep a stale one."""
    store = s3_bucket.store()
    store.write_bytes("work/verify/d/checkpoint.jsonl", b"{}\n")
    store.write_bytes("raw/d/a.xml", b"<a/>")
    with workspace(store, inputs=["raw/d", "work/verify/d"], outputs=["work/verify/d"]) as w:
        (w / "work/verify/d/checkpoint.jsonl").unlink()
        (w / "raw/d/a.xml").unlink()  # not an output: the store keeps it
    assert store.files("work") == []
    assert store.files("raw") == ["raw/d/a.xml"]


@pytest.mark.parametrize("where", ["local", "s3"])
def test_pieces_of_files_are_read_where_they_are_and_a_missing_file_is_named(
    where, s3_bucket, tmp_path
):
    store = s3_bucket.store() if where == "s3" else LocalStore(tmp_path / "data")
    assert_pieces_are_read_where_they_are(store, tmp_path)


def test_a_payload_that_cannot_be_read_now_is_retried_not_failed_for_good(tmp_path):
    """A directory where the payloads should be (a stale mount, a half-restored backup)
    gives an OS error; the import task must be retried, not failed with advice to render
    the day again."""
    from icechat.glue.tasks import actionable

    store = LocalStore(tmp_path / "data")
    (tmp_path / "data/work/d/items/001/p.jsonl").mkdir(parents=True)
    with pytest.raises(IsADirectoryError), actionable("import"):
        store.read_ranges([("work/d/items/001/p.jsonl", 0, 6)])


def test_an_s3_server_gone_mid_task_is_retried_not_failed_for_good(tmp_path):
    """The connection fails (the server stopped: as a timeout or a reset would): the import
    task raises it as it is, so Airflow retries it."""
    from icechat.glue.tasks import actionable

    server = LocalS3Server(tmp_path / "moto.log")
    with serving(server):
        bucket = S3Bucket(server, server.make_bucket("icechat-gone"))
        store = bucket.store()
        store.write_bytes("work/d/items/001/p.jsonl", b"first\n")
        assert store.read_ranges([("work/d/items/001/p.jsonl", 0, 6)]) == [b"first\n"]
    with pytest.raises(EndpointConnectionError), actionable("import"):
        store.read_ranges([("work/d/items/001/p.jsonl", 0, 6)])
