"""Errors alkit raises on bad input. Each message names the file, frame or field."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


class AlkitError(Exception):
    """Base class for alkit's own errors."""


class DataError(AlkitError, ValueError):
    """Bad data: a corrupt image, malformed labels, a bad box, a duplicate id."""


class IntegrityError(AlkitError):
    """Stored content does not match its recorded hash (tampered or half-written)."""


class ConfigError(AlkitError, ValueError):
    """Incompatible settings: ensemble members that differ, unknown classes, bad budgets."""


def check_known_fields(config_class: type, values: Mapping[str, Any]) -> None:
    """Raise ``ConfigError`` naming the keys of ``values`` that are not fields of the
    dataclass ``config_class`` (a typo in a papermill parameter, a stale manifest)."""
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"unknown {config_class.__name__} field(s) {unknown}; known: {sorted(known)}"
        )
