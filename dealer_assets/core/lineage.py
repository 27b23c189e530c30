"""Where the areas meet: asset keys one area publishes and others depend on (areas never import each other).

The DMS area publishes each source's reconciled `service_requests` (CONTRACT section 5) under
`dms/<source>/service_requests`; Protractor links work orders to them and Xtime books appointments from them,
reading the warehouse view `service_requests` with the columns of `core.service_requests`.
"""

from __future__ import annotations

import dagster as dg

DMS_PREFIX = "dms"


def dms_key(source: str, name: str) -> dg.AssetKey:
    return dg.AssetKey([DMS_PREFIX, source, name])


def service_requests_key(source: str) -> dg.AssetKey:
    return dms_key(source, "service_requests")
