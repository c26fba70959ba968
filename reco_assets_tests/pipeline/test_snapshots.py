"""Catalog snapshots read by header name, each line accepted or rejected with its reason (hostile inputs)."""

import csv
from datetime import datetime, timezone

import pytest

from reco_assets.pipeline.ingestion import InputLimits
from reco_assets.pipeline.snapshots import (
    SnapshotHeaderError,
    accepted_styles,
    classify_snapshots,
    line_cuts,
    rejected_lines,
    with_duplicates,
)

LIMITS = InputLimits(max_quantity=10_000, max_price=100_000.0)
HEADER = (
    "style_id,subclass_brand_id,brand,division,department,class,subclass,price,"
    "first_live_at,live_from,live_until,qty_on_hand,prior_sales"
)
T0, T1 = "2026-10-30T15:00:00Z", "2026-11-02T15:00:00Z"


def row(style="5", group="10", brand="Acme", price="19.5", qty="3", live_from=T0, live_until=T1, **changed) -> str:
    fields = {
        "style_id": style,
        "subclass_brand_id": group,
        "brand": brand,
        "division": "women",
        "department": "apparel",
        "class": "tops",
        "subclass": "tees",
        "price": price,
        "first_live_at": T0,
        "live_from": live_from,
        "live_until": live_until,
        "qty_on_hand": qty,
        "prior_sales": "0",
    } | changed
    return ",".join(fields[name] for name in HEADER.split(","))


def write(path, lines: list[str], header: str = HEADER, end: str = "\n") -> str:
    path.write_text(end.join([header, *lines]) + end, encoding="utf-8")
    return str(path)


def classify(spark, *files):
    classified, lines = classify_snapshots(spark, list(files), LIMITS)
    return with_duplicates(classified).cache(), lines


def reasons(classified) -> list[tuple[int, str | None]]:
    return sorted((r["line"], r["reason"]) for r in classified.select("line", "reason").collect())


def test_columns_are_found_by_header_name_in_any_order(spark, tmp_path):
    lines = [row("5", price="19.5"), row("6", group="11", price="7", qty="")]
    in_order = write(tmp_path / "2026-10-31.csv", lines)
    names = HEADER.split(",")
    swapped = names[:]
    swapped[0], swapped[7] = swapped[7], swapped[0]  # price first, style_id in price's place
    swapped[2], swapped[12] = swapped[12], swapped[2]
    moved = []
    for line in lines:
        values = dict(zip(names, line.split(",")))
        moved.append(",".join(values[name] for name in swapped))
    other = write(tmp_path / "2026-11-01.csv", moved, header=",".join(swapped))
    classified, _ = classify(spark, in_order, other)
    accepted = accepted_styles(classified, ["source"]).collect()
    by_file = {}
    for r in accepted:
        by_file.setdefault(r["source"].rsplit("/", 1)[-1], set()).add(
            (r["style_id"], r["subclass_brand_id"], r["brand"], r["price"], r["qty_on_hand"], r["prior_sales"])
        )
    expected = {(5, 10, "Acme", 19.5, 3, 0), (6, 11, "Acme", 7.0, None, 0)}
    assert by_file == {"2026-10-31.csv": expected, "2026-11-01.csv": expected}


def test_quotes_commas_and_backslashes_in_a_name_load_as_written(spark, tmp_path):
    names = ['Foo "Bar"', "Smith, Jones & Co", "back\\slash\\", "plain"]
    path = tmp_path / "2026-10-31.csv"
    with path.open("w", newline="") as handle:  # written by Python's csv module, as the importers do
        writer = csv.writer(handle)
        writer.writerow(HEADER.split(","))
        for n, name in enumerate(names, start=1):
            writer.writerow(row(str(n), brand=name).split(",")[:2] + [name] + row(str(n)).split(",")[3:])
    classified, _ = classify(spark, str(path))
    assert reasons(classified) == [(n, None) for n in range(1, 5)]
    loaded = {r["style_id"]: r["brand"] for r in accepted_styles(classified, []).collect()}
    assert loaded == dict(enumerate(names, start=1))


