"""Accounts (TinyTrail accounts, Pirsch organizations) and users: deleting them, in one place.

Creating an account is the same record for both APIs (an organization is an account with an
owner). Deleting an account removes its users, its sites with everything they own (their analytics
rows included), its memberships, invitations and themes; deleting a user removes its key, its
clients, memberships, invitations and preferences. Both APIs call these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trail.errors import ApiError
from trail.services import sites
from trail.storage.accounts import AccountStore
from trail.storage.meta import Account, User

if TYPE_CHECKING:
    from trail.context import Context


def account_store(ctx: Context) -> AccountStore:
    """Accounts and users with their recoverable API keys."""
    return AccountStore(ctx.meta, ctx.data_dir)


def create_account(ctx: Context, name: str, owner: User | None = None) -> Account:
    """A TinyTrail account (no owner) or, with an `owner`, a Pirsch organization."""
    return ctx.meta.create_account(
        name, organization=owner is not None, user_id=owner.id if owner else None
    )


def delete_account(ctx: Context, account_id: str) -> Account:
    """Delete an account and everything it owns; 404 when there is none."""
    account = ctx.meta.get_account(account_id)
    if account is None:
        raise ApiError(404, "account not found")
    removed = ctx.meta.delete_account(account_id)
    if removed is not None:
        sites.remove_files(ctx, removed)
    return account


def delete_organization(ctx: Context, account: Account, delete_domains: bool) -> None:
    """Delete an organization; its domains are deleted too, or go back to their creators."""
    for site in [s for s in ctx.meta.all_sites() if s.account_id == account.id]:
        if delete_domains:
            sites.delete_site(ctx, site.id)
        else:
            ctx.meta.update_site(site.id, {"account_id": home_account(ctx, site.user_id, account)})
    delete_account(ctx, account.id)


def home_account(ctx: Context, user_id: str | None, org: Account) -> str | None:
    """Where a site leaving an organization goes: its creator's own account (or the owner's)."""
    for uid in (user_id, org.user_id):
        user = ctx.meta.get_user(uid) if uid else None
        if user is not None:
            return user.account_id
    return None


def delete_user(ctx: Context, user_id: str) -> User:
    """Delete a user and everything that is theirs alone; 404 when there is none."""
    user = ctx.meta.get_user(user_id)
    removed = ctx.meta.delete_user(user_id)
    if user is None or removed is None:
        raise ApiError(404, "user not found")
    sites.remove_files(ctx, removed)
    return user
