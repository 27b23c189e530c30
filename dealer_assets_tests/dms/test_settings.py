"""The settings loader (CONTRACT section 3): a valid file, defaults, and every kind of invalid file."""

from __future__ import annotations

from pathlib import Path

import pytest

from dealer_assets.core.errors import ConfigError
from dealer_assets.dms.settings import (
    GENERIC_LAYOUT,
    Constant,
    load_settings,
    parse_settings,
)

VALID = """
sources:
  generic:
    layout: generic
    track_stock_no_and_client: {mode: for_days, days: 3}
    auto_close: {mode: after_days, days: 3}
    auto_close_guard: {max_fraction: 0.5, min_active: 10}
    coverage: all_mapped_dealers
    vehicle_type_mappings:
      - {system_code: U, vehicle_type: Used, service_request_type: Used Recon, dealer_id: null, include_only: false}
      - {system_code: N, vehicle_type: New, service_request_type: New Recon, dealer_id: "D100", include_only: true}
    client_dealer_mappings:
      - {client: Acme Wholesale, dealer_id: "D100", service_request_type: Wholesale Recon,
         ignore_if_sr_with_vin_exists: true, ignore_days: 30}
      - {client: "  Beta Motors  ", dealer_id: "0100", service_request_type: Recon}
  dms_two:
    layout: {delimiter: "|", encoding: latin-1, quote: "'",
             columns: {dealer_id: Dealer, vin: Vehicle VIN, stock_no: Stock, system_code: {constant: U}}}
    track_stock_no_and_client: {mode: never}
    auto_close: {mode: immediately}
  minimal:
    layout: {columns: {dealer_id: D, vin: V, system_code: S}}
    track_stock_no_and_client: {mode: never}
    auto_close: {mode: never}
"""

# One source, valid; the invalid cases below each change one thing in it.
BASE = """
sources:
  generic:
    layout: generic
    track_stock_no_and_client: {mode: never}
    auto_close: {mode: after_days, days: 3}
"""
PATH = "/etc/dealer/dealer_feeds.yaml"


def test_valid_file_generic_and_inline_layouts() -> None:
    s = parse_settings(VALID, PATH)
    assert set(s.sources) == {"generic", "dms_two", "minimal"}

    g = s.sources["generic"]
    assert g.layout == "generic"
    assert g.file_layout == GENERIC_LAYOUT
    assert g.file_layout.headers["vin"] == "VIN" and g.file_layout.delimiter == ","
    assert (g.track_stock_no_and_client.mode, g.track_stock_no_and_client.days) == ("for_days", 3)
    assert (g.auto_close.mode, g.auto_close.days) == ("after_days", 3)
    assert g.auto_close_guard is not None
    assert (g.auto_close_guard.max_fraction, g.auto_close_guard.min_active) == (0.5, 10)
    assert g.coverage == "all_mapped_dealers"
    assert [(m.system_code, m.dealer_id, m.include_only) for m in g.vehicle_type_mappings] == [
        ("U", None, False),
        ("N", "D100", True),
    ]
    acme, beta = g.client_dealer_mappings
    assert (acme.client, acme.dealer_id, acme.ignore_if_sr_with_vin_exists, acme.ignore_days) == (
        "Acme Wholesale",
        "D100",
        True,
        30,
    )
    # Quoted dealer ids stay strings with their leading zero; text values are trimmed.
    assert (beta.client, beta.dealer_id) == ("Beta Motors", "0100")

    inline = s.sources["dms_two"].file_layout
    assert (inline.delimiter, inline.encoding, inline.quote) == ("|", "latin-1", "'")
    assert inline.headers == {"dealer_id": "Dealer", "vin": "Vehicle VIN", "stock_no": "Stock"}
    assert inline.constants == {"system_code": "U"}
    assert inline.columns["system_code"] == Constant(constant="U")
    assert inline.required_headers == ["Dealer", "Vehicle VIN"]
    assert s.sources["dms_two"].auto_close.mode == "immediately"


def test_defaults_of_optional_keys() -> None:
    s = parse_settings(VALID, PATH)
    m = s.sources["minimal"]
    assert m.auto_close_guard is None
    assert m.coverage == "dealers_in_feed"
    assert m.vehicle_type_mappings == [] and m.client_dealer_mappings == []
    assert m.auto_close.days is None and m.track_stock_no_and_client.days is None
    layout = m.file_layout
    assert (layout.delimiter, layout.encoding, layout.quote) == (",", "utf-8", '"')
    assert layout.constants == {}

    with_mappings = parse_settings(
        BASE
        + """    vehicle_type_mappings:
      - {system_code: U, vehicle_type: Used, service_request_type: Used Recon}
    client_dealer_mappings:
      - {client: Acme, dealer_id: D1, service_request_type: Recon}
""",
        PATH,
    ).sources["generic"]
    (vt,) = with_mappings.vehicle_type_mappings
    assert vt.dealer_id is None and vt.include_only is False
    (cm,) = with_mappings.client_dealer_mappings
    assert cm.ignore_if_sr_with_vin_exists is False and cm.ignore_days is None


