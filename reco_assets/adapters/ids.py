"""Foreign ids -> the lakehouse's 64-bit ids, stable across imports, kept in the `id_map` table.

An id is the first 63 bits of BLAKE2b over `namespace:source id`: the same source id always gets the same
id, on any machine and in any import, without a lookup; the `id_map` table (`namespace`, `source_id`,
`id`) lets results be joined back to the source. A collision (two source ids, one id) fails the import.
"""

from hashlib import blake2b

import pyarrow as pa

from reco_assets.resources.lakehouse import Lakehouse

ID_MAP = "id_map"
SCHEMA = pa.schema([("namespace", pa.string()), ("source_id", pa.string()), ("id", pa.int64())])


def stable_id(namespace: str, source_id: str) -> int:
    digest = blake2b(f"{namespace}:{source_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1  # positive int64


class IdMap:
    """The ids handed out during an import, written to `id_map` at the end."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], int] = {}

    def __call__(self, namespace: str, source_id: str) -> int:
        key = (namespace, source_id)
        if key not in self.seen:
            self.seen[key] = stable_id(namespace, source_id)
        return self.seen[key]

    def save(self, lakehouse: Lakehouse) -> int:
        """Add the new mappings to `id_map` (one commit); fails on a collision. Returns the rows added."""
        new = pa.Table.from_pylist(
            [{"namespace": ns, "source_id": src, "id": i} for (ns, src), i in self.seen.items()], schema=SCHEMA
        )
        stored = lakehouse.table(ID_MAP)
        if stored is not None:
            known = stored.to_pyarrow_table().to_pylist()
            new_keys = {(r["namespace"], r["source_id"]) for r in new.to_pylist()}
            new = pa.concat_tables(
                [
                    pa.Table.from_pylist(
                        [r for r in known if (r["namespace"], r["source_id"]) not in new_keys], schema=SCHEMA
                    ),
                    new,
                ]
            )
        ids = new.select(["namespace", "id"]).to_pylist()
        if len({(r["namespace"], r["id"]) for r in ids}) != len(ids):
            raise ValueError("two source ids map to one lakehouse id: rename a namespace")
        lakehouse.replace(ID_MAP, new, None, ["namespace"])
        return len(self.seen)
