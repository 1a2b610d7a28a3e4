"""Remove user names and passwords from URIs before they are logged, printed or recorded."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlparse

# The user-information part of any URI in a text: "scheme://user:password@". Hydra writes
# overrides with ":" escaped ("http\://alice\:secret@host"), so a backslash may precede it.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*\\?://)[^/@\s]+@")


def redact_credentials(uri: str) -> str:
    """Return the URI without a user name or password, for logs and MLflow parameters."""
    parsed = urlparse(uri)
    if parsed.username or parsed.password:
        return parsed._replace(netloc=parsed.hostname + (f":{parsed.port}" if parsed.port else "")).geturl()
    return uri


def redact_text(text: str) -> str:
    """Return ``text`` with the user name and password removed from every URI in it."""
    return _USERINFO.sub(r"\g<scheme>", text)


class CredentialFilter(logging.Filter):
    """A logging filter that removes credentials from every URI in a record's message.

    conf/config.yaml attaches it to Hydra's console and file handlers, so the overrides
    Hydra echoes for each job of a sweep (``#0 : tracking.uri=...``) show no password.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True
