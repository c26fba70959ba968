from datetime import date, datetime, timezone

import pytest

from reco_assets.resources.spark import SparkResource

DAY = date(2026, 10, 31)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


TINY_HOLDOUT = TINY_ORIGIN_DAYS = 3
"""The tiny world's backtest: three-day holdout and origins, so that its 14 days hold several origins."""


@pytest.fixture(scope="session")
def home(tmp_path_factory):
    """The tiny world materialized through the command line (`demo --profile tiny`), once for the whole run:
    the end-to-end tests read it (those of `test_pipeline` also change it, day by day as a user would)."""
    from reco_assets.cli import main

    home = tmp_path_factory.mktemp("home")
    with pytest.raises(SystemExit) as exit_code:
        main(
            ["demo", "--profile", "tiny", "--home", str(home)]
            + [
                "--set",
                f"evaluation.holdout_days={TINY_HOLDOUT}",
                "--set",
                f"evaluation.origin_days={TINY_ORIGIN_DAYS}",
            ]
        )
    assert exit_code.value.code == 0  # 0 = every asset check passed
    return home


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """One local Spark session for the whole test run (the same resource the assets use)."""
    return SparkResource(
        checkpoint_dir=str(tmp_path_factory.mktemp("checkpoints")), spark_config={"spark.sql.shuffle.partitions": "2"}
    ).session()


def rows(frame, *columns, order=None):
    """A Spark DataFrame's rows as tuples of `columns`, sorted."""
    return (
        sorted(tuple(r[c] for c in columns) for r in frame.select(*columns).collect())
        if order is None
        else [tuple(r[c] for c in columns) for r in frame.orderBy(*order).select(*columns).collect()]
    )


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis():
    """A real redis-server on a free loopback port, without persistence: (process, url). Skips the test,
    saying why, where Debian's `redis-server` is not installed (`.ci/run` installs it when run as root)."""
    import shutil
    import subprocess
    import time

    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed: `apt-get install redis-server` (Debian) to run the Redis tests")
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return server, url


@pytest.fixture(scope="session")
def redis_url():
    """A real redis-server on a loopback port for the session."""
    server, url = start_redis()
    yield url
    server.terminate()
    server.wait(10)
