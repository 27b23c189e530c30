"""End to end without Dagster, over loopback HTTP: the fake's changes reach the receiver as callbacks, and
processing them versions the work orders in the warehouse (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import polars as pl
import pytest
import sqlalchemy as sa

from dealer_assets.protractor import sync
from dealer_assets.protractor.domain.versions import DELETE_SCHEMA
from dealer_assets.protractor.fake import FakeProtractor
from dealer_assets.protractor.settings import load_protractor_settings
from dealer_assets_tests.protractor.support import FAST_LIMITS, journaled, sync_context
from dealer_assets_tests.support import wait_for


@dataclass(frozen=True)
class World:
    ctx: sync.SyncContext

    @property
    def engine(self) -> sa.Engine:
        return self.ctx.engine

    def process(self) -> sync.Outcome:
        return sync.process_events(self.ctx)

    def sweep(self, **kw: object) -> sync.Outcome:
        return sync.sweep(self.ctx, **kw)

    def table(self, name: str) -> pl.DataFrame:
        with self.engine.connect() as conn:
            return pl.DataFrame([dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM {name}"))])

    def wait_journal(self, count: int) -> None:
        wait_for(lambda: journaled(self.ctx.data_dir) >= count, f"{count} callbacks journaled")


@pytest.fixture
def world(tmp_path: Path, fake: FakeProtractor, settings_file: Path, keys: dict, warehouse_url: str) -> World:
    world = World(sync_context(settings_file, warehouse_url, tmp_path, **FAST_LIMITS))
    world.sweep()  # the first sweep loads what the shops already hold
    return world


def _change(
    fake: FakeProtractor, location: str, action: Callable[..., tuple[str, str]], *args: object, **kw: object
) -> str:
    shop = fake.accounts[location].shop
    operation, wo_id = action(shop, *args, **kw)
    fake.notify(location, [(operation, wo_id)])
    return wo_id


@pytest.mark.slow
def test_first_sweep_loads_every_work_order(world, fake: FakeProtractor) -> None:
    snaps = world.table("work_order_snapshots")
    assert snaps.height == sum(len(a.shop.orders) for a in fake.accounts.values())
    assert snaps["valid_to"].null_count() == snaps.height
    assert world.sweep().snapshots_written == 0, "a second sweep writes nothing"


@pytest.mark.slow
def test_create_package_update_line_update_delete(world, fake: FakeProtractor) -> None:
    shop = fake.accounts["north"].shop
    wo = next(iter(shop.orders))
    wo_l = wo.lower()
    local = datetime(2026, 11, 20, 9, 0)
    _change(fake, "north", type(shop).set_stage, wo, "Work In Progress", local)
    _change(
        fake,
        "north",
        type(shop).upsert,
        wo,
        {
            "ServicePackages": {
                "ItemCollection": [
                    {
                        "ID": "11111111-2222-4333-8444-555555555555",
                        "ServicePackageHeader": {"Title": "Tires", "Description": ""},
                        "ServicePackageLines": {
                            "ItemCollection": [
                                {
                                    "ID": "11111111-2222-4333-8444-666666666666",
                                    "Type": "Part",
                                    "Description": "Tire",
                                    "Quantity": 4,
                                    "Price": 120.0,
                                }
                            ]
                        },
                    }
                ]
            }
        },
        datetime(2026, 11, 20, 10, 0),
    )
    world.wait_journal(2)
    out = world.process()
    assert out.events_loaded == 1 and out.snapshots_written == 1, (
        "two Updates while pending: one event, one fetch"
    )
    snaps = world.table("work_order_snapshots").filter(pl.col("work_order_id") == wo_l)
    current = snaps.filter(pl.col("valid_to").is_null())
    assert current["protractor_stage"].item() == "Work In Progress" and current["status"].item() == "WIP"
    assert str(current["modified_time"].item()).startswith("2026-11-20 16:00:00")  # 10:00 CST
    lines = world.table("work_order_lines").filter(pl.col("work_order_id") == wo_l)
    assert "Tire" in lines["description"].to_list()

    _change(fake, "north", type(shop).update_line, wo, datetime(2026, 11, 20, 11, 0), Quantity=3.0)
    world.wait_journal(3)
    world.process()
    lines = world.table("work_order_lines").filter(pl.col("work_order_id") == wo_l)
    first_line = shop.orders[wo]["ServicePackages"]["ItemCollection"][0]["ServicePackageLines"][
        "ItemCollection"
    ][0]["ID"]
    versions = lines.filter(pl.col("line_id") == first_line.lower()).sort("valid_from")
    assert (
        versions.height == 2
        and versions["quantity"].to_list()[-1] == 3.0
        and versions["valid_to"].to_list()[-1] is None
    )

    _change(fake, "north", type(shop).delete, wo)
    world.wait_journal(4)
    world.process()
    snaps = world.table("work_order_snapshots").filter(pl.col("work_order_id") == wo_l).sort("valid_from")
    assert snaps["deleted"].to_list()[-1] in (True, 1) and snaps["valid_to"].null_count() == 1
    assert snaps.height == 4, "seeded, updated, line update, deleted: history kept"
    current_lines = world.table("work_order_lines").filter(
        (pl.col("work_order_id") == wo_l) & pl.col("valid_to").is_null()
    )
    assert current_lines.is_empty()
    assert world.process().snapshots_written == 0, "nothing pending, nothing written"


def test_duplicate_callbacks_processed_once(world, fake: FakeProtractor) -> None:
    shop = fake.accounts["south"].shop
    wo = next(iter(shop.orders))
    httpx.post(fake.base_url + "/_control/faults", json={"duplicate_callbacks": 1}).raise_for_status()
    _change(fake, "south", type(shop).set_stage, wo, "Approved", datetime(2026, 11, 21, 9, 0))
    world.wait_journal(2)
    out = world.process()
    assert out.events_loaded == 1 and out.snapshots_written == 1
    assert world.table("protractor_events").height == 1


def test_dropped_callbacks_found_by_resync(world, fake: FakeProtractor) -> None:
    shop = fake.accounts["north"].shop
    wo = list(shop.orders)[1]
    httpx.post(fake.base_url + "/_control/faults", json={"drop_callbacks": 5}).raise_for_status()
    _change(fake, "north", type(shop).set_stage, wo, "Completed", fake.accounts["north"].now_local())
    assert world.process().snapshots_written == 0, "nothing was heard"
    out = world.sweep(locations=["north"])
    assert out.fetched == 1 and out.snapshots_written == 1
    current = world.table("work_order_snapshots").filter(
        (pl.col("work_order_id") == wo.lower()) & pl.col("valid_to").is_null()
    )
    assert current["status"].item() == "Complete"


def test_unmapped_values_kept_raw(world) -> None:
    snaps = world.table("work_order_snapshots")
    unmapped = snaps.filter(pl.col("protractor_stage").is_not_null() & pl.col("status").is_null())
    assert unmapped.height > 0 and unmapped["protractor_stage"].null_count() == 0


@pytest.mark.slow
def test_failed_run_changes_nothing_and_rerun_completes(world, fake: FakeProtractor) -> None:
    shop = fake.accounts["north"].shop
    wo = list(shop.orders)[2]
    _change(fake, "north", type(shop).set_stage, wo, "Approved", datetime(2026, 11, 23, 9, 0))
    world.wait_journal(1)
    before = world.table("work_order_snapshots").sort("work_order_id", "valid_from")
    httpx.post(fake.base_url + "/_control/faults", json={"faults": [["500"]] * 6}).raise_for_status()
    with pytest.raises(Exception, match="HTTP 500 after retries"):
        world.process()
    assert world.table("work_order_snapshots").sort("work_order_id", "valid_from").equals(before)
    assert world.table("protractor_events")["processed_at"].null_count() == 1, (
        "the notification stays pending"
    )
    out = world.process()
    assert out.snapshots_written == 1 and world.process().snapshots_written == 0


def test_journal_reread_after_lost_offsets_adds_nothing(world, fake: FakeProtractor) -> None:
    shop = fake.accounts["south"].shop
    for i, wo in enumerate(list(shop.orders)[:3]):
        _change(fake, "south", type(shop).set_stage, wo, "Approved", datetime(2026, 11, 24, 9, i))
    world.wait_journal(3)
    assert sync.load_journal(world.engine, world.ctx.data_dir) == 3
    with world.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM protractor_journal_offsets"))
    assert sync.load_journal(world.engine, world.ctx.data_dir) == 0
    assert world.table("protractor_events").height == 3


def test_changed_maps_rewrite_our_status_in_place(world, settings_file: Path) -> None:
    settings = load_protractor_settings(settings_file)
    south = settings.locations["south"]
    before = world.table("work_order_snapshots").filter(pl.col("location_id") == "south")
    assert before["status"].null_count() > 0
    remapped = south.model_copy(update={"status_map": {s: "QC" for s in before["protractor_stage"].unique()}})
    empty = pl.DataFrame(schema=DELETE_SCHEMA)
    counts = sync.apply_batch(world.engine, "south", remapped, b"", empty, [], datetime.now(UTC))
    after = world.table("work_order_snapshots").filter(pl.col("location_id") == "south")
    assert counts["snapshots_written"] == 0 and after.height == before.height, "no new version for a new map"
    assert set(after["status"]) == {"QC"}


def _current(world: World, wo: str) -> pl.DataFrame:
    return world.table("work_order_snapshots").filter(
        (pl.col("work_order_id") == wo.lower()) & pl.col("valid_to").is_null()
    )


@pytest.mark.slow
def test_a_corrected_vin_reaches_the_snapshot_and_the_link_on_the_next_catch_up(
    world, fake: FakeProtractor
) -> None:
    shop = fake.accounts["north"].shop
    wo = list(shop.orders)[3]
    fake.notify("north", [shop.set_vin(wo, "2T1BURHE0NC000777")])
    world.wait_journal(1)
    out = world.process()
    assert (out.fetched, out.snapshots_written) == (1, 1)
    assert _current(world, wo)["vin"].item() == "2T1BURHE0NC000777"
    links = sync.refresh_links(world.engine)
    assert links.filter(pl.col("work_order_id") == wo.lower())["vin"].item() == "2T1BURHE0NC000777"

    fake.notify("north", [shop.rename_contact(wo, "Jordan", "Lee")])
    world.wait_journal(2)
    out = world.process()
    assert (out.fetched, out.snapshots_written) == (1, 0), "re-fetched; no tracked field changed"


@pytest.mark.slow
def test_users_of_a_location_that_sends_user_objects(world, fake: FakeProtractor) -> None:
    south = world.table("work_order_snapshots").filter(pl.col("location_id") == "south")
    assert south["protractor_service_advisor"].null_count() == 0
    assert south["protractor_service_advisor_id"].null_count() == 0
    assert south["protractor_technician"].null_count() == 0
    shop = fake.accounts["south"].shop
    wo = next(iter(shop.orders))
    other = next(a for a in ("Dana Smith", "Lee Park") if a != shop.get(wo)["ServiceAdvisor"]["Name"])
    _change(fake, "south", type(shop).set_advisor, wo, other, datetime(2026, 11, 25, 9, 0))
    world.wait_journal(1)
    world.process()
    assert _current(world, wo)["protractor_service_advisor"].item() == other
    assert world.table("work_order_snapshots").filter(pl.col("work_order_id") == wo.lower()).height == 2
