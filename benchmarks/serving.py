"""Serving: loading a day into each store, and the API's latency at fixed request rates and across a switch.

    .venv/bin/python benchmarks/serving.py --home /tmp/reco-v5 --date 2026-10-31
    .venv/bin/python benchmarks/serving.py --home /tmp/reco-v5 --stores lmdb --rates 100 1000 --seconds 20
    .venv/bin/python benchmarks/serving.py --home /tmp/reco-v5 --seconds 15 --synthetic 1000000

For each store (`lmdb`: a fresh temporary home; `redis`: a `redis-server` started on a free port, without
persistence, stopped at the end) the day's published cards of `--home` become payloads in Spark and are
loaded from the tasks into a new version, counted and switched to, as `served_feeds` does: the seconds and
payloads per second are printed, with the payloads' sizes. Then `python -m reco_assets serve` answers from
that store, and a load generator asks for random members of the day at each `--rates` (requests per
second, open loop: requests are sent on a fixed schedule over up to `rate / 20` keep-alive connections)
for `--seconds`: latency percentiles, answers other than 200 and socket errors (timeout 2 s), "mixed"
answers (a body whose `version` differs from its `X-Reco-Version` header) and the mean body size. The
generator is `wrk` (one thread; a Lua script paces, checks and sums; latency from the moment a request is
written) when it is installed, else an asyncio + aiohttp client in a child process (latency from the
scheduled send, waits for a free connection included; on 2 cores it saturates below 1000/s). A run at
the highest rate loads a second version of the same payloads while it runs, switches to it, then rolls
back to the first: it reports the versions the answers came from, and any error or mixed answer.
A run at the highest rate with one in 20 of the version's styles withdrawn measures the answers that are
decoded and filtered at request time. When the version holds the item-to-item keys (`y:`), the three item
routes are measured at each rate too: `/v1/styles/{id}/similar` and `/bought-together` of random styles of
the version (`~styles`), and `POST /v1/baskets/recommendations` of carts of 3 random styles.
Sessions, last: 2,000 members of the day get 2 or 3 events each (`POST /v1/events`, batches of 100), then
are asked at the highest rate while a second open-loop generator posts 200 events a second for them, one
event a POST, each line once (valid events of the served day, the cards' day + 1: unique ids, mostly
`product_view`, some `add_to_cart` and `purchase`, styles of `~styles`, a session per member): the GETs'
figures with the share of answers re-ranked (`"reranked":true`), the POSTs' p50 and p99, errors, events
accepted and rejected. Then 200 other members, one at a time, get one event posted and their answer asked
again at once until it counts the event: the milliseconds from sending the POST to that answer (p50, p99,
max; how many changed on the first GET after the POST's answer; how many not within 1 s), asked of the
API process that took the event, then (200 more) of a second `serve` on the same store with its own
`RECO_API_WRITER`. The API processes land events in the store's temporary home, where no site file
closes the served day.
`--synthetic N` also times loading N generated payloads of the demo's median size into each store (from
`spark.range(N)`, never collected), then discards them; skipped when the disk (LMDB) or the memory (Redis)
has not room for them.

Everything runs on one machine: Spark, the API (one process; two for the last measure) and the generators share
its cores.
"""

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import aiohttp
import numpy as np
import orjson
import redis
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from reco_assets.resources import local_resources
from reco_assets.resources.landing import events_file
from reco_assets.resources.serving import ServingResource
from reco_assets.serving import published
from reco_assets.serving.intake import serving_day
from reco_assets.serving.item_lists import load_lists
from reco_assets.serving.loading import load
from reco_assets.serving.payloads import carded_styles, member_payloads, store_rows
from reco_assets.serving.store import (
    MEMBER,
    NOTHING_WITHDRAWN,
    STYLE_GROUP,
    STYLES,
    Manifest,
    ServingStore,
    Withdrawn,
    new_version,
)
from reco_assets.settings import RecoSettings

REPO = Path(__file__).resolve().parent.parent
TOKEN = "bench-token"
SWITCH_RUN_CAP = 600
"""Seconds the run across a version switch may last at most; it is stopped once the switches are done."""
SAMPLED_STYLES = 2_000
"""Styles of the version drawn for the item routes' requests (those with a group), and carts made of them."""
CART_SIZE = 3
PRODUCTS_FULL = "struct<feeds:struct<products:array<struct<full:array<string>>>>>"

