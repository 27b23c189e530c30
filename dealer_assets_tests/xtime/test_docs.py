"""The area's guide walks an operator through onboarding a dealership, step by step, naming the settings."""

from __future__ import annotations

import re

from dealer_assets.core.env import PROJECT_ROOT

GUIDE = PROJECT_ROOT / "docs" / "xtime.md"
STEPS = [
    ("dealer_code", "time_zone"),
    ("invitation.code", "issued_at", "72 hours"),
    ("completed_at",),
    ("confirmed_at", "24 hours"),
    ("opcode", "value", "name", "Tell Us More"),
    ('"All"', "publish"),
    ("dms_dealer_id", "book_service_request_types"),
]


def test_onboarding_is_step_by_step_with_the_settings_each_step_fills_in():
    text = GUIDE.read_text()
    assert "**Onboarding a dealership, step by step**" in text
    section = text.split("**Onboarding a dealership, step by step**", 1)[1].split("\n**", 1)[0]
    steps = re.split(r"\n\d+\. ", section)[1:]
    assert len(steps) == len(STEPS)
    for step, words in zip(steps, STEPS, strict=True):
        for word in words:
            assert word in step, f"{word!r} not in step: {step[:80]}"
