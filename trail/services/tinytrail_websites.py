"""TinyTrail websites: validation of domain, content groups and excluded IPs; create, update, delete.

A website is a Pirsch domain (one `Site` record): TinyTrail fills `hostname`, a unique Pirsch
`subdomain` derived from it, `content_groups` and `excluded_ips` (which `MetaStore.site_rules`
hands to the engine as IP filters, so excluded traffic is dropped by the hot path).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from trail.errors import FieldError
from trail.storage.meta import MetaStore, Principal, Site
from trail.validation import is_hostname, normal_hostname

MAX_GROUPS = 100
MAX_EXCLUDED = 1000


class WebsiteError(FieldError):
    """A bad field of a website body; `field` names it."""


def to_json(site: Site) -> dict[str, Any]:
    return {
        "id": site.id,
        "accountId": site.account_id,
        "domain": site.hostname,
        "contentGroups": site.content_groups,
        "excludedIps": site.excluded_ips,
        "createdAt": site.def_time,
    }


def parse_domain(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise WebsiteError("domain", "required: a domain name like example.com")
    domain = normal_hostname(value)
    if not is_hostname(domain):
        raise WebsiteError(
            "domain", "must be letters, digits, hyphens and dots (max 253), no scheme or path"
        )
    return domain


def parse_content_groups(value: Any) -> list[dict[str, str]]:
    """[{name, pattern}]: a pattern is a path where `*` matches any run of characters."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_GROUPS:
        raise WebsiteError(
            "content_groups", f"must be an array of at most {MAX_GROUPS} {{name, pattern}} objects"
        )
    out = []
    for i, item in enumerate(value):
        where = f"content_groups[{i}]"
        if not isinstance(item, dict):
            raise WebsiteError(where, "must be an object {name, pattern}")
        name, pattern = item.get("name"), item.get("pattern")
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise WebsiteError(f"{where}.name", "required: a string of 1-100 characters")
        if not isinstance(pattern, str) or not pattern.startswith("/") or len(pattern) > 500:
            raise WebsiteError(
                f"{where}.pattern", "required: a path starting with / (max 500), * = any characters"
            )
        extra = set(item) - {"name", "pattern"}
        if extra:
            raise WebsiteError(f"{where}.{min(extra)}", "unknown field (only name and pattern)")
        out.append({"name": name.strip(), "pattern": pattern.strip()})
    return out


def parse_excluded_ips(value: Any) -> list[str]:
    """IP addresses and CIDR ranges, normalised (10.0.0.7/8 -> 10.0.0.0/8)."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_EXCLUDED:
        raise WebsiteError(
            "excluded_ips", f"must be an array of at most {MAX_EXCLUDED} IPs or CIDR ranges"
        )
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise WebsiteError(f"excluded_ips[{i}]", "must be a string")
        try:
            text = item.strip()
            out.append(
                str(ipaddress.ip_network(text, strict=False))
                if "/" in text
                else str(ipaddress.ip_address(text))
            )
        except ValueError:
            raise WebsiteError(
                f"excluded_ips[{i}]", f"{item!r} is not an IP address or CIDR range"
            ) from None
    return list(dict.fromkeys(out))


def _domain_taken(
    meta: MetaStore, account_id: str | None, domain: str, except_id: str = ""
) -> bool:
    return any(
        s.account_id == account_id and s.hostname == domain and s.id != except_id
        for s in meta.all_sites()
    )


def new_website(meta: MetaStore, principal: Principal, body: dict[str, Any]) -> tuple[Site, str]:
    """Validate a new website for the caller's account (or `account_id`, admins only): the site
    to create and the subdomain it would like (`services.sites` makes it unique)."""
    domain = parse_domain(body.get("domain"))
    groups = parse_content_groups(body.get("content_groups"))
    excluded = parse_excluded_ips(body.get("excluded_ips"))
    account_id = principal.account_id
    wanted = body.get("account_id")
    if wanted is not None and wanted != account_id:
        if principal.role != "admin":
            raise WebsiteError("account_id", "only admins may create websites in another account")
        if not isinstance(wanted, str) or meta.get_account(wanted) is None:
            raise WebsiteError("account_id", "account not found")
        account_id = wanted
    if _domain_taken(meta, account_id, domain):
        raise WebsiteError("domain", f"{domain} already exists in this account")
    site = Site(
        id="",
        hostname=domain,
        subdomain="",
        account_id=account_id,
        user_id=principal.user.id if principal.user else None,
        content_groups=groups,
        excluded_ips=excluded,
    )
    base = re.sub(r"[^a-z0-9-]", "-", domain)[:50].strip("-") or "site"
    return site, base


def update_website(meta: MetaStore, save: Any, site: Site, body: dict[str, Any]) -> Site:
    """Apply a PATCH body (at least one of domain, content_groups, excluded_ips)."""
    known = ("domain", "content_groups", "excluded_ips")
    if not any(k in body for k in known):
        raise WebsiteError("body", "provide at least one of domain, content_groups, excluded_ips")
    if "domain" in body:
        domain = parse_domain(body["domain"])
        if _domain_taken(meta, site.account_id, domain, except_id=site.id):
            raise WebsiteError("domain", f"{domain} already exists in this account")
        site.hostname = domain
    if "content_groups" in body:
        site.content_groups = parse_content_groups(body["content_groups"])
    if "excluded_ips" in body:
        site.excluded_ips = parse_excluded_ips(body["excluded_ips"])
    return save(site)