WRK_SCRIPT = r"""
-- args: requests file (GET: a path per line; POST: a JSON body per line), bearer token, milliseconds between two
-- requests of a thread, the path to POST to (empty: GET), "sequential" to send the lines in order (else at random)
local ffi = require("ffi")
ffi.cdef("typedef struct { long sec; long nsec; } bench_timespec; int clock_gettime(int, bench_timespec *);")
local clock = ffi.new("bench_timespec")

local function now_ms()
  ffi.C.clock_gettime(1, clock) -- CLOCK_MONOTONIC
  return tonumber(clock.sec) * 1000 + tonumber(clock.nsec) / 1e6
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("index", #threads)
end

function init(args)
  lines = {}
  for line in io.lines(args[1]) do lines[#lines + 1] = line end
  wrk.headers["Authorization"] = "Bearer " .. args[2]
  interval = tonumber(args[3])
  post_to = args[4] or ""
  sequential = args[5] == "sequential"
  if post_to ~= "" then wrk.headers["Content-Type"] = "application/json" end
  math.randomseed(os.time() * 100 + index)
  next_at = now_ms()
  non200, mismatches, body_bytes, seen, sent = 0, 0, 0, {}, 0
  reranked, accepted, rejected = 0, 0, 0
end

-- each request of the thread gets the next slot of a fixed schedule (at most a second of backlog)
function delay()
  local now = now_ms()
  next_at = math.max(next_at + interval, now - 1000)
  return math.max(next_at - now, 0)
end

function request()
  sent = sent + 1
  local line = lines[sequential and (sent - 1) % #lines + 1 or math.random(#lines)]
  if post_to ~= "" then return wrk.format("POST", post_to, nil, line) end
  return wrk.format("GET", line)
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
    return
  end
  local version = headers["x-reco-version"] or headers["X-Reco-Version"] or "none"
  if version ~= string.match(body, '"version":"([^"]*)"') then mismatches = mismatches + 1 end
  seen[version] = (seen[version] or 0) + 1
  body_bytes = body_bytes + #body
  if string.find(body, '"reranked":true', 1, true) then reranked = reranked + 1 end
  local took, refused = string.match(body, '"accepted":(%d+),"rejected":(%d+)') -- an answer of /v1/events
  accepted, rejected = accepted + (tonumber(took) or 0), rejected + (tonumber(refused) or 0)
end

function done(summary, latency, requests)
  local total = { non200 = 0, mismatches = 0, body_bytes = 0, reranked = 0, accepted = 0, rejected = 0 }
  local seen_all = {}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(total) do total[name] = total[name] + thread:get(name) end
    for version, n in pairs(thread:get("seen")) do seen_all[version] = (seen_all[version] or 0) + n end
  end
  local versions = {}
  for version, n in pairs(seen_all) do versions[#versions + 1] = string.format('"%s":%d', version, n) end
  local e = summary.errors
  local ok = summary.requests - total.non200
  io.write(string.format(
    'RESULT {"requests":%d,"seconds":%.3f,"p50":%.3f,"p95":%.3f,"p99":%.3f,"max":%.3f,"non200":%d,'
      .. '"socket_errors":%d,"mismatches":%d,"bytes":%.0f,"reranked":%d,"accepted":%d,"rejected":%d,'
      .. '"versions":{%s}}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, total.non200, e.connect + e.read + e.write + e.timeout,
    total.mismatches, ok > 0 and total.body_bytes / ok or 0, total.reranked, total.accepted, total.rejected,
    table.concat(versions, ",")))
end
"""


# --- the stores --------------------------------------------------------------------------------------
@dataclass
class Target:
    """A store under test: how the benchmark writes to it, and how the API child process finds it."""

    name: str
    home: Path
    resource: ServingResource
    environment: dict[str, str]

    def store(self, keep: int) -> ServingStore:
        return self.resource.open(keep)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def redis_server():
    """A throw-away `redis-server` on a free port (no snapshots, no append-only file): its URL."""
    port = free_port()
    command = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_for(lambda: redis.Redis.from_url(url).ping(), server, "redis-server")
        yield url
    finally:
        server.terminate()
        server.wait(30)


def open_target(kind: str, stack: ExitStack) -> Target:
    home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"reco-serving-{kind}-")))
    environment = {"RECO_SERVING_STORE": kind}
    if kind == "redis":
        environment["RECO_REDIS_URL"] = stack.enter_context(redis_server())
    resource = ServingResource(
        store=kind,
        lmdb_root=str(home / "serving"),
        redis_url=environment.get("RECO_REDIS_URL", "redis://127.0.0.1:6379/0"),
        exports_root=str(home / "exports"),
    )
    return Target(kind, home, resource, environment)


# --- loading -----------------------------------------------------------------------------------------
@dataclass
class Loaded:
    store: str
    what: str
    pairs: int
    seconds: float
    switch_seconds: float | None = None

    def __str__(self) -> str:
        switch = f"; counted and switched in {self.switch_seconds:.2f} s" if self.switch_seconds is not None else ""
        return (
            f"{self.store}: {self.what}: {self.pairs:,} pairs loaded in {self.seconds:.1f} s "
            f"({self.pairs / self.seconds:,.0f} payloads/s){switch}"
        )


