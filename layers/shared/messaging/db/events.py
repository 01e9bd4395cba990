"""The contract between code that writes history rows and the relay that publishes them.

Every repository function that inserts `message_events` rows hands the new rows' ids to `remember_written`
on the connection it used; after the commit, whoever relays events to EventQueue reads them back from
`connection.info`, so feature code never has to remember to publish (see WAVE2 and DESIGN.md §1).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection

WRITTEN_EVENT_IDS = "written_event_ids"


def remember_written(connection: Connection, ids: Iterable[int]) -> None:
    """Note history rows this connection's transaction inserted (ids of `message_events`)."""
    written = [int(event_id) for event_id in ids if event_id is not None]
    if written:
        connection.info.setdefault(WRITTEN_EVENT_IDS, []).extend(written)


def written(connection: Connection) -> list[int]:
    """The ids noted so far on this connection (in insertion order)."""
    return list(connection.info.get(WRITTEN_EVENT_IDS, []))
