"""Resources, built per environment from one home folder (or URIs given by environment variables)."""

import os
from pathlib import Path

from reco_assets.resources.lakehouse import Lakehouse
from reco_assets.resources.landing import LandingResource
from reco_assets.resources.spark import SparkResource
from reco_assets.resources.tracking import MlflowTracking
from reco_assets.settings import RecoSettings

HOME_ENV = "RECO_HOME"
DEFAULT_HOME = ".reco_home"


def reco_home(home: str | os.PathLike | None = None) -> Path:
    """The data home: `home` if given, else $RECO_HOME, else ./.reco_home."""
    return Path(home or os.environ.get(HOME_ENV) or DEFAULT_HOME).resolve()


def local_resources(home: Path, settings: RecoSettings | None = None) -> dict:
    """Spark in local mode, the lakehouse and MLflow under `home`; RECO_LAKEHOUSE_URI, RECO_SPARK_MASTER and
    MLFLOW_TRACKING_URI point them elsewhere (object storage, a cluster, a tracking server)."""
    return {
        "spark": SparkResource(
            spark_config={
                key: value
                for key, value in (
                    ("spark.master", os.environ.get("RECO_SPARK_MASTER")),
                    ("spark.remote", os.environ.get("RECO_SPARK_REMOTE")),
                )
                if value
            },
            checkpoint_dir=str(home / "spark-checkpoints"),
        ),
        "lakehouse": Lakehouse(root=os.environ.get("RECO_LAKEHOUSE_URI", str(home / "lakehouse"))),
        "tracking": MlflowTracking(
            tracking_uri=os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}"),
            artifact_root=str(home / "mlflow-artifacts"),
        ),
        "settings": settings or RecoSettings(),
        "landing": LandingResource(root=str(home / "landing")),
    }