@dataclass
class Day:
    """The day's published cards, read once (cached) and turned into versions of payloads."""

    cards: published.PublishedCards
    frame: DataFrame
    settings: RecoSettings

    def payloads(self, version: str) -> DataFrame:
        return member_payloads(self.frame, str(self.cards.day), version, self.cards.source)

    def load_and_switch(self, store: ServingStore, name: str) -> tuple[str, Loaded]:
        """A new version of the day's payloads and style lists, loaded from the Spark tasks, counted, then
        served."""
        version = new_version(str(self.cards.day), self.cards.label)
        started = time.perf_counter()
        pairs = load(store_rows(self.payloads(version)), store, version)
        session = self.frame.sparkSession
        lists = load_lists(session, self.cards.lakehouse, self.cards, store, version, self.settings)
        store.write(version, [(STYLES, orjson.dumps(sorted(lists.styles)))])
        loaded = time.perf_counter()
        manifest = Manifest(
            version=version,
            as_of_date=str(self.cards.day),
            source=self.cards.source,
            members=store.count(version, MEMBER),
            loaded_at=published.now(),
            fallback=orjson.dumps(published.fallback(self.cards, version, self.settings)),
        )
        store.switch(manifest)
        switched = time.perf_counter()
        what = f"the day ({manifest.members:,} members)"
        return version, Loaded(name, what, pairs, loaded - started, switched - loaded)


def payload_sizes(day: Day) -> dict[str, int]:
    """Bytes per payload (median, p95, max) and styles in the longest products `full` list of a member."""
    payloads = day.payloads(new_version(str(day.cards.day), day.cards.label))
    products = F.from_json("payload", PRODUCTS_FULL)["feeds"]["products"]
    longest = F.array_max(F.transform(products, lambda group: F.size(group["full"])))
    row = (
        payloads.select(F.octet_length("payload").alias("bytes"), longest.alias("styles"))
        .agg(
            F.count("*").alias("payloads"),
            F.percentile_approx("bytes", [0.5, 0.95], 10_000).alias("bytes"),
            F.max("bytes").alias("max_bytes"),
            F.percentile_approx("styles", 0.5, 10_000).alias("median_styles"),
            F.max("styles").alias("max_styles"),
        )
        .first()
    )
    return {
        "payloads": row["payloads"],
        "median": row["bytes"][0],
        "p95": row["bytes"][1],
        "max": row["max_bytes"],
        "median_styles": row["median_styles"],
        "max_styles": row["max_styles"],
    }


