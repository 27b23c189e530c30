"""The `xtime:` settings: defaults, and errors that name the file and the dotted key."""

from __future__ import annotations

import copy

import pytest

from dealer_assets.core.errors import ConfigError
from dealer_assets.xtime.settings import load_xtime_settings, settings_from_document
from dealer_assets_tests.xtime.support import settings_document

BASE = settings_document("http://127.0.0.1:8720")


def with_change(path: str, value: object) -> dict:
    doc = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node = doc
    for p in parents:
        node = node[p]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return doc


def error_of(doc: dict) -> str:
    with pytest.raises(ConfigError) as info:
        settings_from_document(doc, "conf/dealer_feeds.yaml")
    return str(info.value)


def test_defaults_and_absent_key():
    minimal = {
        "xtime": {
            "client_id_env": "A",
            "client_secret_env": "B",
            "api_key_env": "C",
            "dealerships": {
                "d1": {
                    "dealer_code": "X1",
                    "time_zone": "America/New_York",
                    "invitation": {"code": "Q", "issued_at": "2026-11-20T15:00:00Z"},
                }
            },
        }
    }
    s = settings_from_document(minimal, "f.yaml")
    assert s.base_url == "https://api.coxautoinc.com/xtime"
    assert s.token_url == "https://auth.coxautoinc.com/token"
    assert s.requests_per_second == 10
    assert s.book_service_request_types == []
    d = s.dealerships["d1"]
    assert (d.opcode, d.dms_dealer_id, d.invitation.completed_at, d.invitation.confirmed_at) == (
        "Tell Us More",
        None,
        None,
        None,
    )
    assert settings_from_document({"sources": {}}, "f.yaml") is None


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            "xtime.dealerships.d100.time_zone",
            "Pacific Time",
            "xtime.dealerships.d100.time_zone: 'Pacific Time' is not",
        ),
        ("xtime.dealerships.d100.colour", "red", "xtime.dealerships.d100.colour: unknown key"),
        (
            "xtime.dealerships.d100.dealer_code",
            KeyError,
            "xtime.dealerships.d100.dealer_code: required key is missing",
        ),
        (
            "xtime.dealerships.d100.invitation.issued_at",
            "2026-11-20T15:00:00",
            "xtime.dealerships.d100.invitation.issued_at: a timestamp needs Z or an explicit UTC offset",
        ),
        (
            "xtime.dealerships.d100.invitation.confirmed_at",
            "2026-11-01T00:00:00Z",
            "xtime.dealerships.d100.invitation: Value error",
        ),
        (
            "xtime.client_id_env",
            "abc-123 secret",
            "xtime.client_id_env: 'abc-123 secret' is not an environment variable",
        ),
        ("xtime.requests_per_second", 0, "xtime.requests_per_second: Input should be greater than 0"),
        ("xtime.requests_per_second", "10", "xtime.requests_per_second: Input should be a valid number"),
        (
            "xtime.dealerships.d200.dealer_code",
            "X100",
            "xtime.dealerships.d200.dealer_code: 'X100' is already the",
        ),
        (
            "xtime.dealerships.d200.dms_dealer_id",
            "D100",
            "xtime.dealerships.d200.dms_dealer_id: 'D100' is already",
        ),
        (
            "xtime.dealerships.d100.dms_dealer_id",
            100,
            "xtime.dealerships.d100.dms_dealer_id: Input should be a valid",
        ),
        (
            "xtime.book_service_request_types",
            "Recon",
            "xtime.book_service_request_types: Input should be a valid list",
        ),
        ("xtime.base_url", "ftp://x", "xtime.base_url: 'ftp://x' is not an http(s) URL"),
    ],
)
def test_errors_name_the_file_and_the_key(path, value, expected):
    message = error_of(with_change(path, value))
    assert message.startswith("invalid settings:\n  conf/dealer_feeds.yaml: ")
    assert expected.replace("Value error", "") in message


def test_an_invitation_code_is_unique_across_dealerships():
    message = error_of(with_change("xtime.dealerships.d300.invitation.code", " AA11 "))
    assert message == (
        "invalid settings:\n  conf/dealer_feeds.yaml: xtime.dealerships.d300.invitation.code: 'AA11' is already "
        "the invitation code of d100 (xtime.dealerships.d100.invitation.code); each invitation code is unique"
    )


def test_dealership_ids_are_lower_snake():
    doc = copy.deepcopy(BASE)
    doc["xtime"]["dealerships"]["North-1"] = doc["xtime"]["dealerships"].pop("d300")
    assert "conf/dealer_feeds.yaml: xtime.dealerships.North-1: a dealership id is [a-z0-9_]+" in error_of(doc)


def test_confirmation_needs_completion():
    doc = with_change("xtime.dealerships.d300.invitation.confirmed_at", "2026-11-26T00:00:00Z")
    assert "xtime.dealerships.d300.invitation: confirmed_at needs completed_at" in error_of(doc)


def test_the_sample_settings_file_loads(tmp_path):
    path = tmp_path / "dealer_feeds.yaml"
    path.write_text("""
sources: {}
xtime:
  client_id_env: XTIME_CLIENT_ID
  client_secret_env: XTIME_CLIENT_SECRET
  api_key_env: XTIME_API_KEY
  dealerships:
    d100:
      dealer_code: X123456
      dms_dealer_id: "D100"
      time_zone: America/Los_Angeles
      opcode: Tell Us More
      invitation: {code: AB12CD, issued_at: 2026-11-20T15:00:00Z, completed_at: null, confirmed_at: null}
  book_service_request_types: [Mechanical Recon]
""")
    s = load_xtime_settings(path)
    assert s.dealerships["d100"].invitation.issued_at.isoformat() == "2026-11-20T15:00:00+00:00"
    assert s.dealerships["d100"].zone.key == "America/Los_Angeles"
