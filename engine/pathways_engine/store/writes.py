"""SQL that writes, where the ORM's unit of work would be wrong or slow.

`insert_missing` is an idempotent insert: two processes starting the first pathway on a new
definition (or for the same new subject) at the same moment both succeed, where a
check-then-insert would give one of them a unique violation.
"""

from __future__ import annotations

from typing import Any
from typing import cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from .models import Base


def table_of(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def insert_missing(session: Session, model: type[Base], values: dict[str, Any],
                   key: list[str]) -> None:
    """INSERT the row unless a row with the same `key` columns exists (ON CONFLICT DO NOTHING)."""
    dialect = session.get_bind().dialect.name
    make = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(make(table_of(model)).values(**values).on_conflict_do_nothing(
        index_elements=key))
