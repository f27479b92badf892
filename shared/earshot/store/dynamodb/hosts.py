"""Host slot items: the leases that cap the requests Earshot has in flight to one host,
across every worker (see :meth:`earshot.store.port.Store.acquire_host_slot`).

A host's slots are items ``SLOT#0 .. SLOT#<limit-1>`` in its own partition. Acquiring is
a conditional UpdateItem on the lowest slot this process does not hold (most hosts have
nobody else fetching them: one write, no read); when that is taken, a strongly consistent Query of the partition (which
slots hold a live lease) and a conditional UpdateItem on the lowest free slot. The
condition (the slot is free or its lease has lapsed) means two workers racing for one
slot cannot both win, and a
Lambda killed mid-batch holds its slot only until ``expires_at``. Releasing marks the
lease lapsed, conditional on the holder, so a late release never frees a slot someone
else has taken since. ``expires_at`` is also the table's TTL attribute: hosts no longer
fetched leave no items behind.
"""

from __future__ import annotations

import math
import threading
import uuid
from datetime import UTC, datetime

from earshot.store.dynamodb import keys
from earshot.store.dynamodb.base import DynamoTable, deserialize, serialize
from earshot.store.port import HostLease, lease_expiry_s

# A lost race re-reads the slots; beyond this many the host is busy enough to defer.
ACQUIRE_ATTEMPTS = 3


class HostItems(DynamoTable):
    # The slots this process holds, per host (only a hint for the first, blind attempt).
    _held: dict[str, set[int]]
    _held_lock: threading.Lock

    def acquire_host_slot(self, host: str, *, limit: int, lease_s: float, now: datetime) -> HostLease | None:
        now_s = math.floor(now.timestamp())
        expires_s = lease_expiry_s(now, lease_s)
        # First try blind the lowest slot this process does not hold: a host nobody else is
        # fetching costs one write per lease, no read.
        with self._held_lock:
            held = self._held.setdefault(host, set())
            # None: every slot is ours, unless some lapsed; the Query below tells.
            candidate: int | None = next((slot for slot in range(limit) if slot not in held), None)
        for _attempt in range(ACQUIRE_ATTEMPTS):
            if candidate is not None:
                holder = uuid.uuid4().hex
                if self._if(
                    "update_item", Key=serialize(keys.host_slot(host, candidate)),
                    UpdateExpression="SET holder = :holder, expires_at = :expires",
                    ConditionExpression="attribute_not_exists(expires_at) OR expires_at <= :now",
                    ExpressionAttributeValues=serialize({":holder": holder, ":expires": expires_s, ":now": now_s}),
                ):
                    with self._held_lock:
                        self._held.setdefault(host, set()).add(candidate)
                    return HostLease(host=host, slot=candidate, holder=holder,
                                     expires_at=datetime.fromtimestamp(expires_s, UTC))
            live = {keys.slot_of_sk(item["sk"]) for item in map(deserialize, self._query_all(
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues=serialize({":pk": keys.host_pk(host)}),
                ProjectionExpression="sk, expires_at",
                ConsistentRead=True,
            )) if item.get("expires_at", 0) > now_s}
            candidate = next((slot for slot in range(limit) if slot not in live), None)
            if candidate is None:
                return None
        return None

    def release_host_slot(self, lease: HostLease, *, now: datetime) -> None:
        with self._held_lock:
            self._held.get(lease.host, set()).discard(lease.slot)
        # Lapsed at once (expires_at <= now); the TTL removes the item later. Conditional
        # on the holder: a slot taken over after this lease lapsed stays with its taker.
        self._if(
            "update_item", Key=serialize(keys.host_slot(lease.host, lease.slot)),
            UpdateExpression="SET expires_at = :now REMOVE holder",
            ConditionExpression="holder = :holder",
            ExpressionAttributeValues=serialize({":holder": lease.holder, ":now": math.floor(now.timestamp())}),
        )
