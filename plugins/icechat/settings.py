"""The connector's settings (Airflow Variables in deployment), parsed and checked in one place.

Each value comes from a look-up function (``Variable.get`` in Airflow, a dict in tests); a
bad value raises :class:`SettingsError` naming the variable and what it accepts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

from icechat.exceptions import SettingsError
from icechat.ice.profile import DEFAULT_PROFILE, Profile, load_profile
from icechat.render.addresses import is_address
from icechat.render.mail import MESSAGE, MODES
from icechat.retention import Retention, parse_retention

REMOTE_DIR = "icechat_remote_dir"
DATA_DIR = "icechat_data_dir"
MAPPING_CSV = "icechat_mapping_csv"
AUTO_MAPPING = "icechat_auto_mapping"
FOLDER_NAME = "icechat_folder_name"
ITEM_MODE = "icechat_item_mode"
UNMAPPED_MAILBOX = "icechat_unmapped_mailbox"
PROFILE = "icechat_profile"
VERIFY_SCHEDULE = "icechat_verify_schedule"
VERIFY_DAYS = "icechat_verify_days"
VERIFY_LAG_DAYS = "icechat_verify_lag_days"
GO_LIVE = "icechat_go_live"
POKE_INTERVAL = "icechat_poke_interval"
GRAPH_POOL = "icechat_graph_pool"
RAW_RETENTION = "icechat_raw_retention"
ALL = (
    REMOTE_DIR,
    DATA_DIR,
    MAPPING_CSV,
    AUTO_MAPPING,
    FOLDER_NAME,
    ITEM_MODE,
    UNMAPPED_MAILBOX,
    PROFILE,
    VERIFY_SCHEDULE,
    VERIFY_DAYS,
    VERIFY_LAG_DAYS,
    GO_LIVE,
    POKE_INTERVAL,
    GRAPH_POOL,
    RAW_RETENTION,
)

DEFAULT_FOLDER = "ICE Chat"
DEFAULT_POKE_INTERVAL = 600.0  # seconds between two looks at the SFTP site for a waiting day
_POOL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,256}")
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


OBJECT_STORES = ("s3", "abfs", "abfss", "wasb", "wasbs")  # through ObjectStoragePath
# Airflow's Azure provider registers adlfs for abfs:// and abfss:// only; adlfs reaches the
# Blob endpoint for both, so wasb:// and wasbs:// are the same stores under Hadoop's names.
_AIRFLOW_SCHEME = {"wasb": "abfs", "wasbs": "abfss"}
_AZURE_SCHEMES = ("abfs", "abfss", "wasb", "wasbs")


def storage_path_url(url: str) -> str:
    """An object-storage ``icechat_data_dir`` as Airflow's ``ObjectStoragePath`` takes it."""
    scheme, sep, rest = url.partition("://")
    return f"{_AIRFLOW_SCHEME.get(scheme, scheme)}{sep}{rest}"


def _data_location(value: str) -> tuple[Path, str | None]:
    """The data directory: a path or ``file://`` URL, else an object-storage URL."""
    scheme, sep, rest = value.partition("://")
    if not sep:
        return Path(value), None
    if scheme == "file":
        return Path(unquote(urlsplit(value).path)), None
    bucket = rest.rpartition("@")[2].strip("/")
    _refuse_hadoop_form(DATA_DIR, value)
    if scheme in OBJECT_STORES and bucket:
        return Path(), value.rstrip("/")
    raise SettingsError(
        f"variable {DATA_DIR} is {value!r}: give a local path, a file:// URL or an object "
        f"store ({', '.join(f'{s}://' for s in OBJECT_STORES)}), e.g. "
        "s3://aws_conn_id@bucket/prefix"
    )