def test_a_header_without_a_catalog_column_fails_naming_file_and_column(spark, tmp_path):
    header = HEADER.replace(",qty_on_hand", "")
    path = write(tmp_path / "2026-10-31.csv", [",".join(row().split(",")[:-2] + ["0"])], header=header)
    with pytest.raises(SnapshotHeaderError, match=r"2026-10-31\.csv.*qty_on_hand"):
        classify_snapshots(spark, [path], LIMITS)
    twice = write(tmp_path / "2026-11-01.csv", [row() + ",5"], header=HEADER + ",style_id")
    with pytest.raises(SnapshotHeaderError, match="style_id more than once"):
        classify_snapshots(spark, [twice], LIMITS)


def test_every_hostile_line_is_rejected_with_its_first_rule(spark, tmp_path):
    lines = [
        row("1"),  # 1 accepted
        row("2", price="nan"),  # 2
        row("3", price="inf"),  # 3
        row("4", price="1e400"),  # 4: parses as +infinity
        row("5", price="-1"),  # 5
        row("6", price="200000"),  # 6: above max_price
        row("7", price="abc"),  # 7
        row("7.0"),  # 8: an id with a fraction
        row("0"),  # 9
        row("10", subclass=""),  # 10
        row("11") + ",extra",  # 11
        ",".join(row("12").split(",")[:-1]),  # 12: a field short
        "   ",  # 13
        row("14", live_from="2026-10-30 15:00:00"),  # 14: no offset
        row("15", qty="-2"),  # 15
        row("16", live_from=T1, live_until=T0),  # 16: ends before it starts
        row("1", price="5"),  # 17: style 1 again
        row("18", brand=""),  # 18: brand may be empty
        row("19", qty="1.5"),  # 19
        row("20", price="-inf"),  # 20
    ]
    path = write(tmp_path / "2026-10-31.csv", lines, end="\r\n")
    classified, read = classify(spark, path)
    assert reasons(classified) == [
        (1, None),
        (2, "non_finite:price"),
        (3, "non_finite:price"),
        (4, "non_finite:price"),
        (5, "negative:price"),
        (6, "out_of_range:price"),
        (7, "bad_type:price"),
        (8, "bad_type:style_id"),
        (9, "out_of_range:style_id"),
        (10, "missing_field:subclass"),
        (11, "wrong_field_count"),
        (12, "wrong_field_count"),
        (13, "blank_line"),
        (14, "bad_type:live_from"),
        (15, "out_of_range:qty_on_hand"),
        (16, "out_of_range:live_until"),
        (17, "duplicate_style"),
        (18, None),
        (19, "bad_type:qty_on_hand"),
        (20, "non_finite:price"),
    ]
    assert read.count() == len(lines)
    kept = accepted_styles(classified, []).collect()
    assert sorted((r["style_id"], r["price"]) for r in kept) == [(1, 19.5), (18, 19.5)]
    seconds = accepted_styles(classified, []).selectExpr("CAST(live_from AS LONG) AS s").distinct().collect()
    assert [r["s"] for r in seconds] == [int(datetime(2026, 10, 30, 15, tzinfo=timezone.utc).timestamp())]
    quarantined = {r["line"]: r["record"] for r in rejected_lines(classified, []).collect()}
    assert quarantined[2] == lines[1]  # the line as read, without its CR


def test_a_quoted_field_spanning_lines_forges_no_row(spark, tmp_path):
    # CSV reads lines 2-3 as one record whose brand holds a line break; line 3 alone looks like a valid row
    lines = [row("1"), row("2", brand='"Acme'), row("4") + '"', row("5")]
    path = write(tmp_path / "2026-10-31.csv", lines)
    classified, _ = classify(spark, path)
    assert reasons(classified) == [(1, None), (2, "multiline_record"), (3, "multiline_record"), (4, None)]
    assert sorted(r["style_id"] for r in accepted_styles(classified, []).collect()) == [1, 5]


def test_a_final_line_without_line_feed_counts_and_a_final_line_feed_opens_none(spark, tmp_path):
    path = tmp_path / "2026-10-31.csv"
    path.write_text(HEADER + "\n" + row("1") + "\n" + row("2"), encoding="utf-8")
    classified, read = classify(spark, str(path))
    assert reasons(classified) == [(1, None), (2, None)]
    other = tmp_path / "2026-11-01.csv"
    other.write_text(HEADER + "\n" + row("1") + "\n\n", encoding="utf-8")
    classified, read = classify(spark, str(other))
    assert reasons(classified) == [(1, None), (2, "blank_line")]


