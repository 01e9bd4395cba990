"""What every module of SQL statements shares."""

from __future__ import annotations

from collections.abc import Iterable

from messaging.enums import MessageStatus


def compact(sql: str) -> str:
    """One line: the driver scans every statement character by character on each execution."""
    return " ".join(sql.split())


def status_list(statuses: Iterable[MessageStatus]) -> str:
    """Message statuses as an SQL list, `('queued', 'retrying')`, for `status IN ...`."""
    return "({})".format(", ".join(f"'{status.value}'" for status in statuses))
