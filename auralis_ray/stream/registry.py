"""Which replica holds which `client_id`, so a reconnect replaces the older socket on any replica.

docs/PROTOCOL.md: a second connection with a connected `client_id` replaces the first (close 4000). One
replica sees that by itself; when the kernel spreads connections over replicas sharing one port,
the older socket may sit on another replica. Replicas report what they accept (claims) and close
(releases). Of two sockets with one id, the one that connected later wins, whichever claim reaches
the registry first (replicas send in batches, so a reconnect 10 ms later may arrive first); the
other's replica gets an eviction naming that exact socket (its generation), so a newer socket on the
same replica is never closed by mistake.

Sans-I/O: the caller passes the clock; `actors/registry.py` serves it to the replicas.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# a socket's generation: the number its replica gave it on accepting it (counting up), so a newer socket
# with the same client_id is never taken for an older one
Claim = tuple[str, int, float]  # (client_id, generation, when it connected)
Socket = tuple[str, int]  # (client_id, generation): a release, or an eviction


@dataclass
class _Owner:
    """One replica as the registry knows it: when it was last heard, and its pending evictions."""

    last_seen: float
    evictions: list[Socket] = field(default_factory=list)


class ClientIdRegistry:
    """client_id -> (replica, generation, connected at); evictions queued per replica."""

    def __init__(self, owner_timeout_sec: float = 120.0):
        self.owner_timeout_sec = owner_timeout_sec
        self.holders: dict[str, tuple[str, int, float]] = {}
        self.owners: dict[str, _Owner] = {}

    def _owner(self, owner: str, now: float) -> _Owner:
        entry = self.owners.get(owner)
        if entry is None:
            entry = self.owners[owner] = _Owner(now)
        entry.last_seen = now
        return entry

    def update(self, owner: str, claims: list[Claim], releases: list[Socket], now: float) -> list[str]:
        """Apply one replica's claims and releases (in that order); return the owners given evictions."""
        self._owner(owner, now)
        evicted: list[str] = []
        for client_id, generation, connected_at in claims:
            claim = (owner, generation, connected_at)
            previous = self.holders.get(client_id)
            older, newer = (previous, claim) if previous is None or previous[2] <= connected_at else (claim, previous)
            self.holders[client_id] = newer
            # the same replica replaced its own older socket already
            if older is not None and older[0] != newer[0] and older[0] in self.owners:
                self.owners[older[0]].evictions.append((client_id, older[1]))
                evicted.append(older[0])
        for client_id, generation in releases:
            holder = self.holders.get(client_id)
            if holder is not None and holder[:2] == (owner, generation):
                del self.holders[client_id]
        return evicted

    def take_evictions(self, owner: str, now: float) -> list[Socket]:
        entry = self._owner(owner, now)
        taken, entry.evictions = entry.evictions, []
        return taken

    def prune(self, now: float) -> list[str]:
        """Forget replicas not heard from in `owner_timeout_sec` (gone without a word) and their ids."""
        gone = [o for o, entry in self.owners.items() if now - entry.last_seen > self.owner_timeout_sec]
        if gone:
            dead = set(gone)
            for owner in gone:
                del self.owners[owner]
            self.holders = {cid: holder for cid, holder in self.holders.items() if holder[0] not in dead}
        return gone
