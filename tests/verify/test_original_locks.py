"""An original's retention lock, as the bucket holds it now, against the lock recorded when
it was fetched: a lock removed, shortened or softened is a finding; one kept or extended is
not. On S3 Object Lock (moto), through the verification's own ``store_protection``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import pytest

from icechat.ice.rawstore import MANIFEST, StoredFile
from icechat.store import COMPLIANCE, GOVERNANCE, Lock
from icechat.verify.findings import Kind
from icechat.verify.originals import check_originals, store_protection

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)  # the verification's clock
RECORDED = Lock(COMPLIANCE, datetime(2033, 11, 26, 6, 0, 0, 123456, tzinfo=UTC))
DAY = "2026-11-26"
NAME = "ACME01_ICECHAT_20261126.xml.gpg"


def fetched_day(root: Path, recorded: Lock) -> Path:
    """A day's raw folder whose manifest records ``recorded`` on its one original."""
    raw = root / "raw" / DAY
    raw.mkdir(parents=True)
    data = b"-----BEGIN PGP MESSAGE-----"
    (raw / NAME).write_bytes(data)
    entry = StoredFile(
        NAME,
        NAME,
        len(data),
        hashlib.sha256(data).hexdigest(),
        0,
        "2026-11-27T06:00:00+00:00",
        **recorded.to_json(),
    )
    (raw / MANIFEST).write_text(json.dumps({"files": [asdict(entry)]}))
    return raw


@pytest.mark.parametrize(
    ("held", "now_shown"),
    [
        (RECORDED, None),
        (Lock(COMPLIANCE, datetime(2033, 11, 26, 6, 0, tzinfo=UTC)), None),  # to the second
        (Lock(COMPLIANCE, datetime(2040, 1, 1, tzinfo=UTC)), None),  # extended
        (Lock(COMPLIANCE, datetime(2030, 1, 1, tzinfo=UTC)), "now: compliance until 2030-01-01"),
        (Lock(GOVERNANCE, RECORDED.until), "now: governance until 2033-11-26"),
        (None, "now: no retention lock"),
    ],
    ids=["kept", "kept-to-the-second", "extended", "shortened", "softened", "removed"],
)
def test_a_lock_weaker_than_recorded_at_fetch_is_a_finding(tmp_path, s3_bucket, held, now_shown):
    raw = fetched_day(tmp_path / "data", RECORDED)
    store = s3_bucket.store()
    store.upload(raw / NAME, f"raw/{DAY}/{NAME}", lock=held)

    checked = check_originals(raw, None, None, store_protection(store, tmp_path / "data", NOW))

    weakened = [f for f in checked.findings if f.kind is Kind.RAW_LOCK_WEAKENED]
    if now_shown is None:
        assert weakened == []
        return
    [finding] = weakened
    assert finding.subject == f"raw/{DAY}/{NAME}"
    assert finding.detail.startswith(
        "recorded at fetch: compliance until 2033-11-26T06:00:00.123456+00:00; " + now_shown
    )
