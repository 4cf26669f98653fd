"""Run as a script: upload and download one large file through the store, print peak RSS.

A separate process, so the peak is the store's alone: ``python -m tests.support.store_memory
ENDPOINT BUCKET MIB`` (S3) or ``... azure CONNECTION_STRING CONTAINER MIB`` (Azurite) prints
``{"baseline": bytes, "peak": bytes}``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import s3fs

from icechat.dev.memory import own_peak_bytes
from icechat.dev.s3server import ACCESS_KEY, REGION, SECRET_KEY
from icechat.store import ObjectStore, object_store


def s3_store(endpoint: str, bucket: str) -> ObjectStore:
    fs = s3fs.S3FileSystem(
        key=ACCESS_KEY,
        secret=SECRET_KEY,
        endpoint_url=endpoint,
        client_kwargs={"region_name": REGION},
    )
    return ObjectStore(fs, f"{bucket}/mem", f"s3://{bucket}/mem")


def azure_store(connection_string: str, container: str) -> ObjectStore:
    from adlfs import AzureBlobFileSystem

    fs = AzureBlobFileSystem(connection_string=connection_string)
    return object_store(fs, f"{container}/mem", f"abfs://{container}/mem")


def main(store: ObjectStore, mib: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        small, big, back = Path(tmp, "small"), Path(tmp, "big"), Path(tmp, "back")
        small.write_bytes(b"x" * 1024)
        store.upload(small, "warm")  # clients, connection pools and imports are warm
        store.download("warm", back)
        with big.open("wb") as out:
            block = bytes(range(256)) * 4096  # 1 MiB, not all zeros
            for _ in range(mib):
                out.write(block)
        baseline = own_peak_bytes()
        store.upload(big, "big")
        store.download("big", back)
        assert back.stat().st_size == big.stat().st_size
    print(json.dumps({"baseline": baseline, "peak": own_peak_bytes()}))


if __name__ == "__main__":
    if sys.argv[1] == "azure":
        main(azure_store(sys.argv[2], sys.argv[3]), int(sys.argv[4]))
    else:
        main(s3_store(sys.argv[1], sys.argv[2]), int(sys.argv[3]))