def synthetic_rows(session: SparkSession, count: int, size: int) -> DataFrame:
    """`count` pairs `m:<id>` -> a JSON payload of about `size` bytes (a products list of 10-digit ids)."""
    styles = max(1, (size - 100) // 13)  # `"0123456789",` is 13 bytes

    def style(i):
        return F.lpad(((F.col("id") * 7919 + i * 104_729) % 10_000_000_000).cast("string"), 10, "0")

    full = F.transform(F.sequence(F.lit(1), F.lit(styles)), style)
    document = F.struct(
        F.col("id").cast("string").alias("member_id"),
        F.lit("synthetic").alias("version"),
        F.struct(F.array(F.struct(full.alias("full"))).alias("products")).alias("feeds"),
    )
    return session.range(count).select(
        F.concat(F.lit(MEMBER.decode()), F.col("id").cast("string")).cast("binary").alias("key"),
        F.to_json(document).cast("binary").alias("value"),
    )


def room_for(target: Target) -> int:
    """Bytes free where `target` keeps its data: disk under its home (LMDB), memory (Redis)."""
    if target.name == "lmdb":
        return shutil.disk_usage(target.home).free
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return int(meminfo["MemAvailable"].split()[0]) * 1024


def load_synthetic(session: SparkSession, target: Target, store: ServingStore, count: int, size: int) -> Loaded | None:
    rows = synthetic_rows(session, count, size)
    each = len(rows.select("value").first()["value"])
    needed = int(count * (each + 200) * 1.2)
    free = room_for(target)
    if free < needed:
        print(f"{target.name}: synthetic load skipped: needs ~{needed / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free")
        return None
    version = new_version("synthetic", "bench")
    started = time.perf_counter()
    pairs = load(rows, store, version)
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    store.discard(version)
    print(f"{target.name}: synthetic version discarded in {time.perf_counter() - started:.1f} s")
    return Loaded(target.name, f"synthetic ({each:,} B each)", pairs, seconds)


class Discarding:
    """Stands for a store in `load`: takes every pair and keeps none, so what is timed is Spark's share."""

    def write(self, version: str, items) -> int:
        return sum(1 for _ in items)


def spark_share(session: SparkSession, count: int, size: int) -> Loaded:
    """The synthetic load into no store: pairs generated, handed to the Python tasks and dropped."""
    started = time.perf_counter()
    pairs = load(synthetic_rows(session, count, size), Discarding(), "none")
    return Loaded("none", "synthetic, Spark's share (nothing written)", pairs, time.perf_counter() - started)


# --- the API -----------------------------------------------------------------------------------------
def wait_for(ready, process: subprocess.Popen, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode}")
        try:
            if ready():
                return
        except (OSError, redis.ConnectionError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready after {seconds:.0f} s")


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as answer:
            return answer.status == 200
    except urllib.error.HTTPError:
        return False


@contextmanager
def api(target: Target, writer: str = "bench-1"):
    """`python -m reco_assets serve` over the target's store, once `/readyz` answers 200: its URL. Events posted
    to it land in the target's temporary home (`landing/events/<day>.api-<writer>.jsonl`), where no site file
    closes the served day."""
    port = free_port()
    environment = os.environ | target.environment | {"RECO_API_TOKENS": TOKEN, "RECO_API_WRITER": writer}
    command = [sys.executable, "-m", "reco_assets", "serve", "--home", str(target.home), "--port", str(port)]
    log = open(target.home / f"api-{writer}.log", "wb")
    server = subprocess.Popen(command, env=environment, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: ready(url), server, "the API")
        yield url
    finally:
        server.terminate()
        server.wait(30)
        log.close()


# --- the load generators -----------------------------------------------------------------------------
def connections(rate: int) -> int:
    """Keep-alive connections for `rate`: enough to keep the schedule with answers of up to 50 ms."""
    return max(8, rate // 20)


@dataclass(frozen=True)
class Requests:
    """What a run asks, at random (`sequential`: in order, each line once while they last): GET of the paths of
    `lines`, or, with `post_to`, POST of its JSON bodies."""

    route: str
    lines: Path
    post_to: str = ""
    sequential: bool = False


class WrkRun:
    def __init__(self, url: str, requests: Requests, rate: int, seconds: int):
        script = requests.lines.with_name("bench.lua")
        script.write_text(WRK_SCRIPT)
        command = ["wrk", "-t", "1", "-c", str(connections(rate)), "-d", f"{seconds}s", "-s", str(script), url]
        command += ["--", str(requests.lines), TOKEN, str(1000 / rate), requests.post_to]
        command.append("sequential" if requests.sequential else "")
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)

    def result(self) -> dict:
        output, _ = self.process.communicate()
        found = [line for line in output.splitlines() if line.startswith("RESULT ")]
        if not found:
            raise RuntimeError(f"wrk printed no result:\n{output}")
        return json.loads(found[-1].removeprefix("RESULT "))


async def open_loop(url: str, requests: Requests, rate: int, seconds: int, stop) -> dict:
    """Requests at `rate` per second on a fixed schedule for `seconds` (or until `stop`): wrk's figures. A
    request is a GET of a path of `requests.lines`, or with `post_to` a POST of a JSON body of them."""
    latencies, versions, counts = [], Counter(), Counter()
    lines, post_to = requests.lines.read_text().splitlines(), requests.post_to
    headers = {"Authorization": f"Bearer {TOKEN}"} | ({"Content-Type": "application/json"} if post_to else {})

    async def one(session: aiohttp.ClientSession, line: str) -> None:
        started = time.perf_counter()
        if post_to:
            asked = session.post(f"{url}{post_to}", data=line, headers=headers)
        else:
            asked = session.get(f"{url}{line}", headers=headers)
        try:
            async with asked as answer:
                body = await answer.read()
        except (aiohttp.ClientError, asyncio.TimeoutError):
            counts["socket_errors"] += 1
            return
        latencies.append(time.perf_counter() - started)
        if answer.status != 200:
            counts["non200"] += 1
            return
        version, document = answer.headers.get("X-Reco-Version", "none"), orjson.loads(body)
        counts["mismatches"] += version != document.get("version")
        counts["bytes"] += len(body)
        counts["reranked"] += bool(document.get("session", {}).get("reranked"))
        counts.update({name: document.get(name, 0) for name in ("accepted", "rejected")})
        versions[version] += 1

    connector = aiohttp.TCPConnector(limit=connections(rate))
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=2)) as session:
        tasks, start, sent = set(), time.perf_counter(), 0
        while sent < rate * seconds and not stop.is_set():
            await asyncio.sleep(max(0.0, start + sent / rate - time.perf_counter()))
            line = lines[sent % len(lines)] if requests.sequential else random.choice(lines)
            task = asyncio.create_task(one(session, line))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    answered = np.array(latencies or [0.0]) * 1000
    ok = sum(versions.values())
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        **{f"p{q}": float(np.percentile(answered, q)) for q in (50, 95, 99)},
        "max": float(answered.max()),
        "non200": counts["non200"],
        "socket_errors": counts["socket_errors"],
        "mismatches": counts["mismatches"],
        "bytes": counts["bytes"] / ok if ok else 0,
        **{name: counts[name] for name in ("reranked", "accepted", "rejected")},
        "versions": dict(versions),
    }


