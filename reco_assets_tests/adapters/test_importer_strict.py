"""Hostile source files: the importer never forges, splits or merges a record, and never makes a partial
landing visible.

Every file is written here byte by byte; the expected records, reasons, ids and catalog rows are written out
by hand from those bytes. Each import must reconcile: records read = imported + rejected, per file, with the
rejected file holding one line per rejected record and the events files one line per imported record.
"""

import json
import threading
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from reco_assets.adapters.ids import stable_id
from reco_assets.adapters.importer import import_files
from reco_assets.pipeline.ingestion import InputLimits
from reco_assets.pipeline.snapshots import accepted_styles, classify_snapshots, with_duplicates
from reco_assets.resources.lakehouse import Lakehouse
from reco_assets.resources.landing import LandingResource, events_file, hidden

RETAIL = b"InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\r\n"
OPENCDP = b"event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n"


def source(tmp_path: Path, name: str, header: bytes, *records: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(header + b"".join(records))
    return path


def retail(invoice: str, stock: str, time: str, price: str, who: str = "17850", day: str = "2010-12-01") -> bytes:
    """One invoice line of 6 units, CRLF-terminated like the UCI file."""
    return f"{invoice},{stock},LANTERN,6,{day} {time},{price},{who},United Kingdom\r\n".encode()


def purchase(invoice: str, stock: str, time: str, price: float, who: str = "17850") -> dict:
    """The landing record of `retail(...)`, written out."""
    return {
        "event_id": f"{invoice}/{stock}/1",
        "event_time": f"2010-12-01T{time}Z",
        "member_id": stable_id("member", who),
        "event_type": "purchase",
        "style_id": stable_id("style", stock),
        "session_id": invoice,
        "price": price,
        "quantity": 6,
    }


def run(home: Path, fmt: str, *files: Path):
    return import_files(fmt, list(files), home / "landing", Lakehouse(root=str(home / "lakehouse")), log=lambda _: None)


def events(home: Path) -> list[dict]:
    return [json.loads(line) for p in sorted((home / "landing" / "events").glob("*.jsonl")) for line in p.open()]


def rejected(home: Path) -> list[dict]:
    return [json.loads(line) for p in sorted((home / "landing" / "rejected").glob("*.jsonl")) for line in p.open()]


def id_map(home: Path, namespace: str) -> list[str]:
    table = Lakehouse(root=str(home / "lakehouse")).read_arrow("id_map", f"namespace = '{namespace}'")
    return sorted(table.column("source_id").to_pylist())


def reconciles(home: Path, report) -> None:
    for each in report.files:
        assert each.records == each.imported + each.rejected.total()
        assert len(each.rejected_file.read_text().splitlines()) == each.rejected.total()
    assert len(events(home)) == report.imported


def spark_catalog(spark, home: Path, day: str) -> list[tuple]:
    """The day's snapshot as ingestion reads it, every line accepted: (style, brand, subclass, price)."""
    path = str(home / "landing" / "catalog" / f"{day}.csv")
    classified, _ = classify_snapshots(spark, [path], InputLimits(max_quantity=10_000, max_price=100_000.0))
    assert [r["reason"] for r in classified.collect() if r["reason"] is not None] == []
    accepted = accepted_styles(with_duplicates(classified), [])
    return sorted((r.style_id, r.brand, r.subclass, r.price) for r in accepted.collect())


def test_a_quoted_line_break_stays_in_its_field_and_forges_no_record(tmp_path):
    hostile = (
        b'536365,85123A,"WHITE HANGING\r\n'
        b'536999,22222,FORGED,99,2010-12-01 08:26:00,1.00,17850,United Kingdom",6,2010-12-01 08:26:00,2.55,'
        b"17850,United Kingdom\r\n"
    )
    path = source(tmp_path, "invoices.csv", RETAIL, hostile, retail("536366", "22633", "08:28:00", "1.85"))
    report = run(tmp_path, "online-retail", path)
    assert events(tmp_path) == [
        purchase("536365", "85123A", "08:26:00", 2.55),
        purchase("536366", "22633", "08:28:00", 1.85),
    ]
    assert id_map(tmp_path, "style") == ["22633", "85123A"]
    assert (report.records, report.imported, report.rejected.total()) == (2, 2, 0)
    reconciles(tmp_path, report)


def test_records_with_more_or_fewer_fields_than_the_header_are_rejected(tmp_path):
    extra = b"536365,85123A,WHITE,6,2010-12-01 08:26:00,2.55,17850,United Kingdom,EXTRA\r\n"
    short = b"536366,22633,HAND WARMER,2,2010-12-01 08:28:00,1.85,17850\r\n"
    path = source(tmp_path, "invoices.csv", RETAIL, extra, short, retail("536367", "84879", "08:34:00", "1.69"))
    report = run(tmp_path, "online-retail", path)
    assert events(tmp_path) == [purchase("536367", "84879", "08:34:00", 1.69)]
    assert rejected(tmp_path) == [
        {"file": str(path), "record": 1, "line": 2, "reason": "wrong_field_count", "text": extra.decode().rstrip()},
        {"file": str(path), "record": 2, "line": 3, "reason": "wrong_field_count", "text": short.decode().rstrip()},
    ]
    assert (report.records, report.imported, dict(report.rejected)) == (3, 1, {"wrong_field_count": 2})
    reconciles(tmp_path, report)


def test_undecodable_bytes_reject_the_record_so_two_ids_never_merge(tmp_path):
    path = source(
        tmp_path,
        "invoices.csv",
        RETAIL,
        retail("536365", "85123A", "08:26:00", "2.55", who="17850").replace(b"17850", b"17850\xff"),
        retail("536366", "85123A", "08:27:00", "2.55", who="17850").replace(b"17850", b"17850\xfe"),
        retail("536367", "85123A", "08:28:00", "2.55", who="17850"),
    )
    report = run(tmp_path, "online-retail", path)
    assert events(tmp_path) == [purchase("536367", "85123A", "08:28:00", 2.55)]
    assert id_map(tmp_path, "member") == ["17850"]
    assert [(r["record"], r["reason"], r["text"]) for r in rejected(tmp_path)] == [
        (1, "invalid_utf8", "536365,85123A,LANTERN,6,2010-12-01 08:26:00,2.55,17850\\xff,United Kingdom"),
        (2, "invalid_utf8", "536366,85123A,LANTERN,6,2010-12-01 08:27:00,2.55,17850\\xfe,United Kingdom"),
    ]
    reconciles(tmp_path, report)


def test_prices_never_reach_a_snapshot_unless_finite_and_in_range(tmp_path, spark):
    """Non-finite prices cannot be landed (JSON has no NaN or infinity): rejected. A negative or too large
    finite price is landed for ingestion to quarantine (`negative_price`, `out_of_range:price`, above
    max_price = 100,000), but the catalog takes no price from it: 10001 keeps 2.55 although its later line
    says -1.5."""
    lines = [
        ("500001", "10001", "08:00:00", "2.55"),
        ("500002", "10001", "09:00:00", "-1.5"),
        ("500003", "10002", "08:10:00", "nan"),
        ("500004", "10003", "08:20:00", "inf"),
        ("500005", "10004", "08:30:00", "-inf"),
        ("500006", "10005", "08:40:00", "1e400"),
        ("500007", "10006", "08:50:00", "100000.01"),
        ("500008", "10007", "08:55:00", "1e300"),
        ("500009", "10008", "09:10:00", "100000"),
        ("500010", "10009", "09:20:00", "0"),
    ]
    path = source(tmp_path, "invoices.csv", RETAIL, *(retail(*line) for line in lines))
    report = run(tmp_path, "online-retail", path)
    assert spark_catalog(spark, tmp_path, "2010-12-01") == sorted(
        [
            (stable_id("style", "10001"), "unbranded", "100", 2.55),
            (stable_id("style", "10008"), "unbranded", "100", 100000.0),
            (stable_id("style", "10009"), "unbranded", "100", 0.0),
        ]
    )
    landed = {e["session_id"]: e["price"] for e in events(tmp_path)}
    assert landed == {
        "500001": 2.55,
        "500002": -1.5,
        "500007": 100000.01,
        "500008": 1e300,
        "500009": 100000.0,
        "500010": 0.0,
    }
    assert [(r["record"], r["reason"]) for r in rejected(tmp_path)] == [
        (3, "non_finite:UnitPrice"),
        (4, "non_finite:UnitPrice"),
        (5, "non_finite:UnitPrice"),
        (6, "non_finite:UnitPrice"),
    ]
    assert (report.records, report.imported) == (10, 6)
    reconciles(tmp_path, report)


def test_source_ids_longer_than_256_bytes_are_rejected(tmp_path):
    """The bound is in UTF-8 bytes: 86 euro signs are 258 bytes. A field the adapter does not read
    (`Description`) is not bounded."""
    path = source(
        tmp_path,
        "invoices.csv",
        RETAIL,
        retail("536365", "85123A", "08:26:00", "2.55", who="9" * 256),
        retail("536366", "85123A", "08:27:00", "2.55", who="9" * 257),
        retail("536367", "85123A", "08:28:00", "2.55", who="€" * 86),
        retail("536368", "X" * 257, "08:29:00", "2.55"),
        retail("536369", "85123A", "08:30:00", "2.55").replace(b"LANTERN", b"D" * 1000),
    )
    report = run(tmp_path, "online-retail", path)
    assert [e["event_id"] for e in events(tmp_path)] == ["536365/85123A/1", "536369/85123A/1"]
    assert id_map(tmp_path, "member") == ["17850", "9" * 256]
    assert [(r["record"], r["reason"]) for r in rejected(tmp_path)] == [
        (2, "too_long:CustomerID"),
        (3, "too_long:CustomerID"),
        (4, "too_long:StockCode"),
    ]
    reconciles(tmp_path, report)


def test_names_the_catalog_snapshot_cannot_hold_are_rejected(tmp_path, spark):
    """A snapshot record is one line: a line break in a name is rejected; quotes, commas and backslashes load
    as written."""

    def view(product: str, category_id: str, code: str, brand: str, price: str = "10.0") -> bytes:
        at = f"2019-10-01 00:00:0{product[-1]} UTC"
        return f"{at},view,{product},{category_id},{code},{brand},{price},541312140,s1\n".encode()

    path = source(
        tmp_path,
        "clicks.csv",
        OPENCDP,
        view("1001", "2053013555631882655", "electronics.smartphone", "apple", "489.07"),
        view("1002", "2053013555631882655", "electronics.smartphone", '"say ""hi"""'),
        view("1003", "2053013555631882655", "electronics.smartphone", '"a,b\\"'),
        view("1004", "2053013555631882655", '"electronics\nphone"', "apple"),
        view("1005", "2053013555631882655", "electronics.smartphone", "x" * 257),
        view("1006", "2053013555631882655", "electronics.smartphone", "apple", "nan"),
        view("1007", '"12\r34"', "", "apple"),
    )
    report = run(tmp_path, "opencdp", path)
    assert spark_catalog(spark, tmp_path, "2019-10-01") == sorted(
        [
            (stable_id("style", "1001"), "apple", "electronics.smartphone", 489.07),
            (stable_id("style", "1002"), 'say "hi"', "electronics.smartphone", 10.0),
            (stable_id("style", "1003"), "a,b\\", "electronics.smartphone", 10.0),
        ]
    )
    assert [(r["record"], r["line"], r["reason"]) for r in rejected(tmp_path)] == [
        (4, 5, "unsafe_character:category_code"),
        (5, 7, "too_long:brand"),
        (6, 8, "non_finite:price"),
        (7, 9, "unsafe_character:category_id"),
    ]
    assert [e["style_id"] for e in events(tmp_path)] == [stable_id("style", n) for n in ("1001", "1002", "1003")]
    reconciles(tmp_path, report)


def test_malformed_csv_and_blank_records_are_rejected_with_their_lines(tmp_path):
    """A quote left open runs until a quote closes it, the CSV parser's field size limit or the end of the file
    (here): what it ran over is one malformed record, kept whole in the rejected file, not split into rows."""
    after_quote = b'"536365"x,85123A,WHITE,6,2010-12-01 08:26:00,2.55,17850,United Kingdom\r\n'
    open_quote = b'536367,84879,"BIRD,32,2010-12-01 08:34:00,1.69,13047,United Kingdom\r\n'
    swallowed = retail("536368", "22633", "08:35:00", "1.85")
    path = source(
        tmp_path,
        "invoices.csv",
        RETAIL,
        after_quote,
        b"\r\n",
        retail("536366", "22633", "08:28:00", "1.85"),
        open_quote,
        swallowed,
    )
    report = run(tmp_path, "online-retail", path)
    assert events(tmp_path) == [purchase("536366", "22633", "08:28:00", 1.85)]
    assert [(r["record"], r["line"], r["reason"], r["text"]) for r in rejected(tmp_path)] == [
        (1, 2, "malformed_csv", after_quote.decode().rstrip()),
        (2, 3, "blank_line", ""),
        (4, 5, "malformed_csv", (open_quote + swallowed).decode().rstrip()),
    ]
    assert (report.records, report.imported, dict(report.rejected)) == (4, 1, {"malformed_csv": 2, "blank_line": 1})
    reconciles(tmp_path, report)


def _plant_collision(home: Path) -> None:
    """A stored mapping whose id is the one customer 17850 gets: two source ids for one id."""
    planted = pa.table(
        {"namespace": ["member"], "source_id": ["planted"], "id": [stable_id("member", "17850")]},
        schema=pa.schema([("namespace", pa.string()), ("source_id", pa.string()), ("id", pa.int64())]),
    )
    Lakehouse(root=str(home / "lakehouse")).insert_new("id_map", planted, ["namespace", "source_id"], ["namespace"])


@pytest.mark.parametrize("failure", ["second file of another format", "collision in id_map", "no readable time"])
def test_a_failed_import_shows_nothing_it_wrote(tmp_path, failure):
    """Landing files of an earlier import stay as they were; no file of the failed one is visible or left."""
    landing = tmp_path / "landing"
    before = {landing / "events" / "2010-12-01.jsonl": b"earlier\n", landing / "catalog" / "2010-12-01.csv": b"x\n"}
    for path, content in before.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    good = source(
        tmp_path,
        "invoices.csv",
        RETAIL,
        retail("536365", "85123A", "08:26:00", "2.55"),
        retail("536366", "22633", "09:00:00", "1.85", day="2010-12-02"),
    )
    files = [good]
    if failure == "second file of another format":
        files.append(source(tmp_path, "clicks.csv", OPENCDP, b"2019-10-01 00:00:00 UTC,view,1,2,a.b,c,1.0,3,s\n"))
    elif failure == "collision in id_map":
        _plant_collision(tmp_path)
    else:
        files = [source(tmp_path, "undated.csv", RETAIL, b"536365,85123A,X,6,yesterday,2.55,17850,United Kingdom\r\n")]
    with pytest.raises(ValueError):
        run(tmp_path, "online-retail", *files)
    assert {p: p.read_bytes() for p in landing.rglob("*") if p.is_file()} == before
    stored = [] if failure != "collision in id_map" else ["planted"]
    assert (id_map(tmp_path, "member") if (tmp_path / "lakehouse" / "id_map").exists() else []) == stored


def test_hidden_files_being_written_are_not_landed_days(tmp_path):
    path = hidden(events_file(tmp_path, date(2010, 12, 1)))
    path.parent.mkdir(parents=True)
    path.write_text("{}\n")
    assert path.name.startswith(".2010-12-01.jsonl.") and path.suffix == ".tmp"
    assert LandingResource(root=str(tmp_path)).days() == []


def test_imports_add_to_the_id_map_and_a_reimport_adds_nothing(tmp_path):
    first = source(tmp_path, "first.csv", RETAIL, retail("536365", "85123A", "08:26:00", "2.55", who="111"))
    second = source(tmp_path, "second.csv", RETAIL, retail("536366", "22633", "08:28:00", "1.85", who="222"))
    assert run(tmp_path, "online-retail", first).ids == 3  # member, style, item group
    assert run(tmp_path, "online-retail", second).ids == 3
    expected = {"member": ["111", "222"], "style": ["22633", "85123A"], "item_group": ["226", "851"]}
    assert {ns: id_map(tmp_path, ns) for ns in expected} == expected
    assert run(tmp_path, "online-retail", first).ids == 0
    assert {ns: id_map(tmp_path, ns) for ns in expected} == expected


def test_concurrent_imports_keep_each_others_ids(tmp_path):
    """Two imports into one home at once, three times over: every mapping of each is kept, once."""
    expected: set[tuple[str, str]] = set()
    for round_ in range(3):
        files = []
        for who in (f"{round_}1", f"{round_}2"):
            line = retail(
                f"5{who}", f"9{who}", "08:26:00", "2.55", who=who, day=f"2010-12-0{len(files) + 1 + 2 * round_}"
            )
            files.append(source(tmp_path, f"import{who}.csv", RETAIL, line))
            expected |= {("member", who), ("style", f"9{who}"), ("item_group", f"9{who}"[:3])}
        start, failures = threading.Barrier(len(files)), []

        def land(path: Path) -> None:
            start.wait()
            try:
                run(tmp_path, "online-retail", path)
            except Exception as error:  # shown by the assertion below
                failures.append(error)

        threads = [threading.Thread(target=land, args=(path,)) for path in files]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
    stored = Lakehouse(root=str(tmp_path / "lakehouse")).read_arrow("id_map").to_pylist()
    assert sorted((r["namespace"], r["source_id"]) for r in stored) == sorted(expected)
    assert all(r["id"] == stable_id(r["namespace"], r["source_id"]) for r in stored)
