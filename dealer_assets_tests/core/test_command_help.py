"""Every `dealer-assets` command explains itself: a description, an example, each option's default, and which
options are required."""

from __future__ import annotations

import argparse

import pytest

from dealer_assets.cli import build_parser
from dealer_assets.core.command_help import subcommands

COMMANDS = subcommands(build_parser())


def test_every_command_is_listed() -> None:
    assert {"catch-up", "replay", "what-if", "guard", "protractor resync", "xtime status"} <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_has_a_description_an_example_defaults_and_required_options(name: str) -> None:
    parser, _ = COMMANDS[name]
    text = parser.format_help()
    assert parser.description and parser.description.strip(), name
    assert f"example:\n  dealer-assets {name}" in text, text
    for action in parser._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        line = " ".join(parser._get_formatter()._format_action(action).split())
        if action.required:
            assert "required" in line, (name, line)
        elif action.default is not None and action.default is not False and action.default is not True:
            assert "default" in line, (name, line)
