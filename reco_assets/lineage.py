"""The lineage's windows: how many days of an upstream table each asset reads, from the settings in force.

The assets declare their dependencies by name; `with_windows` gives the windowed ones their partition
mapping when the definitions are built, from the same settings the runs read (`RecoSettings` windows), so
that `--set ratings.lookback_days=90` draws a 90-day window in the UI as the run reads one.
"""

from collections.abc import Iterable

from dagster import AssetDep, AssetsDefinition, AssetSpec, TimeWindowPartitionMapping

from reco_assets.settings import RecoSettings


def windows(settings: RecoSettings) -> dict[str, dict[str, int]]:
    """Asset -> upstream table -> days of it read, ending with the asset's own day."""
    evaluation = {"raw_events": settings.events_reach(), "catalog": settings.evaluation_reach() + 1}
    return {
        "implicit_ratings": {"raw_events": settings.ratings.lookback_days},
        "member_cohorts": {"raw_events": settings.ratings.lookback_days},
        "style_listings": {"raw_events": settings.listings.interaction_window_days},
        "group_neighbors": {"raw_events": settings.neighbors.window_days},
        "co_purchase_rules": {"raw_events": settings.rules.window_days},
        "offline_evaluation": evaluation,
        "ranking_champions": evaluation,
    }


def _windowed(spec: AssetSpec, reads: dict[str, int]) -> AssetSpec:
    deps = [
        AssetDep(
            dep.asset_key,
            partition_mapping=TimeWindowPartitionMapping(
                start_offset=-(reads[dep.asset_key.to_user_string()] - 1), allow_nonexistent_upstream_partitions=True
            ),
        )
        if dep.asset_key.to_user_string() in reads
        else dep
        for dep in spec.deps
    ]
    return spec.replace_attributes(deps=deps)


def with_windows(assets: Iterable[AssetsDefinition], settings: RecoSettings) -> list[AssetsDefinition]:
    """The assets with their look-back windows drawn from `settings`."""
    table = windows(settings)
    return [
        each.map_asset_specs(lambda spec: _windowed(spec, table.get(spec.key.to_user_string(), {})))
        if any(key.to_user_string() in table for key in each.keys)
        else each
        for each in assets
    ]
