import json

from dagster import EnvVar
from dagster_pyspark import LazyPySparkResource

from reco_assets.resources import local_resources
from reco_assets.resources.spark import DEFAULT_CONFIG, SparkResource

SECRET_MASTER = "spark://secret-host:7077"


def shown(resource: SparkResource) -> dict:
    """The resource's configured values as the UI shows them (the default of its config schema)."""
    return resource.get_resource_definition().config_schema.default_value


def test_the_given_settings_win_over_the_defaults_and_master_over_both():
    resource = SparkResource(checkpoint_dir="c", spark_config={"spark.driver.memory": "1g", "spark.x": "y"})
    assert resource.spark_config == {**DEFAULT_CONFIG, "spark.driver.memory": "1g", "spark.x": "y"}
    assert SparkResource(checkpoint_dir="c", master="yarn").spark_config["spark.master"] == "yarn"
    given = SparkResource(checkpoint_dir="c", spark_config={"spark.master": "local[1]"}, master="yarn")
    assert given.spark_config["spark.master"] == "yarn"


def test_spark_connect_drops_the_master():
    for resource in (
        SparkResource(checkpoint_dir="c", remote="sc://host:15002"),
        SparkResource(checkpoint_dir="c", spark_config={"spark.master": "yarn", "spark.remote": "sc://host:15002"}),
    ):
        assert resource.spark_config["spark.remote"] == "sc://host:15002"
        assert "spark.master" not in resource.spark_config


def test_the_master_from_the_environment_is_shown_by_name_and_resolved_for_a_run(monkeypatch, tmp_path):
    monkeypatch.delenv("RECO_SPARK_REMOTE", raising=False)
    monkeypatch.delenv("RECO_SPARK_MASTER", raising=False)
    assert local_resources(tmp_path)["spark"].spark_config["spark.master"] == "local[*]"

    monkeypatch.setenv("RECO_SPARK_MASTER", SECRET_MASTER)
    resource = local_resources(tmp_path)["spark"]
    assert isinstance(resource.master, EnvVar)
    assert shown(resource)["master"] == {"env": "RECO_SPARK_MASTER"}
    assert "secret-host" not in json.dumps(shown(resource))
    # what a run gets: Dagster resolves the variable when it initializes the resource (no session starts)
    assert resource.process_config_and_initialize().spark_config["spark.master"] == SECRET_MASTER


def test_no_private_method_of_dagster_pyspark_is_overridden():
    private = {n for n in vars(LazyPySparkResource) if n.startswith("_") and not n.startswith("__")}
    assert "_init_session" in private  # what the resource used to override
    assert private & set(vars(SparkResource)) <= {"_abc_impl"}


def test_a_second_resource_reuses_the_session_of_the_process(spark, monkeypatch, tmp_path):
    """Outside a run too (an `EnvVar` master resolved by `session()`): no second JVM, and the checkpoint folder
    stays the one set when the session started."""
    started_in = spark.sparkContext.getCheckpointDir()
    assert started_in is not None
    partitions = spark.conf.get("spark.sql.shuffle.partitions")
    monkeypatch.delenv("RECO_SPARK_REMOTE", raising=False)
    monkeypatch.setenv("RECO_SPARK_MASTER", spark.sparkContext.master)
    try:
        session = local_resources(tmp_path)["spark"].session()
        assert session.sparkContext is spark.sparkContext
        assert spark.sparkContext.getCheckpointDir() == started_in
    finally:  # the reused session took the resource's runtime settings: give the other tests theirs back
        spark.conf.set("spark.sql.shuffle.partitions", partitions)
