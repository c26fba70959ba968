import mlflow
import pandas as pd

from reco_assets.resources.tracking import MlflowTracking, log_rules

RULES = pd.DataFrame(
    {
        "antecedent": [[1], [1], [2], [1, 2]],
        "consequent": [2, 3, 1, 3],
        "rank": [1, 2, 1, 1],
        "support": [0.3, 0.1, 0.3, 0.05],
        "confidence": [0.6, 0.2, 0.5, 0.9],
        "lift": [1.2, 2.0, 1.2, 3.0],
        "baskets": [30, 10, 30, 5],
    }
)


def test_a_days_rules_are_logged_with_their_counts_best_rules_and_plot(tmp_path):
    tracking = MlflowTracking(
        tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", artifact_root=str(tmp_path / "artifacts"), experiment="rules"
    )
    with tracking.run("co_purchase_rules 2026-10-31", {"as_of_date": "2026-10-31"}) as run:
        log_rules(RULES, {"rules.min_baskets": 5}, top=2)
    with tracking.run("co_purchase_rules 2026-11-01", {"as_of_date": "2026-11-01"}) as empty:
        log_rules(RULES.head(0), {"rules.min_baskets": 5})
    client = mlflow.MlflowClient()
    logged = client.get_run(run.info.run_id).data
    assert logged.params == {"rules.min_baskets": "5"}
    assert logged.metrics == {
        "rules": 4,
        "antecedents": 3,
        "rules.one_group_antecedent": 3,
        "rules.two_group_antecedent": 1,
    }
    files = sorted(a.path for a in client.list_artifacts(run.info.run_id))
    assert files == ["co_purchase_rules.png", "co_purchase_rules_top.csv"]
    best = pd.read_csv(client.download_artifacts(run.info.run_id, "co_purchase_rules_top.csv", str(tmp_path)))
    assert list(best.consequent) == [3, 2]  # lift x confidence: 2.7 ([1, 2] => 3), 0.72, then 0.6 and 0.4 cut
    assert client.get_run(empty.info.run_id).data.metrics["rules"] == 0
    assert client.list_artifacts(empty.info.run_id) == []
