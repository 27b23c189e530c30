"""dealer_assets: dealer-system integrations as Dagster software-defined assets."""