def _client(url: str, requests: Requests, rate: int, seconds: int, stop, results) -> None:
    results.put(asyncio.run(open_loop(url, requests, rate, seconds, stop)))


class ClientRun:
    """The aiohttp open-loop client in a child process (so it does not share this process's interpreter)."""

    def __init__(self, url: str, requests: Requests, rate: int, seconds: int):
        context = multiprocessing.get_context("spawn")
        self.stopping, self.results = context.Event(), context.Queue()
        arguments = (url, requests, rate, seconds, self.stopping, self.results)
        self.process = context.Process(target=_client, args=arguments)
        self.process.start()

    def stop(self) -> None:
        self.stopping.set()

    def result(self) -> dict:
        result = self.results.get()
        self.process.join()
        return result


# --- the runs ----------------------------------------------------------------------------------------
@dataclass
class Measured:
    store: str
    rate: str
    figures: dict
    route: str = "members"

    @property
    def errors(self) -> int:
        return self.figures["non200"] + self.figures["socket_errors"]

    @property
    def achieved(self) -> float:
        return self.figures["requests"] / self.figures["seconds"]

    def row(self, with_route: bool = False) -> str:
        f = self.figures
        cells = [self.store, *([self.route] if with_route else []), self.rate, f"{f['requests']:,}"]
        cells.append(f"{self.achieved:,.0f}")
        cells += [f"{f[p]:.1f}" for p in ("p50", "p95", "p99", "max")]
        cells += [f"{self.errors:,}", f"{f['mismatches']:,}", f"{f['bytes']:,.0f}"]
        return "| " + " | ".join(cells) + " |"


@dataclass
class Driver:
    """A load generator aimed at one store's API."""

    generator: type
    store: str
    url: str
    members: Requests

    def start(self, rate: int, seconds: int, requests: Requests | None = None):
        return self.generator(self.url, requests or self.members, rate, seconds)

    def fixed_rate(self, rate: int, seconds: int) -> Measured:
        measured = Measured(self.store, str(rate), self.start(rate, seconds).result())
        print(f"{self.store} at {rate}/s: {measured.row()}", flush=True)
        return measured

    def item_route(self, requests: Requests, rate: int, seconds: int) -> Measured:
        measured = Measured(self.store, str(rate), self.start(rate, seconds, requests).result(), requests.route)
        print(f"{self.store} {requests.route} at {rate}/s: {measured.row()}", flush=True)
        return measured

    def with_withdrawals(self, rate: int, seconds: int, store: ServingStore, day: Day, version: str) -> Measured:
        """At `rate` while one in 20 of the styles the version names are withdrawn (as after a release
        snapshot): answers naming one are decoded, filtered and encoded again."""
        styles = sorted(carded_styles(day.frame).toArrow().column("style_id").to_pylist())
        store.set_withdrawn(version, Withdrawn("benchmark", frozenset(styles[::20])))
        time.sleep(1.5)  # the API's Redis store re-reads the list within a second
        try:
            measured = Measured(self.store, f"{rate} + 5% withdrawn", self.start(rate, seconds).result())
        finally:
            store.set_withdrawn(version, NOTHING_WITHDRAWN)
        print(f"{self.store} with withdrawals: {measured.row()}", flush=True)
        return measured

    def across_switches(self, rate: int, store: ServingStore, day: Day, first: str) -> Measured:
        """At `rate`, from 2 s before a second version is loaded and switched to, to 2 s after the rollback
        to `first`."""
        run = self.start(rate, SWITCH_RUN_CAP)
        time.sleep(2)
        second, loaded = day.load_and_switch(store, self.store)
        print(f"{self.store} under load: {loaded}", flush=True)
        time.sleep(2)
        started = time.perf_counter()
        store.rollback(first)
        print(f"{self.store} under load: rolled back to the first version in {time.perf_counter() - started:.3f} s")
        time.sleep(2)
        run.stop()
        measured = Measured(self.store, f"{rate} + switch", run.result())
        print(f"{self.store} across the switches: {measured.row()}")
        for version, answers in sorted(measured.figures["versions"].items()):
            which = {first: "first", second: "second"}.get(version, "unexpected")
            print(f"  {answers:>8,} answers from {version} ({which})")
        return measured

    def with_events(self, rate: int, seconds: int, gets: Requests, posts: Requests) -> "WithEvents":
        """GETs of `gets` at `rate` while `posts` are sent at EVENT_RATE, both for `seconds`."""
        asking, posting = self.start(rate, seconds, gets), self.start(EVENT_RATE, seconds, posts)
        asked = Measured(self.store, str(rate), asking.result(), gets.route)
        run = WithEvents(asked, Measured(self.store, str(EVENT_RATE), posting.result(), posts.route))
        print(f"{self.store} re-ranked while events arrive: {run.row()}", flush=True)
        return run


