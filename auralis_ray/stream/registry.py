"""Which replica holds which `client_id`, so a reconnect replaces the older socket on any replica.

PROTOCOL: a second connection with a connected `client_id` replaces the first (close 4000). One
replica sees that by itself; when the kernel spreads connections over replicas sharing one port,
the older socket may sit on another replica. Replicas report what they accept (claims) and close
(releases); a claim of an id another replica holds queues an eviction for that replica, naming the
exact socket (its token), so a newer socket on the same replica is never closed by mistake.

Sans-I/O: the caller passes the clock; `actors/registry.py` serves it to the replicas.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Claim = tuple[str, int]  # (client_id, token of that socket on its replica)


@dataclass
class _Owner:
    last_seen: float
    evictions: list[Claim] = field(default_factory=list)


class ClientIdRegistry:
    """client_id -> (replica, token); evictions queued per replica."""

    def __init__(self, owner_timeout_sec: float = 120.0):
        self.owner_timeout_sec = owner_timeout_sec
        self.holders: dict[str, tuple[str, int]] = {}
        self.owners: dict[str, _Owner] = {}

    def _owner(self, owner: str, now: float) -> _Owner:
        entry = self.owners.get(owner)
        if entry is None:
            entry = self.owners[owner] = _Owner(now)
        entry.last_seen = now
        return entry

    def update(self, owner: str, claims: list[Claim], releases: list[Claim], now: float) -> list[str]:
        """Apply one replica's claims and releases (in that order); return the owners given evictions."""
        self._owner(owner, now)
        evicted: list[str] = []
        for client_id, token in claims:
            previous = self.holders.get(client_id)
            self.holders[client_id] = (owner, token)
            if previous is not None and previous[0] != owner and previous[0] in self.owners:
                self.owners[previous[0]].evictions.append((client_id, previous[1]))
                evicted.append(previous[0])
        for client_id, token in releases:
            if self.holders.get(client_id) == (owner, token):
                del self.holders[client_id]
        return evicted

    def take_evictions(self, owner: str, now: float) -> list[Claim]:
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
