"""Fitting the blend: a logistic regression of "the member bought or carted the group next" on the pass's
features (`pipeline/methods.FEATURES`), fitted on the training rows of backtests (`sample_pairs`).

A logistic score is monotone in its linear part, so the blend ranks by the fitted weights' weighted sum of
the features and needs no intercept. Features are standardised for the fit (one regularisation for all) and
the weights turned back to the raw features' scale.
"""

import pandas as pd

from reco_assets.pipeline.methods import FEATURES, Method

MIN_POSITIVES = 20
"""Fewer relevant pairs than this fit nothing (the blend is then not ranked)."""


def fit_blend(samples: list[pd.DataFrame], seed: int = 7) -> Method | None:
    """The blend fitted on the training rows of earlier backtests; None without enough of them."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rows = [s for s in samples if s is not None and not s.empty]
    if not rows:
        return None
    # in a fixed order: the rows come from Spark tasks in any order, and the fit's sums must not depend on it
    pairs = ["member_id", "subclass_brand_id"]
    data = pd.concat([s.sort_values(pairs, kind="stable") for s in rows], ignore_index=True)
    labels = data["label"].astype(bool)
    if labels.sum() < MIN_POSITIVES or labels.all():
        return None
    features = data[list(FEATURES)].to_numpy(dtype=float)
    scaler = StandardScaler().fit(features)
    model = LogisticRegression(C=1.0, max_iter=500, random_state=seed).fit(scaler.transform(features), labels)
    scale = [s if s > 0 else 1.0 for s in scaler.scale_]
    return Method.blend({name: float(w) / s for name, w, s in zip(FEATURES, model.coef_[0], scale, strict=True)})