def _refuse_hadoop_form(variable: str, value: str) -> None:
    """Refuse Hadoop's ``container@account.blob.core.windows.net/path`` in an Azure URL: read
    as Airflow reads it, the container would be taken for a connection id and the host for a
    container (container names have no dots)."""
    scheme, _, rest = value.partition("://")
    if scheme not in _AZURE_SCHEMES:
        return
    netloc, _, prefix = rest.partition("/")
    container, at, host = netloc.rpartition("@")
    if at and "." in host:
        account = host.partition(".")[0]
        raise SettingsError(
            f"variable {variable} is {value!r}: that is Hadoop's container@account-host form. "
            f"Give {scheme}://conn_id@{container}/{prefix}, conn_id being an Airflow "
            f"connection (type wasb) to the storage account {account}"
        )


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a run needs besides connections."""

    remote_dir: str = "/"
    #: The local data directory; unused when ``data_url`` names an object store.
    data_dir: Path = Path("icechat")
    #: The data directory in object storage (``s3://[conn_id@]bucket/prefix``), if it is there.
    data_url: str | None = None
    #: How long originals are locked in raw/ (``icechat_raw_retention``); ``None``: not locked.
    raw_retention: Retention | None = None
    mapping_csv: str | None = None
    auto_mapping: bool = True
    folder_name: str = DEFAULT_FOLDER
    item_mode: str = MESSAGE
    unmapped_mailbox: str | None = None
    profile: Profile = DEFAULT_PROFILE
    go_live: date | None = None
    poke_interval: float = DEFAULT_POKE_INTERVAL

    @classmethod
    def from_lookup(cls, get: Callable[[str], str | None]) -> Settings:
        """Read and check every variable; absent ones take their defaults."""

        def text(name: str) -> str | None:
            value = get(name)
            return value.strip() if value is not None and value.strip() else None

        airflow_home = os.environ.get("AIRFLOW_HOME", str(Path.home() / "airflow"))
        auto = (text(AUTO_MAPPING) or "true").lower()
        if auto not in _TRUE | _FALSE:
            raise SettingsError(f"variable {AUTO_MAPPING} is {auto!r}; set it to true or false")
        mode = (text(ITEM_MODE) or MESSAGE).lower()
        if mode not in MODES:
            raise SettingsError(
                f"variable {ITEM_MODE} is {mode!r}; set it to one of {', '.join(MODES)}"
            )
        folder = text(FOLDER_NAME) or DEFAULT_FOLDER
        if "/" in folder or "\\" in folder or len(folder) > 255:
            raise SettingsError(
                f"variable {FOLDER_NAME} is {folder!r}; it names one top-level folder "
                "(no slashes, at most 255 characters)"
            )
        fallback = text(UNMAPPED_MAILBOX)
        if fallback is not None and not is_address(fallback):
            raise SettingsError(
                f"variable {UNMAPPED_MAILBOX} is {fallback!r}; set it to a mailbox address "
                "or delete it"
            )
        profile = DEFAULT_PROFILE
        profile_file = text(PROFILE)
        if profile_file is not None:
            try:
                profile = load_profile(profile_file)
            except (OSError, ValueError) as exc:
                raise SettingsError(
                    f"variable {PROFILE} is {profile_file!r}, which cannot be used ({exc}); "
                    "give a JSON file of element-name overrides (see include/profile.default.json)"
                ) from exc
        data_dir, data_url = _data_location(text(DATA_DIR) or os.path.join(airflow_home, "icechat"))
        mapping_csv = text(MAPPING_CSV)
        if mapping_csv is not None:
            _refuse_hadoop_form(MAPPING_CSV, mapping_csv)
        return cls(
            data_dir=data_dir,
            data_url=data_url,
            raw_retention=parse_retention(text(RAW_RETENTION), RAW_RETENTION),
            go_live=_day(text(GO_LIVE), GO_LIVE),
            poke_interval=_seconds(text(POKE_INTERVAL), POKE_INTERVAL, DEFAULT_POKE_INTERVAL),
            remote_dir=text(REMOTE_DIR) or "/",
            mapping_csv=mapping_csv,
            auto_mapping=auto in _TRUE,
            folder_name=folder,
            item_mode=mode,
            unmapped_mailbox=fallback.lower() if fallback else None,
            profile=profile,
        )


def _day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise SettingsError(
            f"variable {name} is {value!r}; give the first day to archive as YYYY-MM-DD"
        ) from exc


def _seconds(value: str | None, name: str, default: float) -> float:
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 1 <= seconds <= 86400:
        raise SettingsError(
            f"variable {name} is {value!r}; give a number of seconds from 1 to 86400"
        )
    return seconds


def graph_pool(get: Callable[[str], str | None]) -> str | None:
    """The Airflow pool the Graph tasks run in (``icechat_graph_pool``), if one is named."""
    value = (get(GRAPH_POOL) or "").strip()
    if not value:
        return None
    if not _POOL_NAME.fullmatch(value):
        raise SettingsError(
            f"variable {GRAPH_POOL} is {value!r}; name an Airflow pool (letters, digits, "
            "'_', '.', '-') or delete the variable to run in default_pool"
        )
    return value


DEFAULT_VERIFY_SCHEDULE = "0 6 * * 1"  # Mondays 06:00 UTC
DEFAULT_VERIFY_DAYS = 7
DEFAULT_VERIFY_LAG_DAYS = 2
_CRON_PRESETS = frozenset({"@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually"})


@dataclass(frozen=True, slots=True)
class VerifySettings:
    """When ``icechat_verify`` runs (cron, UTC) and which days a run covers.

    A run starting on day R covers the ``days`` days ending ``lag_days`` before R: with the
    weekly default, every day is verified once, two days after its archive had to finish.
    """

    schedule: str = DEFAULT_VERIFY_SCHEDULE
    days: int = DEFAULT_VERIFY_DAYS
    lag_days: int = DEFAULT_VERIFY_LAG_DAYS

    @classmethod
    def from_lookup(cls, get: Callable[[str], str | None]) -> VerifySettings:
        """Read and check the ``icechat_verify_*`` variables; absent ones take defaults."""
        schedule = (get(VERIFY_SCHEDULE) or "").strip() or DEFAULT_VERIFY_SCHEDULE
        if schedule not in _CRON_PRESETS and len(schedule.split()) != 5:
            raise SettingsError(
                f"variable {VERIFY_SCHEDULE} is {schedule!r}; give a cron expression of five "
                "fields in UTC (e.g. '0 6 * * 1', Mondays 06:00) or @daily / @weekly"
            )
        return cls(
            schedule=schedule,
            days=_count(get, VERIFY_DAYS, DEFAULT_VERIFY_DAYS, least=1),
            lag_days=_count(get, VERIFY_LAG_DAYS, DEFAULT_VERIFY_LAG_DAYS, least=0),
        )

    def days_for(self, run_day: date) -> list[date]:
        """The days a run starting on ``run_day`` verifies, oldest first."""
        last = run_day - timedelta(days=self.lag_days)
        return [last - timedelta(days=n) for n in range(self.days - 1, -1, -1)]


def _count(get: Callable[[str], str | None], name: str, default: int, *, least: int) -> int:
    text = (get(name) or "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < least or int(text) > 366:
        raise SettingsError(
            f"variable {name} is {text!r}; set it to a whole number of days from {least} to 366"
        )
    return int(text)
