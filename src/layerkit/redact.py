"""Credentials never leave the process: one helper for every URL layerkit prints or stores.

An index URL may carry a user name and a password or token (``https://user:token@host/simple``).
Locks, manifests, logs, reports, the build cache and every message get the URL through
:func:`redact_url` (one URL) or :func:`redact_text` (free text such as uv's output), which put
``***`` where the credentials were; the host and path stay, so a message still names the index.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

#: What replaces the credentials of a URL.
MASK = "***"

# scheme://userinfo@ : userinfo is anything but whitespace, "/", "@" and quotes
_USERINFO_RE = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^\s/@'\"<>]+@")


def redact_url(url: str) -> str:
    """``url`` with its user name and password replaced by ``***`` (unchanged when it has none).

    >>> redact_url("https://alice:s3cret@pkgs.example.com/simple/")
    'https://***@pkgs.example.com/simple/'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if "@" not in parts.netloc:
        return redact_text(url)  # a text that is not one URL may still hold one
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{MASK}@{host}"))


def redact_text(text: str) -> str:
    """Every ``scheme://user:password@`` in ``text`` with its credentials replaced by ``***``."""
    return _USERINFO_RE.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)


def has_credentials(url: str) -> bool:
    """Whether ``url`` carries a user name or password."""
    return redact_text(url) != url
