"""The shoplens error hierarchy: every failure a user can cause has a class and a clear message."""

from __future__ import annotations


class ShoplensError(Exception):
    """Base class for every error shoplens raises on purpose."""

    http_status = 500


class ConfigError(ShoplensError):
    """A configuration value is missing, of the wrong type or out of range."""

    http_status = 400


class MissingDependencyError(ShoplensError):
    """An optional dependency is not installed; the message names the extra that provides it."""

    http_status = 501

    def __init__(self, package: str, extra: str, purpose: str = "") -> None:
        why = f" (needed for {purpose})" if purpose else ""
        super().__init__(
            f"the optional package {package!r} is not installed{why}; "
            f"install it with: pip install 'shoplens[{extra}]'"
        )
        self.package = package
        self.extra = extra


class CatalogError(ShoplensError):
    """A catalogue file cannot be read at all (bad format, unreadable file, no id column)."""

    http_status = 400


class RowError(ShoplensError):
    """One catalogue row is invalid; names the row number and the field."""

    http_status = 400

    def __init__(self, row: int, field: str, reason: str) -> None:
        super().__init__(f"row {row}: field {field!r}: {reason}")
        self.row = row
        self.field = field
        self.reason = reason


class ImageError(ShoplensError):
    """An image cannot be used: missing, unreadable, corrupt, too large or of an unsupported type."""

    http_status = 400


class ImageTooLargeError(ImageError):
    """An image exceeds the byte, pixel or dimension limits."""

    http_status = 413


class UnsupportedImageError(ImageError):
    """The bytes are not an image format shoplens accepts."""

    http_status = 415


class QueryError(ShoplensError):
    """A query is empty, too long, or has a malformed filter."""

    http_status = 400


class NotFoundError(ShoplensError):
    """An unknown product id or missing index folder."""

    http_status = 404


class IndexError_(ShoplensError):
    """An index folder is missing, incomplete, or was written by an incompatible version."""

    http_status = 500
