"""Credential redaction for everything a config or URL leaves the process as: MLflow params
and tags, the logged config YAML, checkpoints, log lines and Prefect results.

Two forms of credentials appear in store URLs: ``scheme://user:password@host`` and query
parameters such as ``?password=...`` (libpq and SQLAlchemy accept both), plus API keys and
tokens in endpoint URLs. Keys whose NAME says secret are masked whatever their value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "***"
SECRET_KEY_PATTERN = re.compile(
    r"(password|passwd|pwd|secret|token|api_?key|credential|auth)", re.IGNORECASE
)
# scheme://user:password@  ->  scheme://user:***@
URL_PASSWORD_PATTERN = re.compile(r"(?P<head>://[^/:@\s]*):(?P<secret>[^@/\s]+)@")
# ?password=...&  or  &api_key=...  (query string or libpq keyword form)
QUERY_SECRET_PATTERN = re.compile(
    r"(?P<key>(?:^|[?&;\s])(?:password|passwd|pwd|api_?key|token|access_token|secret|"
    r"sslpassword|auth)=)(?P<secret>[^&;\s#]*)",
    re.IGNORECASE,
)


def redact_text(text: str) -> str:
    """``text`` with every URL password and secret query parameter masked."""
    text = URL_PASSWORD_PATTERN.sub(rf"\g<head>:{REDACTED}@", text)
    return QUERY_SECRET_PATTERN.sub(rf"\g<key>{REDACTED}", text)


def redact_value(key: str, value: Any) -> Any:
    """A secret-named key's value masked; a string value with its credentials masked."""
    if SECRET_KEY_PATTERN.search(key) and value not in (None, ""):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_data(data: Any, key: str = "") -> Any:
    """A deep copy of JSON-like ``data`` (dicts, lists, scalars) with credentials masked."""
    if isinstance(data, Mapping):
        return {k: redact_data(v, str(k)) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [redact_data(item, key) for item in data]
    return redact_value(key, data)
