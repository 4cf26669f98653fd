"""The day's work files: ``work/{day}/`` under the data directory, owner-only, short-lived.

The one owner of that layout: the sensor's last look (``sftp-look.json``), the decrypted and
unpacked parts (``parts/``, see :mod:`icechat.ice.pgp`; zip parts are unpacked into one folder
per part with the safety limits of :mod:`icechat.ice.packages`), the rendered items
(``items/``, see :mod:`icechat.render.itemsfile`) and the import plan (``plan/``). The whole
day's folder is removed once the day is reconciled.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from icechat.ice.delivery import unpacked_name
from icechat.ice.packages import DEFAULT_LIMITS, Limits, sniff, unpack
from icechat.ice.pgp import PgpKey, decrypt_parts
from icechat.store import DataStore, layout_key

log = logging.getLogger(__name__)


def work_day_dir(data_dir: Path, day: date) -> Path:
    """``{data_dir}/work/{YYYY-MM-DD}``."""
    return data_dir / "work" / day.isoformat()


def verify_work_dir(data_dir: Path, day: date) -> Path:
    """``{data_dir}/work/verify/{YYYY-MM-DD}``: a verification's checkpoint and, while it
    runs, the plaintext it reads the originals into (kept apart from the day's own)."""
    return data_dir / "work" / "verify" / day.isoformat()


def look_state_path(data_dir: Path, day: date) -> Path:
    """Where the sensor keeps its previous look between pokes (it runs in reschedule mode)."""
    return work_day_dir(data_dir, day) / "sftp-look.json"


def parts_dir(data_dir: Path, day: date) -> Path:
    """The day's decrypted and unpacked parts."""
    return work_day_dir(data_dir, day) / "parts"


def items_dir(data_dir: Path, day: date) -> Path:
    """The day's rendered items, one folder per part."""
    return work_day_dir(data_dir, day) / "items"


def plan_dir(data_dir: Path, day: date) -> Path:
    """The day's import plan: the shards and the copies that go nowhere."""
    return work_day_dir(data_dir, day) / "plan"


def unpack_part(path: Path, work_dir: Path, limits: Limits = DEFAULT_LIMITS) -> Path:
    """Expand a decrypted ``.zip`` or ``.gz`` part under ``work_dir``; return its XML to parse.

    A zip part becomes ``work_dir/{part}/`` with its XML and, beside it, ``attachments/``
    (where parse+render finds the files); a gzip part becomes ``work_dir/{part}/{name}.xml``;
    plain XML is left as is. Zip-slip members and decompression bombs are refused
    (:class:`icechat.exceptions.ArchiveError` and subclasses).
    """
    if sniff(path) == "plain":
        return path
    dest = work_dir / unpacked_name(path.name)
    xml = unpack(path, dest, limits)
    log.info("unpacked %s into %s/", path.name, dest.name)
    return xml


def plain_parts(raw_files: Sequence[Path], work_dir: Path, key: PgpKey | None) -> list[Path]:
    """Each part as fetched, decrypted (when encrypted) and unpacked under ``work_dir``: the
    XML files to parse, in the same order."""
    return [unpack_part(path, work_dir) for path in decrypt_parts(raw_files, work_dir, key)]


def unpacked_parts(xmls: Sequence[Path], work_dir: Path) -> list[Path]:
    """What the next step reads of :func:`plain_parts`' output under ``work_dir``: each
    unpacked part's folder (its XML and attachments), or the decrypted XML itself; not the
    decrypted archives they came from. A part read where it was fetched is not listed."""
    kept = []
    for xml in xmls:
        if xml.parent == work_dir:
            kept.append(xml)
        elif xml.is_relative_to(work_dir):
            kept.append(work_dir / xml.relative_to(work_dir).parts[0])
    return kept


def remove_stored_plaintext(store: DataStore, day: date) -> int:
    """Delete the day's plaintext from the data directory, wherever it is (in object storage
    with every earlier version of each file); return how many files."""
    if store.local_root is not None:
        return len(remove_plaintext(store.local_root, day))
    prefix = layout_key(work_day_dir(Path(), day))
    removed = store.remove(prefix)
    log.info("removed %d plaintext files under %s/%s", removed, store.url, prefix)
    return removed


def remove_plaintext(data_dir: Path, day: date) -> Sequence[Path]:
    """Delete the day's decrypted and unpacked files once the day is reconciled."""
    day_dir = work_day_dir(data_dir, day)
    if not day_dir.exists():
        return ()
    removed = sorted(p for p in day_dir.rglob("*") if p.is_file())
    shutil.rmtree(day_dir)
    log.info("removed %d plaintext files under %s", len(removed), day_dir)
    return removed
