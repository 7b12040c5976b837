"""The signing scripts, declared: keys, epochs, recovery, the heartbeat."""

from __future__ import annotations

from revocast.store.contracts import Contract

PUBLISH_KEY = Contract(
    "publish_key", "global", str,
    args=(("kid", str), ("jwk", str), ("epoch", str), ("activate", bool), ("actor", str),
          ("sealed", str)),  # epoch, sealed: '' = none
)  # fmt: skip

REVOKE_KEY = Contract(
    "revoke_key", "global", str,
    args=(("kid", str), ("actor", str), ("reason", str), ("actor_kind", str)),
)  # fmt: skip

RECOVER = Contract(
    "recover", "global", int,
    args=(("old_epoch", str), ("new_epoch", str), ("new_kid", str), ("jwk", str),
          ("sealed", str)),
    rest_args="kids",  # keys the caller holds, revoked too
)  # fmt: skip

ADOPT_EPOCH = Contract(
    "adopt_epoch", "none", int,
    keys=("EPOCH",),
    args=(("new_epoch", str), ("old_epoch", str)),  # old_epoch: '' = none
)  # fmt: skip

HEARTBEAT = Contract("heartbeat", "none", list, keys=("HEARTBEAT", "EPOCH"))
