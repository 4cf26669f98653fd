"""The host name a test's Celery worker records on its task instances.

Airflow asks ``[core] hostname_callable`` for the host name a task instance records; the
system test's workers run on one machine but must look like two hosts, so each is started
with this callable and its own name in ``ICECHAT_TEST_HOSTNAME``.
"""

from __future__ import annotations

import os

VARIABLE = "ICECHAT_TEST_HOSTNAME"
CALLABLE = "tests.support.worker_host.hostname"


def hostname() -> str:
    """The name this process's worker plays (set by ``airflow_stack.CeleryWorker``)."""
    return os.environ[VARIABLE]
