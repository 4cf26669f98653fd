"""Proof for an auditor that an archived day is still whole (``icechat verify``, evidence).

Core, no Airflow: :mod:`originals` re-hashes the raw store, :mod:`expected` makes the
day's items again from the originals, :mod:`mailboxes` finds every imported copy in its
mailbox, :mod:`accounting` accounts for every copy, :mod:`report` writes
``reports/verify-{day}``, :mod:`repair` re-imports missing copies, :mod:`evidence` writes
the folder an auditor asks for. :func:`verify_day` runs a day's verification.
"""

from icechat.verify.run import VerifyJob, VerifyOutcome, verify_day

__all__ = ["VerifyJob", "VerifyOutcome", "verify_day"]
