"""Errors alkit raises on bad input. Each message names the file, frame or field."""


class AlkitError(Exception):
    """Base class for alkit's own errors."""


class DataError(AlkitError, ValueError):
    """Bad data: a corrupt image, malformed labels, a bad box, a duplicate id."""


class IntegrityError(AlkitError):
    """Stored content does not match its recorded hash (tampered or half-written)."""


class ConfigError(AlkitError, ValueError):
    """Incompatible settings: ensemble members that differ, unknown classes, bad budgets."""
