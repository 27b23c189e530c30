"""The one `MetaData` every area declares its tables on, and the timestamp type they share."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, MetaData

metadata = MetaData()
TS = DateTime(timezone=True)


def ts(name: str, **kw) -> Column:
    return Column(name, TS, **kw)
