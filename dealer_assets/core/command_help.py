"""Every `dealer-assets` command explains itself the same way: a one-line description, an example, each option's
default, and which options are required. The areas declare their commands; this finishes the help of all."""

from __future__ import annotations

import argparse

EXAMPLES = {
    "catch-up": "dealer-assets catch-up",
    "replay": "dealer-assets replay --from 2026-11-16T00:00:00Z --source generic",
    "what-if": "dealer-assets what-if --settings proposed.yaml --source generic",
    "guard": "dealer-assets guard release --source generic --dealer D100 --feed 2026-11-18T04:00:00Z "
    '--reason "lot moved, vehicles sold"',
    "protractor": "dealer-assets protractor serve --port 8711",
    "protractor serve": "dealer-assets protractor serve --host 0.0.0.0 --port 8711",
    "protractor fake": "dealer-assets protractor fake --port 8710 --churn-seconds 20",
    "protractor resync": "dealer-assets protractor resync --location north",
    "xtime": "dealer-assets xtime status",
    "xtime fake": "dealer-assets xtime fake --port 8720",
    "xtime status": "dealer-assets xtime status",
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written, and `(default: ...)` after every option that has a default it does not name."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.option_strings and _has_default(action) and "default" not in text:
            text += " (default: %(default)s)"
        return text.strip()


def _has_default(action: argparse.Action) -> bool:
    return not any(action.default is v for v in (None, False, True, argparse.SUPPRESS))


def subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[argparse.ArgumentParser, str]]:
    """Every subcommand below `parser` by its full name (`xtime status`), with its one-line help."""
    found: dict[str, tuple[argparse.ArgumentParser, str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, child in action.choices.items():
                full = f"{parser.prog.removeprefix('dealer-assets').strip()} {name}".strip()
                found[full] = (child, helps.get(name, ""))
                found.update(subcommands(child))
    return found


def finish_help(parser: argparse.ArgumentParser) -> None:
    """Give every subcommand its description, example and defaults; mark required options as required."""
    parser.formatter_class = HelpFormatter
    for name, (child, line) in subcommands(parser).items():
        child.formatter_class = HelpFormatter
        child.description = child.description or (line[:1].upper() + line[1:] + ".")
        child.epilog = f"example:\n  {EXAMPLES[name]}"
        for action in child._actions:
            if action.required and action.option_strings and "(required)" not in (action.help or ""):
                action.help = f"{action.help} (required)" if action.help else "required"
            elif action.help is None and _has_default(action):
                action.help = "(default: %(default)s)"
