"""Pure polars logic of the Xtime area: no Dagster, no network, no warehouse, no wall clock."""
