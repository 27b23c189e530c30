"""Pure polars logic for Protractor work orders: no Dagster, no network, no wall clock."""
