"""The Dagster UI's GraphQL API, queried as a real client, shows every asset and its upstream edges."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from reco_assets_tests.test_definitions import CONTRACT, SERVING

ROOT = Path(__file__).resolve().parent.parent
QUERY = "{ assetNodes { assetKey { path } dependencyKeys { path } isPartitioned } }"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ui_lists_every_asset_and_its_lineage(tmp_path):
    port = _free_port()
    env = {**os.environ, "RECO_HOME": str(tmp_path), "DAGSTER_HOME": str(tmp_path)}
    webserver = Path(sys.executable).parent / "dagster-webserver"
    server = subprocess.Popen(
        [str(webserver), "-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        nodes = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                reply = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": QUERY}, timeout=10)
                nodes = reply.json()["data"]["assetNodes"]
                if nodes:
                    break
            except (requests.RequestException, KeyError, TypeError, ValueError):
                pass
            time.sleep(1)
        assert nodes, "the webserver did not answer with asset nodes within 120 s"
        edges = {"/".join(n["assetKey"]["path"]): {"/".join(d["path"]) for d in n["dependencyKeys"]} for n in nodes}
        assert set(edges) == CONTRACT | SERVING
        assert edges["served_feeds"] >= {"member_cards", "release_cards"}
        assert all(n["isPartitioned"] for n in nodes)
        assert edges["member_cards"] == {
            "diversified_affinities",
            "style_listings",
            "catalog",
            "offline_evaluation",
            "ranking_champions",
        }
        assert edges["als_factors"] == {"implicit_ratings", "member_cohorts"}
        assert edges["boosted_affinities"] == {"member_affinities", "catalog", "raw_events"}
    finally:
        server.terminate()
        server.wait(timeout=30)
