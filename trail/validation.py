"""One definition of each rule for names a user types: host names, subdomains, time zones, ids,
email addresses.

Every API and service checks these through here, so Pirsch domains, TinyTrail websites,
alternative domains, custom domains and auto-join hosts agree on what a host name is.
"""

from __future__ import annotations

import re
from typing import Any, TypeGuard
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

HOSTNAME_MAX = 253  # DNS: 253 characters of dotted labels
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME_RE = re.compile(rf"^(?=.{{1,{HOSTNAME_MAX}}}$){_LABEL}(?:\.{_LABEL})*$")
_SUBDOMAIN_RE = re.compile(rf"^{_LABEL}$")
_UUID_RE = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE
)

# An email address as people type it; nothing is sent to check it.
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")

HOSTNAME_PROBLEM = "must be a host name like example.com (no scheme, port or path)"
SUBDOMAIN_PROBLEM = "must be 1-63 letters, digits or hyphens"


def normal_hostname(value: str) -> str:
    """What is stored and compared: lower case, no surrounding space, no trailing dot."""
    return value.strip().lower().rstrip(".")


def is_hostname(value: str) -> bool:
    """A DNS host name of letters, digits and hyphens (after `normal_hostname`)."""
    return bool(_HOSTNAME_RE.fullmatch(value))


def is_subdomain(value: str) -> bool:
    return bool(_SUBDOMAIN_RE.fullmatch(value))


def is_timezone(name: str) -> bool:
    """An IANA time zone name this machine knows."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def is_uuid(value: Any) -> TypeGuard[str]:
    """A UUID in its 36-character text form: the form of every site, account and user id."""
    return isinstance(value, str) and bool(_UUID_RE.fullmatch(value))


def is_email(value: Any) -> TypeGuard[str]:
    """An email address (local part @ host name), as users and invitations carry them."""
    return isinstance(value, str) and bool(EMAIL_RE.match(value))