def member_path(member: str) -> str:
    return f"/v1/members/{member}/recommendations"


def member_requests(ids: list[str], path: Path, route: str = "members") -> Requests:
    path.write_text("".join(f"{member_path(member)}\n" for member in ids))
    return Requests(route, path)


def member_ids(frame: DataFrame) -> list[str]:
    return frame.select(F.col("member_id").cast("string")).distinct().toArrow().column(0).to_pylist()


def listed_styles(store: ServingStore, version: str) -> list[str]:
    """The styles the version lists (`~styles`)."""
    return orjson.loads(store.get(version, STYLES) or b"[]")


def item_requests(store: ServingStore, version: str, folder: Path) -> list[Requests]:
    """Requests of the item routes over random styles of `version` that have a group (`y:`), each route's
    in a file of `folder`; none when the version holds no item-to-item keys."""
    named = listed_styles(store, version)
    drawn = random.sample(named, min(len(named), SAMPLED_STYLES))
    styles = [style for style in drawn if store.get(version, STYLE_GROUP + style.encode()) is not None]
    if len(styles) < CART_SIZE:
        return []
    lines = {
        "similar": [f"/v1/styles/{style}/similar" for style in styles],
        "bought-together": [f"/v1/styles/{style}/bought-together" for style in styles],
        "basket": [
            orjson.dumps({"style_ids": random.sample(styles, CART_SIZE)}).decode() for _ in range(SAMPLED_STYLES)
        ],
    }
    for route, requests in lines.items():
        (folder / f"{route}.txt").write_text("".join(f"{line}\n" for line in requests))
    return [
        Requests(route, folder / f"{route}.txt", "/v1/baskets/recommendations" if route == "basket" else "")
        for route in lines
    ]


# --- sessions: events posted while members are asked -----------------------------------------------
EVENT_RATE = 200
"""Events per second posted while the pool's members are asked, one event a POST."""
SESSION_POOL = 2_000
"""Members of the day asked (and posted events for) during the run with events."""
FRESH_MEMBERS = 200
"""Members outside the pool posted one event each to time its way into their answer, per API process asked."""
CHANGE_WAIT = 1.0
"""Seconds an answer is asked again for before the event counts as never shown."""
EVENT_KINDS = {"product_view": 0.8, "add_to_cart": 0.15, "purchase": 0.05}
WARM_BATCH = 100


class Client:
    """One keep-alive connection to the API, calls one at a time."""

    def __init__(self, url: str):
        parts = urllib.parse.urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)

    def call(self, path: str, body: dict | None = None) -> dict:
        """The JSON answer to a GET of `path`, or to a POST of `body` to it; an error unless it is a 200."""
        headers = {"Authorization": f"Bearer {TOKEN}"} | ({"Content-Type": "application/json"} if body else {})
        self.connection.request("GET" if body is None else "POST", path, body and orjson.dumps(body), headers)
        answer = self.connection.getresponse()
        content = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"{path}: {answer.status} {content[:300]!r}")
        return orjson.loads(content)

    def post_events(self, events: list[dict]) -> None:
        answer = self.call("/v1/events", {"events": events})
        if answer["accepted"] != len(events):
            raise RuntimeError(f"events rejected: {[e for e in answer['events'] if e['status'] != 'accepted'][:5]}")

    def close(self) -> None:
        self.connection.close()


@dataclass
class Shoppers:
    """Valid events of the served `day` for members: unique ids, times counted from the start of the served day
    as the benchmark runs, a session per member, styles the version lists."""

    day: date
    styles: list[int]
    started: float = field(default_factory=time.monotonic)
    made: int = 0

    def event(self, member: str) -> dict:
        self.made += 1
        at = datetime.combine(self.day, datetime.min.time()) + timedelta(seconds=time.monotonic() - self.started)
        return {
            "event_id": f"bench-{self.made}",
            "event_time": at.isoformat(timespec="milliseconds") + "Z",
            "member_id": int(member),
            "event_type": random.choices(list(EVENT_KINDS), list(EVENT_KINDS.values()))[0],
            "style_id": random.choice(self.styles),
            "session_id": f"bench-{member}",
            "price": 10.0,
        }


@dataclass
class WithEvents:
    """GETs of the pool's members (`gets`) while their events are posted (`posts`)."""

    gets: Measured
    posts: Measured
    COLUMNS = ["re-ranked", "POSTs/s", "POST p50 ms", "POST p99 ms", "POST errors", "accepted", "rejected"]

    def row(self) -> str:
        g, p = self.gets.figures, self.posts.figures
        ok = g["requests"] - g["non200"]
        cells = [f"{g['reranked'] / ok:.1%}" if ok else "-", f"{self.posts.achieved:,.0f}"]
        cells += [f"{p['p50']:.1f}", f"{p['p99']:.1f}", f"{self.posts.errors:,}", f"{p['accepted']:,}"]
        return f"{self.gets.row()} " + " | ".join([*cells, f"{p['rejected']:,}"]) + " |"


