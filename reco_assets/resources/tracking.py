"""MLflow tracking: one MLflow run per materialization of a model stage, in a SQLite store under the home;
cohort models registered in the model registry."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field


class MlflowTracking(ConfigurableResource):
    """Opens one MLflow run per call of `run`; no global state is shared between steps."""

    tracking_uri: str = Field(description="e.g. sqlite:////data/reco/mlflow.db or http://mlflow:5000")
    artifact_root: str = Field(description="Where new experiments keep their artifacts.")
    experiment: str = "reco_assets"

    @contextmanager
    def run(self, run_name: str, tags: dict[str, str]) -> Iterator["mlflow.ActiveRun"]:  # noqa: F821
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        import mlflow  # imported here: it is slow to import and only the model stages need it

        mlflow.set_tracking_uri(self.tracking_uri)
        experiment = mlflow.get_experiment_by_name(self.experiment)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else mlflow.create_experiment(self.experiment, artifact_location=self.artifact_root)
        )
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags) as active:
            yield active


MODEL_CODE = Path(__file__).resolve().parent.parent / "models" / "cohort_factors.py"


def register_cohort_model(factors_folder: str, cohort: str, day: str) -> str:
    """Log a cohort's factor files (Parquet: `side`, `id`, `factors`) as a pyfunc model in the active run and
    register a version of `reco_factors_<cohort>` tagged with the day; returns the version."""
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    # the signature declares `k`: MLflow drops predict() params a model does not declare
    signature = infer_signature(
        pd.DataFrame({"member_id": [1]}),
        pd.DataFrame({"member_id": [1], "subclass_brand_id": [1], "prediction": [0.0], "rank": [1]}),
        params={"k": 10},
    )
    info = mlflow.pyfunc.log_model(
        name=f"factors_{cohort}",
        python_model=str(MODEL_CODE),
        artifacts={"factors": factors_folder},
        pip_requirements=["mlflow", "numpy", "pandas", "pyarrow"],
        signature=signature,
        registered_model_name=f"reco_factors_{cohort}",
    )
    version = str(info.registered_model_version)
    mlflow.MlflowClient().set_model_version_tag(f"reco_factors_{cohort}", version, "as_of_date", day)
    return version


PUBLISHED_ALIAS = "published"


def mark_published(cohorts: list[str], day: str, tags: dict[str, dict[str, str]] | None = None) -> dict[str, str]:
    """Point the `published` alias of each cohort's registered model at its newest version of the day
    (called once the day's cards are published) and tag that version with `tags[cohort]` (the champion's
    method and margin); the alias `published_<method>` names the method its cards were ranked by, and the
    aliases of other methods are removed. Returns cohort -> version. Cohorts without a model of the day (no
    member) are left out."""
    import mlflow

    client = mlflow.MlflowClient()
    published = {}
    for cohort in cohorts:
        name = f"reco_factors_{cohort}"
        versions = client.search_model_versions(f"name = '{name}' and tags.as_of_date = '{day}'")
        if versions:
            newest = max(versions, key=lambda v: int(v.version))
            client.set_registered_model_alias(name, PUBLISHED_ALIAS, newest.version)
            cohort_tags = (tags or {}).get(cohort, {})
            for key, value in cohort_tags.items():
                client.set_model_version_tag(name, newest.version, key, value)
            by_method = f"{PUBLISHED_ALIAS}_{cohort_tags['published_method']}" if cohort_tags else None
            for alias in client.get_registered_model(name).aliases:
                if alias.startswith(f"{PUBLISHED_ALIAS}_") and alias != by_method:
                    client.delete_registered_model_alias(name, alias)
            if by_method:
                client.set_registered_model_alias(name, by_method, newest.version)
            published[cohort] = newest.version
    return published


def log_rules(rules: "pd.DataFrame", params: dict, top: int = 50) -> None:  # noqa: F821
    """Log a day's co-purchase rules into the active run: the settings as parameters, the counts as metrics,
    the `top` rules by lift x confidence as a table and every rule's support against its confidence (coloured
    by lift) as a plot."""
    import tempfile

    import matplotlib
    import mlflow

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = rules["antecedent"].map(len)
    mlflow.log_params(params)
    mlflow.log_metrics(
        {
            "rules": float(len(rules)),
            "antecedents": float(rules["antecedent"].map(tuple).nunique()),
            "rules.one_group_antecedent": float((sizes == 1).sum()),
            "rules.two_group_antecedent": float((sizes == 2).sum()),
        }
    )
    if rules.empty:
        return
    best = rules.assign(score=rules["lift"] * rules["confidence"]).sort_values(
        ["score", "baskets"], ascending=False, kind="stable"
    )
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "co_purchase_rules_top.csv"
        best.head(top).to_csv(table, index=False)
        mlflow.log_artifact(str(table))
        figure, axis = plt.subplots(figsize=(8, 6))
        points = axis.scatter(rules["support"], rules["confidence"], c=rules["lift"], cmap="viridis", s=12)
        axis.set(xscale="log", xlabel="support", ylabel="confidence", title="co-purchase rules")
        figure.colorbar(points, label="lift")
        figure.tight_layout()
        figure.savefig(Path(tmp) / "co_purchase_rules.png", dpi=100)
        plt.close(figure)
        mlflow.log_artifact(str(Path(tmp) / "co_purchase_rules.png"))