def test_a_style_repeated_batches_later_in_its_file_is_a_duplicate_but_not_in_another_file(spark, tmp_path):
    """A file's lines cross into Python in several Arrow batches: a style's first line in an earlier batch still
    makes its later lines duplicates; another file (another day) may hold the same style."""
    first = [row(str(style)) for style in range(1, 12)] + [row("3", price="5"), row("bad", price="1"), row("11")]
    second = [row("3"), row("12"), row("12", price="7")]
    files = write(tmp_path / "2026-10-30.csv", first), write(tmp_path / "2026-10-31.csv", second)
    batch = "spark.sql.execution.arrow.maxRecordsPerBatch"
    previous = spark.conf.get(batch)
    spark.conf.set(batch, "4")
    try:
        classified, _ = classify(spark, *files)
        found = sorted(
            (r["file_name"], r["line"], r["reason"]) for r in classified.select("file_name", "line", "reason").collect()
        )
    finally:
        spark.conf.set(batch, previous)
    expected = [("2026-10-30.csv", line, None) for line in range(1, 12)]
    expected += [("2026-10-30.csv", 12, "duplicate_style"), ("2026-10-30.csv", 13, "bad_type:style_id")]
    expected += [("2026-10-30.csv", 14, "duplicate_style")]
    expected += [("2026-10-31.csv", 1, None), ("2026-10-31.csv", 2, None), ("2026-10-31.csv", 3, "duplicate_style")]
    assert found == expected


def test_staging_writes_each_line_to_one_table_with_duplicates_marked(spark, tmp_path):
    """The staging pass (classification, duplicates and the split into the two tables, in the tasks) as the
    catalog asset runs it: every line in exactly one table, a later line of a style rejected with its text."""
    from datetime import date

    from reco_assets.assets.common import publish
    from reco_assets.assets.ingestion import stage_snapshots
    from reco_assets.resources.lakehouse import Lakehouse

    lines = [row("1"), row("2", price="abc"), row("1", price="5"), row("3")]
    path = write(tmp_path / "2026-10-31.csv", lines)
    lakehouse = Lakehouse(root=str(tmp_path / "lake"))
    day = date(2026, 10, 31)
    staged = stage_snapshots(spark, lakehouse, [path], "catalog", {"as_of_date": [day]}, LIMITS)
    assert [check.passed for check in publish(staged.writes, [staged.reconciled()])] == [True]
    accepted = lakehouse.read_arrow("catalog", partition={"as_of_date": day}).to_pylist()
    rejected = lakehouse.read_arrow("catalog_rejected", partition={"as_of_date": day}).to_pylist()
    assert sorted((r["style_id"], r["price"]) for r in accepted) == [(1, 19.5), (3, 19.5)]
    assert sorted((r["line"], r["reason"], r["record"]) for r in rejected) == [
        (2, "bad_type:price", lines[1]),
        (3, "duplicate_style", lines[2]),
    ]


@pytest.mark.parametrize("seed", range(5))
def test_a_file_is_cut_into_the_lines_python_splits_it_into(seed):
    """Random files of LFs, CRs, quotes and letters (empty lines, CR-only lines, final LF or not): the lines after
    the header are those of `bytes.split(b"\\n")` after dropping the final LF, each less one CR at its end,
    with its count of quotes; a file with no line after its header gives none."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for _ in range(200):
        text = bytes(rng.choice(list(b'\n\r"ab,'), size=rng.integers(0, 40)).tolist())
        lines = (text[:-1] if text.endswith(b"\n") else text).split(b"\n")[1:]
        expected = [line[:-1] if line.endswith(b"\r") else line for line in lines]
        cut = line_cuts(np.frombuffer(text, np.uint8))
        if not expected:
            assert cut is None
            continue
        values, quotes = cut
        assert values.to_pylist() == expected
        assert quotes.tolist() == [line.count(b'"') for line in expected]
