"""Checks on what users type: names and keys stored as text, and option names.

Cold paths only: option objects are checked when built, and a stored row is examined
only after SQLite refused to encode it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from liteq.errors import ConfigError


def check_storable(field: str, value: object) -> None:
    """Raise ``ConfigError`` if ``value`` is a str that cannot be stored as UTF-8.

    A lone surrogate (``"\\ud800"``, or a byte that is not UTF-8 in a command-line
    argument) cannot be stored; the error names the field instead of the codec.
    """
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ConfigError(
                f"{field} {value!r} cannot be stored: it holds a lone surrogate "
                f"({value[exc.start]!r} at position {exc.start}); use valid Unicode text"
            ) from None


def check_queue_name(field: str, value: str | None) -> None:
    """A queue name must be non-empty text (``None`` means "the default" where allowed)."""
    if value is None:
        return
    if not isinstance(value, str):
        raise ConfigError(f"{field} must be a str, not {type(value).__name__}")
    if not value:
        raise ConfigError(f"{field} cannot be empty: leave it out for the 'default' queue")
    check_storable(field, value)


def unencodable_field(fields: Mapping[str, object]) -> ConfigError | None:
    """The error for the first of ``fields`` (name -> value) that cannot be stored."""
    for name, value in fields.items():
        try:
            check_storable(name, value)
        except ConfigError as exc:
            return exc
    return None


def unknown_options(where: str, given: Iterable[str], valid: Iterable[str]) -> ConfigError | None:
    """The error for the first option in ``given`` that is not in ``valid``, with a
    suggestion when one is close: ``unknown option 'priorty' (did you mean 'priority'?)``."""
    allowed = sorted(valid)
    for name in given:
        if name in allowed:
            continue
        close = difflib.get_close_matches(name, allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return ConfigError(
            f"{where}: unknown option {name!r}{hint}; valid options: {', '.join(allowed)}"
        )
    return None


def option_names(options: type[Any], *, exclude: Iterable[str] = ()) -> list[str]:
    """The option names a frozen options dataclass accepts."""
    fields: Mapping[str, Any] = options.__dataclass_fields__
    return [name for name in fields if name not in set(exclude)]
