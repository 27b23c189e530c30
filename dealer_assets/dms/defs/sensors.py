"""The drop-zone sensor: a run per source for newly delivered files, within one 30 s interval.

The cursor is the set of files already asked for, by name and checksum (from the data, never the clock).
A file is asked for once it has settled (`DEALER_SETTLE_SECONDS`); links and other entries that are not
regular files ask for the misdelivered job, which quarantines them without following them.
A file stays in it until a run takes it out of the drop zone, so it is never asked for twice; a file that
reappears later, or changes while it waits, is new again.
"""

import json
import logging
import os
from datetime import UTC, datetime

import dagster as dg

from dealer_assets.core.landing import Snapshot, sha256_of, writers_in
from dealer_assets.core.resources import DealerEnvironment, WarehouseResource
from dealer_assets.core.tags import MODE_TAG, PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from dealer_assets.dms.archive import FeedArchive
from dealer_assets.dms.domain.deliveries import DeliveryPlan, plan_deliveries
from dealer_assets.dms.domain.feed_names import Misdelivery
from dealer_assets.dms.ledger import applied_through
from dealer_assets.dms.settings import load_settings

from .jobs import MISDELIVERED_JOB, job_name

SENSOR_INTERVAL_SECONDS = 30


def run_requests(
    plan: DeliveryPlan, checksums: dict[str, str], applied_through: dict[str, datetime | None] | None = None
) -> list[dg.RunRequest]:
    """A run per source over the days of its new files, widened back to the day after its last applied
    feed so that days without a feed are shown as such instead of missing."""
    requests = []
    if plan.misdelivered:
        names = sorted(m.file_name for m in plan.misdelivered)
        key = "misdelivered:" + ",".join(f"{n}@{checksums.get(n, '')[:12]}" for n in names)
        requests.append(dg.RunRequest(job_name=MISDELIVERED_JOB, run_key=key[:500]))
    for source in sorted(plan.runs):
        run = plan.runs[source].since((applied_through or {}).get(source))
        requests.append(
            dg.RunRequest(
                job_name=job_name(source),
                run_key=run.run_key(checksums),
                tags={
                    PARTITION_RANGE_START_TAG: run.first_partition,
                    PARTITION_RANGE_END_TAG: run.last_partition,
                    MODE_TAG: "incremental",
                },
            )
        )
    return requests


def scan_drop_zone(
    store: FeedArchive, pending: dict[str, list], settle_seconds: float, log: logging.Logger
) -> tuple[dict[str, list], list[str]]:
    """Every settled file in the drop zone that no local process holds open for writing, with its size, mtime
    and sha256 (hashed again only when its size or mtime moved), and the names that are new or changed since
    the cursor's `pending`."""
    current: dict[str, list] = {}
    new: list[str] = []
    delivered = list(store.incoming())
    writers = writers_in(delivered[0].parent) if delivered else {}
    for path in delivered:
        if path.name in writers:
            continue
        try:
            stat = os.lstat(path)
            known = pending.get(path.name)
            if known and known[0] == stat.st_size and known[1] == stat.st_mtime_ns:
                current[path.name] = known
                continue
            if not Snapshot.of(stat).settled(settle_seconds):
                continue
            digest = sha256_of(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning(f"{path.name!r} left in the drop zone: {exc.strerror or exc}")
            continue
        current[path.name] = [stat.st_size, stat.st_mtime_ns, digest]
        if not known or known[2] != digest:
            new.append(path.name)
    for path in store.irregular():
        current[path.name] = [0, 0, "irregular"]
        if path.name not in pending:
            new.append(path.name)
    return current, new


def build_drop_zone_sensor(jobs: list) -> dg.SensorDefinition:
    @dg.sensor(
        name="dms_drop_zone_sensor",
        jobs=jobs,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Starts a run per source for files newly dropped into the DMS drop zone.",
    )
    def dms_drop_zone_sensor(
        context: dg.SensorEvaluationContext, dealer_env: DealerEnvironment, warehouse: WarehouseResource
    ):
        paths = dealer_env.paths()
        pending: dict[str, list] = json.loads(context.cursor or "{}").get("pending", {})
        store = FeedArchive(paths)
        current, new = scan_drop_zone(store, pending, paths.settle_seconds, context.log)
        cursor = json.dumps({"pending": current}, sort_keys=True)
        if not new:
            return dg.SensorResult(
                skip_reason=dg.SkipReason(
                    f"no new deliveries ({len(current)} file(s) waiting for runs already requested)"
                ),
                cursor=cursor,
            )
        settings = load_settings(dealer_env.settings_file)
        irregular = {p.name for p in store.irregular()}
        plan = plan_deliveries(
            [n for n in new if n not in irregular],
            set(settings.sources),
            paths.history_start,
            datetime.now(UTC),
        )
        plan.misdelivered += [Misdelivery(n, "not_a_regular_file", "") for n in new if n in irregular]
        for name in plan.not_yet:
            current.pop(name, None)
            context.log.info(f"{name}: stamped in a UTC day that has not begun; taken once it begins")
        checksums = {n: v[2] for n, v in current.items()}
        engine = warehouse.engine()
        heads = {source: applied_through(engine, source) for source in plan.runs}
        return dg.SensorResult(
            run_requests=run_requests(plan, checksums, heads),
            cursor=json.dumps({"pending": current}, sort_keys=True),
        )

    return dms_drop_zone_sensor