@dataclass
class Delays:
    """From posting a member's event to the first answer of the member's recommendations that counts it: the
    milliseconds and the GETs it took, for each member whose answer changed within CHANGE_WAIT."""

    store: str
    via: str
    seen: list[tuple[float, int]]
    never: int
    COLUMNS = ["store", "GET from", "members", "p50 ms", "p99 ms", "max ms", "on the first GET", "never within 1 s"]

    def row(self) -> str:
        ms = np.array([delay for delay, _ in self.seen] or [np.nan])
        cells = [self.store, self.via, f"{len(self.seen) + self.never:,}"]
        cells += [f"{np.percentile(ms, q):.1f}" for q in (50, 99)] + [f"{ms.max():.1f}"]
        cells += [f"{sum(gets == 1 for _, gets in self.seen):,}", f"{self.never:,}"]
        return "| " + " | ".join(cells) + " |"


def session_events(answer: dict) -> int:
    return answer.get("session", {}).get("events", 0)


def event_to_answer(store: str, via: str, post_url: str, get_url: str, members: list[str], shoppers: Shoppers):
    """For each member in turn: its answer from `get_url`, one event posted to `post_url`, then its answer
    asked again at once, until it counts one event more (the delay runs from the POST's sending)."""
    seen, never = [], 0
    with closing(Client(post_url)) as poster, closing(Client(get_url)) as getter:
        for member in members:
            before = session_events(getter.call(member_path(member)))
            started, gets = time.perf_counter(), 0
            poster.post_events([shoppers.event(member)])
            while time.perf_counter() - started < CHANGE_WAIT:
                gets += 1
                if session_events(getter.call(member_path(member))) > before:
                    seen.append(((time.perf_counter() - started) * 1000, gets))
                    break
            else:
                never += 1
    delays = Delays(store, via, seen, never)
    print(f"{store} event to changed answer, GET from {via}: {delays.row()}", flush=True)
    return delays


def with_sessions(
    driver: Driver, target: Target, store: ServingStore, version: str, ids: list[str], rate: int, seconds: int
) -> list:
    """The runs with events (module docstring): a pool of members warmed with 2 or 3 events each (posted in
    batches), then asked at `rate` while EVENT_RATE events a second are posted for them; then the delay from
    an event to a changed answer, asked of the API that took the event and of a second API process."""
    day = serving_day(store.current())
    if events_file(target.home / "landing", day).exists():
        raise RuntimeError(f"the site file of {day} is in {target.home}: every event would be day_closed")
    drawn = random.sample(ids, min(len(ids), SESSION_POOL + 2 * FRESH_MEMBERS))
    pool, fresh = drawn[: -2 * FRESH_MEMBERS], drawn[-2 * FRESH_MEMBERS :]
    shoppers = Shoppers(day, [int(style) for style in listed_styles(store, version)])
    warm = [shoppers.event(member) for member in pool for _ in range(random.choice((2, 3)))]
    with closing(Client(driver.url)) as client:
        for at in range(0, len(warm), WARM_BATCH):
            client.post_events(warm[at : at + WARM_BATCH])
    posts = target.home / "events.txt"
    bodies = (orjson.dumps({"events": [shoppers.event(random.choice(pool))]}) for _ in range(2 * EVENT_RATE * seconds))
    posts.write_bytes(b"".join(body + b"\n" for body in bodies))
    gets = member_requests(pool, target.home / "pool.txt", "members, re-ranked")
    runs = [driver.with_events(rate, seconds, gets, Requests("events", posts, "/v1/events", sequential=True))]
    runs.append(event_to_answer(driver.store, "the same process", driver.url, driver.url, fresh[::2], shoppers))
    with api(target, "bench-2") as second:
        runs.append(event_to_answer(driver.store, "a second process", driver.url, second, fresh[1::2], shoppers))
    return runs


def generator_for(choice: str):
    if choice == "wrk" or (choice == "auto" and shutil.which("wrk")):
        return "wrk", WrkRun
    return "aiohttp open-loop client", ClientRun


