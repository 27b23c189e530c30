"""The one `MetaData` every area declares its tables on, and the timestamp type they share."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Column, DateTime, MetaData, Table

metadata = MetaData()
TS = DateTime(timezone=True)


def ts(name: str, **kw) -> Column:
    return Column(name, TS, **kw)


def describe(table: Table, docs: Mapping[str, str], shared: Mapping[str, str] | None = None) -> Table:
    """Give every column of `table` its description (what the UI's column schema shows): its own in `docs`,
    else the area's `shared` one for a column of that name. A column without one, or a description in `docs`
    of no column, is a programming error caught at import."""
    columns = {c.name for c in table.columns}
    known = {**{k: v for k, v in (shared or {}).items() if k in columns}, **docs}
    missing, unknown = columns - set(known), set(docs) - columns
    if missing or unknown:
        raise ValueError(
            f"{table.name}: columns without a description {sorted(missing)}, unknown {sorted(unknown)}"
        )
    for column in table.columns:
        column.doc = known[column.name]
    return table
