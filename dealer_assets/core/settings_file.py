"""The integration settings file (CONTRACT section 3): one YAML document, one top-level key per area.

Each area validates its own key with its own models; this module reads the document and words every error
as `<file>: <dotted.key>: <message>`, so nothing is processed under a file that is wrong.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from dealer_assets.core.errors import ConfigError

TOP_LEVEL_KEYS = ("sources", "protractor", "xtime")
"""The areas' keys: DMS `sources`, `protractor`, `xtime`."""

Model = TypeVar("Model", bound=BaseModel)
NOISE = ("str", "Constant", "constrained-str", "function-after", "function-before", "function-wrap")


class KeyedError(ValueError):
    """A validation error that knows the dotted key it belongs to, below the model that raised it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """YAML that refuses a key given twice in one mapping instead of letting the last one win. libyaml's parser
    where PyYAML has it: a dealer group's settings (a thousand mappings) load in milliseconds, not a second."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} is given twice (lines {seen[key]} and {line})",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _fail(path: Path, key: str, message: str) -> ConfigError:
    return ConfigError(f"invalid settings:\n  {path}: {key}: {message}")


def read_document(path: Path | str) -> dict:
    """The settings file as a mapping; every way it can be unreadable is a ConfigError naming the file.

    A run's steps each read the file; the same bytes (same size, modification time and inode) are parsed once.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        stat = None
    if stat is not None and not path.is_dir():
        return copy.deepcopy(_parsed(path, stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return _read(path)


@functools.lru_cache(maxsize=8)
def _parsed(path: Path, _inode: int, _size: int, _mtime_ns: int) -> dict:
    return _read(path)


def _read(path: Path) -> dict:
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise _fail(path, "(file)", "file not found (set DEALER_SETTINGS_FILE)") from None
    except IsADirectoryError:
        raise _fail(path, "(file)", "is a directory, not a settings file (DEALER_SETTINGS_FILE)") from None
    except PermissionError:
        raise _fail(path, "(file)", "cannot be read: permission denied") from None
    except UnicodeDecodeError as exc:
        raise _fail(path, "(file)", f"is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise _fail(path, "(file)", f"cannot be read: {exc.strerror}") from None
    return parse_document(text, path)


def parse_document(text: str, path: Path | str = "<settings>") -> dict:
    path = Path(path)
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(top level)"
        problem = getattr(exc, "problem", None) or str(exc)
        raise _fail(path, where, f"not valid YAML: {problem}") from None
    if not isinstance(raw, dict):
        raise _fail(path, "(top level)", "must be a mapping with a `sources` key")
    unknown = [str(k) for k in raw if k not in TOP_LEVEL_KEYS]
    if unknown:
        raise ConfigError("invalid settings:\n  " + "\n  ".join(f"{path}: {k}: unknown key" for k in unknown))
    return raw


Reword = Callable[[dict, list[str]], tuple[list[str], str | None]]
"""An area's hook: (pydantic error, dotted key parts) -> (key parts, a better message or None)."""


def format_errors(path: Path, exc: ValidationError, prefix: str, reword: Reword | None = None) -> str:
    """One line per error: `<file>: <prefix>.<dotted key>: <message>`."""
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"] if not str(p).startswith(NOISE) and str(p) not in NOISE]
        better = None
        if reword is not None:
            loc, better = reword(err, loc)
        ctx_err = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_err, KeyedError):
            loc.append(ctx_err.key)
            message = ctx_err.message
        else:
            message = better or err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown key"
            elif err["type"] == "missing":
                message = "required key is missing"
        key = ".".join([prefix, *loc]) if prefix else ".".join(loc)
        lines.append(f"{path}: {key or '(top level)'}: {message}")
    return "invalid settings:\n  " + "\n  ".join(dict.fromkeys(lines))


def validate_section(
    model: type[Model],
    document: dict,
    key: str,
    path: Path | str,
    *,
    required: bool = False,
    reword: Reword | None = None,
) -> Model | None:
    """Validate `document[key]` with `model`; None when the key is absent and not required."""
    path = Path(path)
    if key not in document:
        if required:
            raise _fail(path, key, "required key is missing")
        return None
    try:
        return model.model_validate(document[key])
    except ValidationError as exc:
        raise ConfigError(format_errors(path, exc, key, reword)) from None