def benchmark_store(kind: str, day: Day, args, generator, ids: list[str], members: Requests, median: int):
    with ExitStack() as stack:
        target = open_target(kind, stack)
        store = target.store(day.settings.serving.previous_versions)
        first, loaded = day.load_and_switch(store, kind)
        print(loaded, flush=True)
        loads, runs, sessions = [loaded], [], []
        items = item_requests(store, first, target.home)
        if not items:
            print(f"{kind}: item routes not measured: the version holds no item-to-item keys (`y:`)", flush=True)
        with api(target) as url:
            driver = Driver(generator, kind, url, members)
            runs += [driver.fixed_rate(rate, args.seconds) for rate in args.rates]
            runs += [driver.item_route(requests, rate, args.seconds) for requests in items for rate in args.rates]
            runs.append(driver.with_withdrawals(max(args.rates), args.seconds, store, day, first))
            time.sleep(1.5)
            runs.append(driver.across_switches(max(args.rates), store, day, first))
            sessions = with_sessions(driver, target, store, first, ids, max(args.rates), args.seconds)
        if args.synthetic:
            synthetic = load_synthetic(day.frame.sparkSession, target, store, args.synthetic, median)
            if synthetic:
                print(synthetic, flush=True)
                loads.append(synthetic)
    return loads, runs, sessions


def header(columns: list[str]) -> str:
    return "| " + " | ".join(columns) + " |\n" + "|---" * len(columns) + "|"


def report(sizes: dict, loads: list[Loaded], runs: list[Measured], sessions: list, generator: str, seconds: int):
    print(
        f"\n## Serving ({os.cpu_count()} cores; generator: {generator}; {seconds} s per rate)\n\n"
        f"Payloads: {sizes['payloads']:,}; bytes median {sizes['median']:,}, p95 {sizes['p95']:,}, "
        f"max {sizes['max']:,}; styles in a member's longest products `full` list: median "
        f"{sizes['median_styles']}, max {sizes['max_styles']}.\n"
    )
    columns = ["store", "rate/s", "requests", "achieved/s", "p50 ms", "p95 ms", "p99 ms", "max ms"]
    columns += ["errors", "mismatches", "bytes"]
    print(header(columns))
    for run in runs:
        if run.route == "members":
            print(run.row())
    items = [run for run in runs if run.route != "members"]
    if items:
        columns.insert(1, "route")
        print(f"\nItem routes:\n\n{header(columns)}")
        for run in items:
            print(run.row(with_route=True))
        columns.pop(1)
    if sessions:
        print(f"\nMembers re-ranked by their sessions while {EVENT_RATE} events/s are posted (one a POST):\n")
        print(header(columns + WithEvents.COLUMNS))
        for run in sessions:
            if isinstance(run, WithEvents):
                print(run.row())
        print(f"\nFrom an event posted to the first answer counting it:\n\n{header(Delays.COLUMNS)}")
        for run in sessions:
            if isinstance(run, Delays):
                print(run.row())
    print("\n| store | load | pairs | seconds | payloads/s | count + switch s |\n|---|---|---|---|---|---|")
    for loaded in loads:
        switch = f"{loaded.switch_seconds:.2f}" if loaded.switch_seconds is not None else ""
        print(
            f"| {loaded.store} | {loaded.what} | {loaded.pairs:,} | {loaded.seconds:.1f} | "
            f"{loaded.pairs / loaded.seconds:,.0f} | {switch} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=Path("/tmp/reco-v5"), help="a home with published cards")
    parser.add_argument("--date", type=date.fromisoformat, default=date(2026, 10, 31))
    parser.add_argument("--stores", nargs="+", choices=["lmdb", "redis"], default=["lmdb", "redis"])
    parser.add_argument("--rates", nargs="+", type=int, default=[100, 1000], help="requests per second")
    parser.add_argument("--seconds", type=int, default=20, help="seconds per rate")
    parser.add_argument("--synthetic", type=int, metavar="N", help="also load N synthetic payloads per store")
    parser.add_argument("--generator", choices=["auto", "wrk", "aiohttp"], default="auto")
    args = parser.parse_args()

    resources = local_resources(args.home.resolve())
    settings = resources["settings"]
    cards = published.cards(resources["lakehouse"], args.date)
    frame = cards.spark(resources["spark"].session()).cache()
    day = Day(cards, frame, settings)
    sizes = payload_sizes(day)
    print(f"{args.date}: {sizes['payloads']:,} payloads of {cards.source}; bytes median {sizes['median']:,}")
    generator_name, generator = generator_for(args.generator)
    print(f"load generator: {generator_name}")
    print(subprocess.run(["df", "-h", tempfile.gettempdir()], capture_output=True, text=True).stdout)
    loads, runs, sessions = [], [], []
    with tempfile.TemporaryDirectory(prefix="reco-serving-bench-") as folder:
        ids = member_ids(frame)
        members = member_requests(ids, Path(folder) / "members.txt")
        if args.synthetic:
            loads.append(spark_share(frame.sparkSession, args.synthetic, sizes["median"]))
            print(loads[-1], flush=True)
        for kind in args.stores:
            store_loads, store_runs, store_sessions = benchmark_store(
                kind, day, args, generator, ids, members, sizes["median"]
            )
            loads += store_loads
            runs += store_runs
            sessions += store_sessions
    report(sizes, loads, runs, sessions, generator_name, args.seconds)


if __name__ == "__main__":
    main()
