"""Principals and API tokens (issue 11). A principal has a stable id and a canonical
name that is never given twice; tokens belong to it (only a token's SHA-256 is kept).
These are the store's primitives: who may create a token is decided by
review.principals (the CLI's policy: admins, bootstrap)."""

from __future__ import annotations

import hashlib
import secrets
from typing import NamedTuple

import sqlalchemy as sa

from trucewatch.errors import NotFoundError, PrincipalError
from trucewatch.model.principal import (
    PrincipalRecord,
    canonical_name,
    display_name,
    legacy_key,
    skeleton,
)
from trucewatch.storage.database import now
from trucewatch.storage.repositories.base import Repository, dicts


class TokenOwner(NamedTuple):
    """Who a valid token belongs to: the principal's display name, role, party and id."""

    name: str
    role: str
    party: str | None
    id: str


class PrincipalRepository(Repository):
    """Principals and their tokens."""

    def _principal_row(self, where: str, arg: str) -> PrincipalRecord | None:
        p = self._t("principals")
        row = self._x(sa.select(p.c.id, p.c.name, p.c.display_name, p.c.role, p.c.party,
                                p.c.created_at, p.c.disabled_at).where(p.c[where] == arg)
                      ).first()
        return PrincipalRecord(*row) if row else None

    def principal(self, principal_id: str) -> PrincipalRecord:
        found = self._principal_row("id", principal_id)
        if found is None:
            raise NotFoundError(f"no principal {principal_id}",
                                fix="list principals with `trucewatch tokens list`")
        return found

    def principal_named(self, name: str) -> PrincipalRecord | None:
        """The principal whose canonical name is ``name``'s (ANNA finds anna)."""
        return self._principal_row("name", legacy_key(name))

    def principals(self) -> list[PrincipalRecord]:
        p = self._t("principals")
        return [PrincipalRecord(*r) for r in self._x(
            sa.select(p.c.id, p.c.name, p.c.display_name, p.c.role, p.c.party,
                      p.c.created_at, p.c.disabled_at).order_by(p.c.created_at, p.c.name))]

    def bootstrap_open(self) -> bool:
        """True while no principal has ever been an admin (admins stay admins): then the
        one token that may be made without an admin's is the first admin's."""
        p = self._t("principals")
        return self._x(sa.select(sa.literal(1)).where(p.c.role == "admin").limit(1)
                       ).first() is None

    def add_principal(self, name: str, role: str, party: str | None = None,
                      actor: str = "admin") -> PrincipalRecord:
        """A new principal (no token yet); its name must be valid and not taken."""
        with self._transaction():
            return self._new_principal(name, role, party, actor)

    def _new_principal(self, name: str, role: str, party: str | None,
                       actor: str) -> PrincipalRecord:
        canonical = canonical_name(name)
        taken = self._principal_row("name", canonical)
        if taken is not None:
            state = f"disabled {taken.disabled_at}" if taken.disabled_at else "active"
            raise PrincipalError(
                f"the name {display_name(name)!r} is taken by principal {taken.id} "
                f"({taken.display_name}, {taken.role}, {state}): a name is never given to "
                "a second person, not even after a revocation",
                fix="give --reissue to issue another token to that same person, or "
                    "choose another name")
        looks = skeleton(canonical)
        twin = next((q for q in self.principals() if q.name != canonical
                     and skeleton(q.name) == looks), None)
        if twin is not None:
            raise PrincipalError(
                f"the name {display_name(name)!r} looks like the name of principal "
                f"{twin.id} ({twin.display_name}, {twin.role}): written in other "
                "letters that look the same, it could impersonate them",
                fix="choose a name that does not look like another's (or give --reissue "
                    "to issue that same person another token)")
        rec = PrincipalRecord("p-" + secrets.token_hex(8), canonical, display_name(name),
                              role, party, now())
        self._bind("principals", [(rec.id,)], new=True)
        self._x(self._t("principals").insert().values(
            id=rec.id, name=rec.name, display_name=rec.display_name, role=rec.role,
            party=rec.party, created_at=rec.created_at, disabled_at=None))
        self._log(actor, "principal_created", rec.name, {
            "id": rec.id, "name": rec.name, "display_name": rec.display_name,
            "role": role, "party": party})
        return rec

    def add_token(self, name: str, role: str, party: str | None = None,
                  actor: str = "admin", reissue: bool = False) -> str:
        """A new token (shown once; only its SHA-256 is kept). Without ``reissue`` it is
        a new principal's, whose name must not be taken; with it, another token of the
        existing principal ``name`` (a different role or party changes the principal's;
        an admin stays an admin)."""
        raw = "tw_" + secrets.token_urlsafe(32)
        sha = hashlib.sha256(raw.encode()).hexdigest()
        pt = self._t("principals")
        with self._transaction():
            if not reissue:
                p = self._new_principal(name, role, party, actor)
            else:
                found = self.principal_named(name)
                if found is None:
                    raise PrincipalError(f"no principal named {display_name(name)!r} to "
                                         "reissue", fix="create it without --reissue")
                p = found
                if p.disabled_at:
                    raise PrincipalError(
                        f"{p.display_name} ({p.id}) was disabled at {p.disabled_at}: a "
                        "disabled principal gets no token again, and its name stays taken",
                        fix="issue the person a token under another name")
                if (role, party) != (p.role, p.party):
                    if p.role == "admin" and role != "admin":
                        raise PrincipalError(
                            f"{p.display_name} is an admin: an admin stays an admin",
                            fix="disable the principal (tokens revoke NAME --disable) and "
                                "create another")
                    self._bind("principals", [(p.id,)])
                    self._x(pt.update().where(pt.c.id == p.id).values(role=role, party=party))
                    self._log(actor, "principal_changed", p.name, {
                        "id": p.id, "role": role, "party": party, "was_role": p.role,
                        "was_party": p.party})
            self._bind("api_tokens", [(sha,)], new=True)
            self._x(self._t("api_tokens").insert().values(
                token_sha256=sha, principal_id=p.id, created_at=now(), revoked_at=None))
            self._log(actor, "token_created", p.name, {
                "principal": p.id, "role": role, "party": party, "token_sha256": sha})
        return raw

    def token_owner(self, raw: str) -> TokenOwner | None:
        """(name, role, party, id) of the principal of a valid token (not revoked, its
        principal not disabled), or None. ``name`` is the display name."""
        t, p = self._t("api_tokens"), self._t("principals")
        row = self._x(sa.select(p.c.display_name, p.c.role, p.c.party, p.c.id)
                      .select_from(t.join(p, p.c.id == t.c.principal_id))
                      .where(t.c.token_sha256 == hashlib.sha256(raw.encode()).hexdigest(),
                             t.c.revoked_at.is_(None), p.c.disabled_at.is_(None))).first()
        return TokenOwner(*row) if row else None

    def revoke_token(self, name: str, actor: str = "admin", token_id: str | None = None,
                     disable: bool = False) -> int:
        """Revoke the live tokens of principal ``name`` (only the one whose id, the
        first hex digits of its SHA-256, is ``token_id``, if given); ``disable``: the
        principal too, for good. The name stays taken either way. Refused when it would
        leave no admin with a live token. Returns how many tokens were revoked."""
        t, pt = self._t("api_tokens"), self._t("principals")
        with self._transaction():
            p = self.principal_named(name)
            if p is None:
                raise NotFoundError(f"no principal named {display_name(name)!r}",
                                    fix="list them with `trucewatch tokens list`")
            live = [r[0] for r in self._x(
                sa.select(t.c.token_sha256).where(t.c.principal_id == p.id,
                                                  t.c.revoked_at.is_(None))
                .order_by(t.c.created_at))
                if token_id is None or r[0].startswith(token_id.lower())]
            if not live and not disable:
                raise NotFoundError(
                    f"{p.display_name} has no live token"
                    + (f" with id {token_id}" if token_id else ""),
                    fix="list tokens with `trucewatch tokens list`")
            admin_tokens = self._x(
                sa.select(t.c.token_sha256, t.c.principal_id)
                .select_from(t.join(pt, pt.c.id == t.c.principal_id))
                .where(pt.c.role == "admin", pt.c.disabled_at.is_(None),
                       t.c.revoked_at.is_(None))).all()
            left = [sha for sha, pid in admin_tokens
                    if sha not in live and not (disable and pid == p.id)]
            if admin_tokens and not left:
                raise PrincipalError(
                    f"{p.display_name} is the last admin with a live token: revoking it "
                    "would leave nobody able to issue tokens",
                    fix=f"issue a new admin token first (tokens new {p.name} --role admin "
                        "--reissue, or another admin's), then revoke")
            stamp = now()
            self._bind("api_tokens", [(sha,) for sha in live])
            if live:
                self._x(t.update().where(t.c.token_sha256.in_(live)).values(revoked_at=stamp))
                self._log(actor, "token_revoked", p.name, {"principal": p.id,
                                                           "token_sha256": live})
            if disable and not p.disabled_at:
                self._bind("principals", [(p.id,)])
                self._x(pt.update().where(pt.c.id == p.id).values(disabled_at=stamp))
                self._log(actor, "principal_disabled", p.name, {"principal": p.id})
        return len(live)

    def tokens(self) -> list[dict[str, object]]:
        """Every token with its principal (never the token): name (display), role,
        party, created_at, revoked_at, principal_id, token_id (12 hex digits of its
        SHA-256), disabled_at (the principal's)."""
        t, p = self._t("api_tokens"), self._t("principals")
        return dicts(self._x(
            sa.select(p.c.display_name.label("name"), p.c.role, p.c.party, t.c.created_at,
                      t.c.revoked_at, p.c.id.label("principal_id"),
                      sa.func.substr(t.c.token_sha256, 1, 12).label("token_id"),
                      p.c.disabled_at)
            .select_from(t.join(p, p.c.id == t.c.principal_id))
            .order_by(t.c.created_at, p.c.name)))
