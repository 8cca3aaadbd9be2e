"""Set-based writes of many rows in one statement, for the recompute's snapshots and current rows.

On PostgreSQL the rows travel as one array per column and are expanded with unnest, so a chunk of
thousands of accounts is one INSERT ... ON CONFLICT (or one UPDATE ... FROM) with a handful of
parameters: no per-row SQL to compile, no model instances. Other databases (SQLite in tests and
the embedded default) run the same statement once per row with executemany, which is fast there.
"""

from collections.abc import Sequence

import orjson
from django.db import connection
from django.db.models import (
    BooleanField,
    DecimalField,
    FloatField,
    IntegerField,
    JSONField,
    Model,
)

__all__ = ["rows_update", "rows_upsert"]

# Their values print without spaces, commas, quotes or braces: array elements need no quoting
# (IntegerField covers the big, small and positive variants).
UNQUOTED_FIELDS = (BooleanField, DecimalField, FloatField, IntegerField)


def rows_upsert(
    *,
    model: type[Model],
    columns: dict[str, Sequence],
    unique: Sequence[str],
    update: Sequence[str],
    only_if: str = "",
    same: dict[str, object] | None = None,
) -> None:
    """Insert the rows given column by column (field name -> values, all the same length) plus
    the `same` values shared by every row (the as-of date, the time of the run); on a conflict on
    `unique` update the `update` fields. `only_if` is an SQL condition on the existing row
    (`t.<column>`) and the new one (`excluded.<column>`); rows failing it stay."""
    same = same or {}
    count = len(next(iter(columns.values()), ()))
    if not count:
        return
    fields = [model._meta.get_field(name) for name in columns]
    shared = [model._meta.get_field(name) for name in same]
    names = [f.column for f in [*fields, *shared]]
    table = model._meta.db_table
    conflict = ", ".join(_q(model._meta.get_field(n).column) for n in unique)
    assignments = ", ".join(
        f"{_q(c)} = excluded.{_q(c)}" for c in (model._meta.get_field(n).column for n in update)
    )
    tail = f"ON CONFLICT ({conflict}) DO UPDATE SET {assignments}"
    if only_if:
        tail += f" WHERE {only_if}"
    target = f"{_q(table)} AS t ({', '.join(map(_q, names))})"
    constants = [f.get_db_prep_save(same[f.name], connection) for f in shared]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            casts = "".join(f", %s::{f.db_type(connection)}" for f in shared)
            cursor.execute(
                f"INSERT INTO {target} SELECT v.*{casts} FROM {_unnest(fields)} AS v {tail}",
                [*constants, *_arrays(fields, columns.values())],
            )
        else:
            marks = ", ".join(["%s"] * len(names))
            rows = [(*row, *constants) for row in _rows(fields, columns.values())]
            cursor.executemany(f"INSERT INTO {target} VALUES ({marks}) {tail}", rows)


def rows_update(
    *, model: type[Model], key: str, columns: dict[str, Sequence], where: str = "", params=()
) -> None:
    """Update existing rows matched on `key` (its values in columns[key]) with the other
    columns' values. `where` is an extra SQL condition on the row (`t.<column>`), with `params`."""
    if not len(columns[key]):
        return
    table = model._meta.db_table
    fields = [model._meta.get_field(name) for name in columns]
    key_column = model._meta.get_field(key).column
    values = [f for f in fields if f.column != key_column]
    extra = f" AND ({where})" if where else ""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            sets = ", ".join(f"{_q(f.column)} = v.{_q(f.column)}" for f in values)
            names = ", ".join(_q(f.column) for f in fields)
            cursor.execute(
                f"UPDATE {_q(table)} AS t SET {sets} FROM {_unnest(fields)} AS v ({names}) "
                f"WHERE t.{_q(key_column)} = v.{_q(key_column)}{extra}",
                [*_arrays(fields, columns.values()), *params],
            )
        else:
            sets = ", ".join(f"{_q(f.column)} = %s" for f in values)
            key_field = model._meta.get_field(key)
            ordered = [*(columns[f.name] for f in values), columns[key]]
            rows = _rows([*values, key_field], ordered)
            cursor.executemany(
                f"UPDATE {_q(table)} AS t SET {sets} WHERE {_q(key_column)} = %s{extra}",
                [(*row, *params) for row in rows],
            )


def _unnest(fields) -> str:
    """A subquery with one row per array position. JSON travels as text[] and is cast per value:
    PostgreSQL parses a jsonb[] literal about twice as slowly."""
    arrays = ", ".join(
        "%s::text[]" if isinstance(f, JSONField) else f"%s::{f.db_type(connection)}[]"
        for f in fields
    )
    values = ", ".join(
        f"u.c{i}::jsonb" if isinstance(f, JSONField) else f"u.c{i}" for i, f in enumerate(fields)
    )
    names = ", ".join(f"c{i}" for i in range(len(fields)))
    return f"(SELECT {values} FROM unnest({arrays}) AS u ({names}))"


def _arrays(fields, columns) -> list[str]:
    """One array literal ('{1,2,NULL}') per column for unnest; JSON values are encoded here,
    with orjson. Literals, not lists: psycopg2 sends a list as ARRAY[e1, e2, ...], an
    expression PostgreSQL parses element by element, which took half of each write; a literal
    goes through the type's array input function in one pass."""
    literals = []
    for field, values in zip(fields, columns, strict=True):
        if isinstance(field, JSONField):
            values = (None if v is None else orjson.dumps(v).decode() for v in values)
        target = field.target_field if field.is_relation else field
        bare = isinstance(target, UNQUOTED_FIELDS)
        elements = ("NULL" if v is None else (str(v) if bare else _quoted(v)) for v in values)
        literals.append("{" + ",".join(elements) + "}")
    return literals


def _quoted(value) -> str:
    text = str(value)
    if "\\" in text or '"' in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _rows(fields, columns) -> list[tuple]:
    """Per-row values prepared the way the backend stores them (dates and datetimes as text on
    SQLite, JSON as text)."""
    prepared = [
        [f.get_db_prep_save(v, connection) for v in values]
        for f, values in zip(fields, columns, strict=True)
    ]
    return list(zip(*prepared, strict=True))


def _q(name: str) -> str:
    return connection.ops.quote_name(name)
