"""Loading many rows at once: a seeded history for the benchmarks, later a copy
of a whole state between backends.

Row-by-row inserts into indexed tables are what makes a million-item load take
minutes; SQLite builds an index fastest from sorted data in one pass. So the
load drops the indexes of the tables it fills, inserts everything in one
transaction with syncing off, and creates the same indexes again (the schema
itself stays exactly what the migrations made).
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

_INDEXES = ("select name, sql from sqlite_master where type = 'index' and tbl_name = ? and sql is not null")


class BulkLoad:
    def columns(self, table: str) -> list[str]:
        """The column names of `table`, in schema order."""
        return [column.name for column in self.db[self._known(table)].columns]

    def bulk_load(self, tables: Mapping[str, tuple[Sequence[str], Iterable[Sequence[object]]]]) -> dict[str, int]:
        """Append rows to each table: {table: (columns, rows)}, loaded in the order given, in one
        transaction; returns the rows added per table."""
        indexes = [(name, sql) for table in tables for name, sql in self.db.execute(_INDEXES, [self._known(table)])]
        added: dict[str, int] = {}
        self.db.execute("pragma synchronous = off")
        try:
            with self.db.conn:
                for name, _ in indexes:
                    self.db.execute(f'drop index "{name}"')
                for table, (columns, rows) in tables.items():
                    for column in columns:
                        self._identifier(column)
                    before = self.count(table)
                    names = ", ".join(f'"{c}"' for c in columns)
                    self.db.conn.executemany(
                        f'insert into "{table}" ({names}) values ({", ".join("?" * len(columns))})', rows)
                    added[table] = self.count(table) - before
                for _, sql in indexes:
                    self.db.execute(sql)
            self.db.execute("analyze")
        finally:
            self.db.execute("pragma synchronous = normal")
        return added

    def _known(self, table: str) -> str:
        if table not in self.db.table_names():
            raise ValueError(f"no table {table!r} in this state")
        return table

    @staticmethod
    def _identifier(name: str) -> str:
        if not name.replace("_", "a").isalnum():
            raise ValueError(f"not a column name: {name!r}")
        return name
