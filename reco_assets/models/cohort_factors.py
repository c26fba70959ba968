"""A cohort's factor model (of any engine) as an MLflow pyfunc: member and group factors keyed by lakehouse ids.

Logged as code (MLflow "models from code"): loading runs this file. `predict` takes a frame with a
`member_id` column and returns each member's top `k` subclass-brands by predicted affinity.
"""

import mlflow
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from mlflow.pyfunc import PythonModel


class CohortFactors(PythonModel):
    def load_context(self, context) -> None:
        # a folder of the Parquet files the pipeline wrote for the cohort (older versions: one file)
        factors = pq.read_table(context.artifacts["factors"], columns=["side", "id", "factors"]).to_pandas()
        members = factors[factors["side"] == "member"]
        items = factors[factors["side"] == "item"]
        self.member_index = pd.Series(np.arange(len(members)), index=members["id"].to_numpy())
        self.member_matrix = np.stack(members["factors"].to_numpy()) if len(members) else np.empty((0, 0))
        self.item_ids = items["id"].to_numpy()
        self.item_matrix = np.stack(items["factors"].to_numpy()) if len(items) else np.empty((0, 0))

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        k = int((params or {}).get("k", 10))
        rows = []
        for member in model_input["member_id"]:
            if member not in self.member_index.index:
                continue  # not in this cohort on the model's day
            scores = self.item_matrix @ self.member_matrix[self.member_index[member]]
            best = np.argsort(-scores, kind="stable")[:k]
            rows += [(member, int(self.item_ids[i]), float(scores[i]), rank) for rank, i in enumerate(best, 1)]
        return pd.DataFrame(rows, columns=["member_id", "subclass_brand_id", "prediction", "rank"])


mlflow.models.set_model(CohortFactors())
