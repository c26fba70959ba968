"""Offline evaluation: a temporal-holdout backtest of the pipeline, baselines, metrics and the quality gate."""