def test_load_settings_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "dealer_feeds.yaml"
    path.write_text(VALID)
    assert set(load_settings(path).sources) == {"generic", "dms_two", "minimal"}


def test_load_settings_missing_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(path) in str(err.value)


def test_load_settings_error_names_the_real_path(tmp_path: Path) -> None:
    path = tmp_path / "config" / "broken.yaml"
    path.parent.mkdir()
    path.write_text(BASE + "    bogus: 1\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert f"{path}: sources.generic.bogus" in str(err.value)


MAPPING_HEAD = "    client_dealer_mappings:\n"
TYPES_HEAD = "    vehicle_type_mappings:\n"

INVALID = {
    "unknown_key_in_source": (BASE + "    bogus: 1\n", "sources.generic.bogus", "unknown key"),
    "unknown_key_nested": (
        BASE.replace("days: 3}", "days: 3, when: later}"),
        "sources.generic.auto_close.when",
        "unknown key",
    ),
    "unknown_top_level_key": (BASE + "extra: 1\n", "extra", "unknown key"),
    "wrong_type_days_text": (
        BASE.replace("days: 3", "days: three"),
        "sources.generic.auto_close.days",
        "integer",
    ),
    "wrong_type_days_quoted_number": (
        BASE.replace("days: 3", "days: '3'"),
        "sources.generic.auto_close.days",
        "integer",
    ),
    "wrong_type_negative_days": (
        BASE.replace("days: 3", "days: -1"),
        "sources.generic.auto_close.days",
        "greater than or equal to 0",
    ),
    "wrong_type_bool": (
        BASE + MAPPING_HEAD + "      - {client: A, dealer_id: D1, service_request_type: R,"
        " ignore_if_sr_with_vin_exists: 'yes', ignore_days: 3}\n",
        "sources.generic.client_dealer_mappings.0.ignore_if_sr_with_vin_exists",
        "boolean",
    ),
    "bad_mode": (
        BASE.replace("after_days, days: 3", "sometimes"),
        "sources.generic.auto_close.mode",
        "never",
    ),
    "bad_coverage": (BASE + "    coverage: everything\n", "sources.generic.coverage", "dealers_in_feed"),
    "missing_required_key": (
        BASE.replace("    track_stock_no_and_client: {mode: never}\n", ""),
        "sources.generic.track_stock_no_and_client",
        "required key is missing",
    ),
    "missing_layout": (
        BASE.replace("    layout: generic\n", ""),
        "sources.generic.layout",
        "required key is missing",
    ),
    "missing_client_in_mapping": (
        BASE + MAPPING_HEAD + "      - {dealer_id: D1, service_request_type: R}\n",
        "sources.generic.client_dealer_mappings.0.client",
        "required key is missing",
    ),
    "guard_half_given": (
        BASE + "    auto_close_guard: {max_fraction: 0.5}\n",
        "sources.generic.auto_close_guard.min_active",
        "required key is missing",
    ),
    "after_days_without_days": (
        BASE.replace(", days: 3", ""),
        "sources.generic.auto_close",
        "days is required with mode after_days",
    ),
    "for_days_without_days": (
        BASE.replace("{mode: never}", "{mode: for_days}"),
        "sources.generic.track_stock_no_and_client",
        "days is required with mode for_days",
    ),
    "ignore_days_missing": (
        BASE + MAPPING_HEAD + "      - {client: A, dealer_id: D1, service_request_type: R,"
        " ignore_if_sr_with_vin_exists: true}\n",
        "sources.generic.client_dealer_mappings.0",
        "ignore_days is required",
    ),
    "two_client_mappings_one_dealer": (
        BASE + MAPPING_HEAD + "      - {client: A, dealer_id: D1, service_request_type: R}\n"
        "      - {client: B, dealer_id: ' D1 ', service_request_type: R}\n",
        "sources.generic.client_dealer_mappings.1.dealer_id",
        "already has a client mapping",
    ),
    "two_type_mappings_one_code_no_dealer": (
        BASE + TYPES_HEAD + "      - {system_code: U, vehicle_type: A, service_request_type: R}\n"
        "      - {system_code: U, vehicle_type: B, service_request_type: R}\n",
        "sources.generic.vehicle_type_mappings.1",
        "already mapped",
    ),
    "two_type_mappings_one_code_one_dealer": (
        BASE
        + TYPES_HEAD
        + "      - {system_code: U, vehicle_type: A, service_request_type: R, dealer_id: D1}\n"
        "      - {system_code: U, vehicle_type: B, service_request_type: R, dealer_id: D2}\n"
        "      - {system_code: U, vehicle_type: C, service_request_type: R, dealer_id: D1}\n",
        "sources.generic.vehicle_type_mappings.2",
        "already mapped",
    ),
    "bare_number_dealer_id": (
        BASE + MAPPING_HEAD + "      - {client: A, dealer_id: 0100, service_request_type: R}\n",
        "sources.generic.client_dealer_mappings.0.dealer_id",
        "valid string",
    ),
    "bare_number_type_mapping_dealer_id": (
        BASE
        + TYPES_HEAD
        + "      - {system_code: U, vehicle_type: A, service_request_type: R, dealer_id: 100}\n",
        "sources.generic.vehicle_type_mappings.0.dealer_id",
        "valid string",
    ),
    "bare_number_system_code": (
        BASE + TYPES_HEAD + "      - {system_code: 7, vehicle_type: A, service_request_type: R}\n",
        "sources.generic.vehicle_type_mappings.0.system_code",
        "valid string",
    ),
    "bare_number_constant_system_code": (
        BASE.replace(
            "layout: generic", "layout: {columns: {dealer_id: D, vin: V, system_code: {constant: 5}}}"
        ),
        "sources.generic.layout.columns.system_code.constant",
        "valid string",
    ),
    "inline_layout_without_vin": (
        BASE.replace("layout: generic", "layout: {columns: {dealer_id: D, system_code: {constant: U}}}"),
        "sources.generic.layout",
        "columns must give vin",
    ),
    "inline_layout_without_columns": (
        BASE.replace("layout: generic", "layout: {delimiter: ';'}"),
        "sources.generic.layout.columns",
        "required key is missing",
    ),
    "inline_layout_unknown_field": (
        BASE.replace(
            "layout: generic", "layout: {columns: {dealer_id: D, vin: V, system_code: S, colour: C}}"
        ),
        "sources.generic.layout.columns.colour",
        "dealer_id",
    ),
    "inline_layout_long_delimiter": (
        BASE.replace(
            "layout: generic", "layout: {delimiter: ';;', columns: {dealer_id: D, vin: V, system_code: S}}"
        ),
        "sources.generic.layout",
        "delimiter must be one ASCII character",
    ),
    "inline_layout_unknown_encoding": (
        BASE.replace(
            "layout: generic", "layout: {encoding: klingon, columns: {dealer_id: D, vin: V, system_code: S}}"
        ),
        "sources.generic.layout",
        "encoding 'klingon' is not known",
    ),
    "unknown_builtin_layout": (
        BASE.replace("layout: generic", "layout: fancy"),
        "sources.generic.layout",
        "must be 'generic'",
    ),
    "bad_source_name_upper": (BASE.replace("  generic:", "  Generic:"), "sources.Generic", "[a-z0-9_]+"),
    "bad_source_name_dash": (BASE.replace("  generic:", "  my-dms:"), "sources.my-dms", "[a-z0-9_]+"),
    "sources_not_a_mapping": ("sources: [1, 2]\n", "sources", "dictionary"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_settings_name_file_and_key(case: str) -> None:
    text, key, message = INVALID[case]
    with pytest.raises(ConfigError) as err:
        parse_settings(text, PATH)
    lines = str(err.value).splitlines()
    # Some line says "<file>: <dotted key>: <message>".
    matching = [line for line in lines if line.strip().startswith(f"{PATH}: {key}")]
    assert matching, f"no line names {PATH}: {key} in:\n{err.value}"
    assert any(message in line for line in matching), f"{message!r} not in {matching}"


@pytest.mark.parametrize("text", ["", "just a string\n", "- a\n- b\n", "sources: {generic: [\n"])
def test_not_a_settings_document(text: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings(text, PATH)
    assert PATH in str(err.value)


def test_every_error_is_reported_at_once() -> None:
    text = BASE.replace("days: 3", "days: x") + "    bogus: 1\n"
    with pytest.raises(ConfigError) as err:
        parse_settings(text, PATH)
    assert "sources.generic.auto_close.days" in str(err.value)
    assert "sources.generic.bogus" in str(err.value)


def test_days_not_used_with_other_modes() -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings(BASE.replace("{mode: never}", "{mode: never, days: 2}"), PATH)
    assert f"{PATH}: sources.generic.track_stock_no_and_client: days is not used" in str(err.value)


def test_same_system_code_for_a_dealer_and_for_all_dealers_is_allowed() -> None:
    s = parse_settings(
        BASE
        + TYPES_HEAD
        + "      - {system_code: U, vehicle_type: A, service_request_type: R, dealer_id: D1}\n"
        + "      - {system_code: U, vehicle_type: B, service_request_type: R}\n",
        PATH,
    )
    assert len(s.sources["generic"].vehicle_type_mappings) == 2


def test_blank_client_is_rejected() -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings(
            BASE + MAPPING_HEAD + "      - {client: '  ', dealer_id: D1, service_request_type: R}\n", PATH
        )
    assert "sources.generic.client_dealer_mappings.0.client" in str(err.value)
