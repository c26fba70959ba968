"""Daily exports for downstream systems (a customer-data platform): `<root>/<day>/` holds

- `payloads/part-*.txt`: JSON lines, one member's payload per line (the API's schema);
- `cards/part-*.parquet`: the cards, one row per member x feed x variant x group, with source ids for
  imported data and the served `version`;
- `_manifest.json`: version (and whether it is the one the API serves), counts, time written.

Spark writes everything into a hidden staging folder beside the target; the folder is then renamed into
place (a previous export of the day is first moved aside, then deleted), so a reader sees no folder or a
whole one, never a partial export. Local folders only: on an object store a rename is a copy.
"""

import json
import os
import secrets
import shutil
from datetime import date
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from reco_assets.serving.published import now


def write_export(root: str, day: date, version: str, payloads: DataFrame, cards: DataFrame, served: bool) -> dict:
    """Export the day's `payloads` (column `payload`) and `cards`; returns the manifest written."""
    base = Path(root)
    base.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(4)
    staging, aside, target = base / f".staging-{day}-{token}", base / f".replaced-{day}-{token}", base / str(day)
    try:
        payloads.select("payload").write.text(str(staging / "payloads"))
        cards.withColumn("version", F.lit(version)).write.parquet(str(staging / "cards"))
        session = payloads.sparkSession
        manifest = {
            "as_of_date": str(day),
            "version": version,
            "served": served,
            # counted from the files written, not from what was meant to be written
            "payloads": session.read.text(str(staging / "payloads")).count(),
            "card_rows": session.read.parquet(str(staging / "cards")).count(),
            "written_at": now(),
        }
        (staging / "_manifest.json").write_text(json.dumps(manifest, indent=2))
        if target.exists():
            os.rename(target, aside)
        try:
            os.rename(staging, target)
        except OSError:
            if aside.exists():
                os.rename(aside, target)  # the previous export stays
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(aside, ignore_errors=True)
    return manifest | {"folder": str(target)}
