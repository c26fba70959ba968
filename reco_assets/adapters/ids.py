"""Foreign ids -> the lakehouse's 64-bit ids, stable across imports, kept in the `id_map` table.

An id is the first 63 bits of BLAKE2b over `namespace:source id`: the same source id always gets the same
id, on any machine and in any import, without a lookup; the `id_map` table (`namespace`, `source_id`,
`id`) lets results be joined back to the source. An import adds the mappings the table lacks in one Delta
merge on (`namespace`, `source_id`), so concurrent imports keep each other's. A collision (two source ids,
one id), within the import or against the stored mappings, fails the import.
"""

from functools import partial
from hashlib import blake2b

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from reco_assets.resources.lakehouse import Lakehouse

ID_MAP = "id_map"
SCHEMA = pa.schema([("namespace", pa.string()), ("source_id", pa.string()), ("id", pa.int64())])


def stable_id(namespace: str, source_id: str) -> int:
    digest = blake2b(f"{namespace}:{source_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1  # positive int64


def refuse_collisions(new: pa.Table, stored: ds.Dataset) -> None:
    """Fail when two source ids of a namespace share an id, among `new` or between `new` and `stored`
    (a join in DuckDB: the stored mappings are scanned, not loaded)."""
    with duckdb.connect() as con:
        con.register("new", new)
        con.register("stored", stored)
        found = con.sql(
            """SELECT n.namespace, n.source_id, s.source_id FROM new n JOIN stored s
                 ON s.namespace = n.namespace AND s.id = n.id AND s.source_id <> n.source_id
               UNION ALL
               SELECT namespace, min(source_id), max(source_id) FROM new GROUP BY namespace, id HAVING count(*) > 1
               LIMIT 3"""
        ).fetchall()
    if found:
        raise ValueError(f"two source ids map to one lakehouse id, rename a namespace: {found}")


class IdMap:
    """The ids handed out during an import, added to `id_map` at the end."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], int] = {}

    def __call__(self, namespace: str, source_id: str) -> int:
        key = (namespace, source_id)
        if key not in self.seen:
            self.seen[key] = stable_id(namespace, source_id)
        return self.seen[key]

    def save(self, lakehouse: Lakehouse) -> int:
        """Add the mappings `id_map` lacks (one commit); fails on a collision. Returns the rows added."""
        if not self.seen:
            return 0
        keys, values = list(self.seen), list(self.seen.values())
        new = pa.table([[k[0] for k in keys], [k[1] for k in keys], values], schema=SCHEMA)
        return lakehouse.insert_new(
            ID_MAP, new, ["namespace", "source_id"], ["namespace"], partial(refuse_collisions, new)
        )
