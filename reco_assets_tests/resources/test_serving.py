"""The serving resource's secrets, the Redis URL and the API tokens: Dagster gets them as `EnvVar`s, so the
code location's snapshot (what the UI and the run config show) names the variables and never holds their
values; they are read when a run starts, or by `process_config_and_initialize` (the CLI)."""

from dagster import Definitions, serialize_value
from dagster._core.remote_representation.external_data import RepositorySnap

from reco_assets.resources import local_resources

URL = "redis://:s3cret-password@redis.internal:6380/2"


def test_the_redis_url_and_the_api_tokens_are_env_vars_never_values_in_the_ui(tmp_path, monkeypatch):
    monkeypatch.setenv("RECO_REDIS_URL", URL)
    monkeypatch.setenv("RECO_API_TOKENS", "token-a, token-b")
    resources = local_resources(tmp_path)
    definitions = Definitions(resources={"serving": resources["serving"]})
    snapshot = RepositorySnap.from_def(definitions.get_repository_def())  # what the UI reads of the code location
    shown = serialize_value(snapshot)
    assert "s3cret-password" not in shown and "token-a" not in shown
    (serving,) = [r for r in snapshot.resources if r.name == "serving"]
    shown_as = {name: getattr(value, "name", None) for name, value in serving.configured_values.items()}
    assert (shown_as["redis_url"], shown_as["api_tokens"]) == ("RECO_REDIS_URL", "RECO_API_TOKENS")
    resolved = resources["serving"].process_config_and_initialize()
    assert resolved.redis_url == URL and resolved.tokens() == ["token-a", "token-b"]


def test_without_the_variables_the_defaults_apply(tmp_path, monkeypatch):
    monkeypatch.delenv("RECO_REDIS_URL", raising=False)
    monkeypatch.delenv("RECO_API_TOKENS", raising=False)
    resolved = local_resources(tmp_path)["serving"].process_config_and_initialize()
    assert resolved.redis_url == "redis://127.0.0.1:6379/0" and resolved.tokens() == []
