"""Days missed while the scheduler was down: from the go-live day, never before it."""

from __future__ import annotations

from datetime import date

from icechat.catchup import missed_days

GO_LIVE = date(2026, 11, 20)


def test_days_since_go_live_without_a_report_or_run_oldest_first():
    handled = {date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 24)}
    missed = missed_days(GO_LIVE, date(2026, 11, 26), lambda day: day in handled)
    assert missed == [date(2026, 11, 22), date(2026, 11, 23), date(2026, 11, 25)]


def test_nothing_before_go_live_so_a_first_unpause_starts_no_flood():
    assert missed_days(GO_LIVE, GO_LIVE, lambda day: False) == []
    assert missed_days(GO_LIVE, date(2026, 11, 1), lambda day: False) == []
    assert missed_days(GO_LIVE, date(2026, 11, 21), lambda day: False) == [GO_LIVE]
