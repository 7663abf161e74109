"""Sites (Pirsch domains, TinyTrail websites): creating and deleting them, the same from both APIs.

Deleting a site removes everything it owns: its meta records (clients and their keys, access
links, alternative domains, filters, members, snippets, views, goals, funnels, webhooks, email
report settings, short links, traffic alerts) in one transaction, then its analytics rows on
disk. Rows still on their way to disk for it (the WAL, unsealed segments) are swept by the
maintenance process, which removes the files of any site that no longer exists. The same
transaction records the deletion in the meta store (trail.storage.deletion_log), from which
every node's ClickHouse shipper removes the site's rows there (trail.clickhouse.deletions).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trail.errors import FieldError
from trail.storage import imported, layout
from trail.storage.cascade import Removed
from trail.storage.meta import MetaStore, Site, random_alnum

if TYPE_CHECKING:
    from trail.context import Context

log = logging.getLogger("trail.sites")
SUBDOMAIN_ATTEMPTS = 5


def domain_record(ctx: Context, site: Site, user_role: str = "Owner") -> dict[str, Any]:
    """The Pirsch domain object of a site, with whether it holds imported statistics."""
    has_imported = imported.has_any(ctx.data_dir, site.id)
    return site.to_pirsch(user_role, imported_statistics=has_imported)


def create_site(ctx: Context, site: Site) -> Site:
    """Store a new site; 400 naming `subdomain` when another site has it."""
    try:
        return ctx.meta.create_site(site)
    except KeyError:
        raise FieldError("subdomain", "already in use") from None


def create_site_with_free_subdomain(ctx: Context, site: Site, base: str) -> Site:
    """Store a new site under the subdomain `base`, or `base-xxxxxx` when that one is taken
    (Pirsch subdomains are unique across the server; TinyTrail websites never choose one)."""
    for attempt in range(SUBDOMAIN_ATTEMPTS):
        subdomain = base if attempt == 0 else f"{base}-{random_alnum(6).lower()}"
        try:
            return ctx.meta.create_site(dataclasses.replace(site, subdomain=subdomain))
        except KeyError:
            continue
    raise FieldError("domain", "could not allocate a unique subdomain, try again")


def delete_site(ctx: Context, site_id: str) -> bool:
    """Delete a site and everything it owns; False when there is no such site."""
    removed = ctx.meta.delete_site(site_id)
    if removed is None:
        return False
    remove_files(ctx, removed)
    return True


def remove_files(ctx: Context, removed: Removed) -> None:
    """Remove what a meta deletion left on disk: the deleted sites' analytics rows and the
    folders of their themes and of deleted themes."""
    themes = Path(ctx.data_dir) / "themes"
    for site_id in removed.site_ids:
        layout.remove_site_data(ctx.data_dir, site_id)
        shutil.rmtree(themes / f"domain-{site_id}", ignore_errors=True)
        log.info("deleted the stored rows of site %s", site_id)
    for theme_id in removed.theme_ids:
        shutil.rmtree(themes / theme_id, ignore_errors=True)


def sweep_deleted_sites(meta: MetaStore, data_dir: Path) -> list[str]:
    """Remove the rows of sites that no longer exist: those sealed from the WAL after their site
    was deleted, or left by a deletion interrupted between the meta store and the disk.

    The directories are listed before the sites are read, so a site created meanwhile (which
    has no rows yet when it first appears) is never mistaken for a deleted one."""
    on_disk = {
        site_id for site_id in layout.stored_site_ids(data_dir) if layout.is_site_id(site_id)
    }
    existing = {site.id for site in meta.all_sites()}
    gone = sorted(on_disk - existing)
    for site_id in gone:
        layout.remove_site_data(data_dir, site_id)
        log.info("removed the stored rows of deleted site %s", site_id)
    return gone
