"""Pure domain logic: polars in, polars out. No Dagster, no wall clock, no I/O beyond the bytes handed in."""
