"""Resources, built per environment from one home folder (or URIs given by environment variables)."""

import os
from pathlib import Path

from dagster import EnvVar

from reco_assets.resources.lakehouse import Lakehouse
from reco_assets.resources.landing import LandingResource
from reco_assets.resources.serving import ServingResource
from reco_assets.resources.spark import SparkResource
from reco_assets.resources.tracking import MlflowTracking
from reco_assets.settings import RecoSettings, load_settings

HOME_ENV = "RECO_HOME"
DEFAULT_HOME = ".reco_home"


def reco_home(home: str | os.PathLike | None = None) -> Path:
    """The data home: `home` if given, else $RECO_HOME, else ./.reco_home."""
    return Path(home or os.environ.get(HOME_ENV) or DEFAULT_HOME).resolve()


def local_resources(home: Path, settings: RecoSettings | None = None) -> dict:
    """The settings in force for `home` (its settings file, unless `settings` are given); Spark in local mode, the
    lakehouse and MLflow under `home`; RECO_LAKEHOUSE_URI, RECO_SPARK_MASTER and MLFLOW_TRACKING_URI point them
    elsewhere (object storage, a cluster, a tracking server). RECO_SERVING_STORE (`lmdb` or `redis`),
    RECO_REDIS_URL, RECO_REDIS_PREFIX, RECO_REDIS_REFRESH_SECONDS and RECO_EXPORTS_ROOT choose where the served
    payloads and exports go; RECO_API_TOKENS holds the API's tokens.

    RECO_SPARK_MASTER, RECO_SPARK_REMOTE, RECO_REDIS_URL and RECO_API_TOKENS are passed as `EnvVar`s, resolved when
    a run starts (outside a run: `process_config_and_initialize()`), so the UI and the run config show their names,
    not their values. Only those set are passed: a run fails on an `EnvVar` whose variable is missing, and no run
    needs the tokens."""
    secrets = {
        field: EnvVar(variable)
        for field, variable in (("redis_url", "RECO_REDIS_URL"), ("api_tokens", "RECO_API_TOKENS"))
        if variable in os.environ
    }
    return {
        "spark": SparkResource(
            checkpoint_dir=str(home / "spark-checkpoints"),
            # EnvVars, as the secrets: the UI shows the variables' names; only those set (else local mode)
            **{
                field: EnvVar(variable)
                for field, variable in (("master", "RECO_SPARK_MASTER"), ("remote", "RECO_SPARK_REMOTE"))
                if os.environ.get(variable)
            },
        ),
        "lakehouse": Lakehouse(root=os.environ.get("RECO_LAKEHOUSE_URI", str(home / "lakehouse"))),
        "tracking": MlflowTracking(
            tracking_uri=os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}"),
            artifact_root=str(home / "mlflow-artifacts"),
        ),
        "settings": settings or load_settings(home),
        "landing": LandingResource(root=str(home / "landing")),
        "serving": ServingResource(
            store=os.environ.get("RECO_SERVING_STORE", "lmdb"),
            lmdb_root=str(home / "serving"),
            redis_prefix=os.environ.get("RECO_REDIS_PREFIX", "reco"),
            redis_refresh_seconds=float(os.environ.get("RECO_REDIS_REFRESH_SECONDS", "1.0")),
            exports_root=os.environ.get("RECO_EXPORTS_ROOT", str(home / "exports")),
            **secrets,
        ),
    }
