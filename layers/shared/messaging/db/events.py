"""The ids of the message_events rows a transaction wrote, so they can be published once it commits.

Every repository function that inserts message_events rows passes their ids here; the customer-webhooks
work relays them to EventQueue after the commit, generically (the sweep relays whatever was missed).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection

WRITTEN_EVENT_IDS = "written_event_ids"


def remember_written(connection: Connection, ids: Iterable[int]) -> None:
    connection.info.setdefault(WRITTEN_EVENT_IDS, []).extend(ids)
