"""Who acts from the command line, and who may make tokens (issue 11).

* :func:`authenticate`: a token (``--token`` or ``TRUCEWATCH_TOKEN``) resolved to its
  principal through the store; none, an unknown or a revoked one is refused
  (AuthenticationError, exit 2).
* :func:`issue_token`: ``trucewatch tokens new``. While the store has never had an admin
  (a fresh store, or one migrated from tokens without one), the one token that may be
  made without a token is the first admin's: the *bootstrap*. From then on every token,
  of any role, needs an admin's token. A name already taken (by anyone, ever: revoked
  and disabled principals keep their names) is refused unless ``reissue`` asks for
  another token of that same principal; a reissue may change its role (an admin's
  decision; an admin stays an admin).
* :func:`revoke`: ``trucewatch tokens revoke``, by an admin (or anyone before the
  bootstrap): the principal's live tokens, or one of them; ``disable`` also retires the
  principal for good. Nobody can revoke the last live admin token.

The store's own methods (``add_token``, ``add_principal``...) are primitives for code
that already holds the file; the policy lives here, at the door users come through.
"""

from __future__ import annotations

from trucewatch.errors import AuthenticationError, PermissionDeniedError
from trucewatch.model.principal import PrincipalRecord
from trucewatch.storage.protocols import PrincipalStore

ENV = "TRUCEWATCH_TOKEN"


def authenticate(store: PrincipalStore, token: str | None) -> PrincipalRecord:
    """The live principal of ``token``, or AuthenticationError."""
    if token is None or not token.strip():
        raise AuthenticationError(
            "no token: review and token commands act as an authenticated principal",
            fix=f"set {ENV} to your token (or give --token); an admin makes one with "
                "`trucewatch tokens new NAME --role analyst`")
    owner = store.token_owner(token.strip())
    if owner is None:
        raise AuthenticationError("unknown or revoked token",
                                  fix="ask an admin for a new one: trucewatch tokens new "
                                      "NAME --role R --reissue")
    return store.principal(owner.id)


def _admin(store: PrincipalStore, token: str | None, what: str) -> PrincipalRecord:
    if token is None or not token.strip():
        raise AuthenticationError(f"to {what} give an admin's token",
                                  fix=f"set {ENV} to an admin's token, or give --token")
    p = authenticate(store, token)
    if p.role != "admin":
        raise PermissionDeniedError(f"{p.display_name} is {p.role}: only an admin may {what}",
                                    fix="use an admin's token")
    return p


def issue_token(store: PrincipalStore, name: str, role: str, party: str | None = None, *,
                token: str | None = None, reissue: bool = False) -> tuple[str, str]:
    """Make a token under the rules above; returns (who made it, the token)."""
    if store.bootstrap_open():
        if role != "admin":
            raise PermissionDeniedError(
                "this store has no admin yet: its first token must be an admin's "
                "(the bootstrap)",
                fix="run `trucewatch tokens new NAME --role admin --store S` first, then "
                    f"make the others with {ENV} set to the token it prints")
        actor = "bootstrap"
    else:
        actor = _admin(store, token, "create a token").display_name
    return actor, store.add_token(name, role, party, actor=actor, reissue=reissue)


def revoke(store: PrincipalStore, name: str, *, token: str | None, token_id: str | None = None,
           disable: bool = False) -> tuple[str, int]:
    """Revoke under the rules above; returns (who revoked, how many tokens)."""
    actor = ("bootstrap" if store.bootstrap_open()
             else _admin(store, token, "revoke a token").display_name)
    return actor, store.revoke_token(name, actor=actor, token_id=token_id, disable=disable)
