"""Secrets out of sight: user:password in URLs and known secret values, wherever text is shown.

Applied to log records (a filter on the root handlers), to error messages the web UI and the
CLI print, and to the effective configuration `check-config` prints.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

#: `scheme://user:password@host` and `scheme://token@host`.
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@]+@")
MASK = "***"
#: Config keys whose values are never printed.
SECRET_KEYS = frozenset({"password_hash", "api_key", "client_secret", "password", "token"})


def redact_url(text: str) -> str:
    """The text with the user information of every URL in it replaced by ***."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """URLs' user information and each given secret value (4 characters or more) masked."""
    out = redact_url(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, MASK)
    return out


def redact_mapping(data: object) -> object:
    """A copy of nested dicts/lists with secret keys' values masked and URLs redacted."""
    if isinstance(data, dict):
        return {
            k: (MASK if k in SECRET_KEYS and v not in (None, "") else redact_mapping(v))
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [redact_mapping(v) for v in data]
    if isinstance(data, str):
        return redact_url(data)
    return data


class RedactingFilter(logging.Filter):
    """Masks URLs' user information in every record a handler emits (message and traceback)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_url(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_url(record.exc_text)
        return True


def install(handlers: Iterable[logging.Handler] | None = None) -> None:
    """Put the filter on the given handlers (default: the root logger's)."""
    for handler in handlers if handlers is not None else logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
