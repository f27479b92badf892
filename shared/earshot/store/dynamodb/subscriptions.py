"""Subscriber, confirmation-counter, token, send-claim and rendered-digest items."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from earshot.models import Subscriber, TokenRecord
from earshot.store.dynamodb import keys
from earshot.store.dynamodb.base import DynamoTable, deserialize, serialize
from earshot.store.port import iso


class SubscriptionItems(DynamoTable):
    # ========================================================== subscriptions
    # (subscriber, token and digest-claim items)
    #
    #   item               pk                     sk                        notes
    #   -----------------  ---------------------  ------------------------  ---------------------------
    #   subscriber         ADDR#<address_hash>    SUB#<topic>               type: SUBSCRIBERS#<topic> /
    #                                                                       <address_hash>, only while
    #                                                                       confirmed (sparse)
    #   confirm counter    ADDR#<address_hash>    CONFIRMS#<yyyy-mm-dd>     TTL expires_at
    #   send claim         ADDR#<address_hash>    SENT#<topic>#<iso week>   TTL expires_at
    #   token              TOKEN#<sha256>         TOKEN                     TTL expires_at
    #   rendered digest    DIGEST#<topic>         WEEK#<iso week>           TTL expires_at
    #
    # - One partition per address: a bounce for an address finds all its subscriptions
    #   with one Query, and its daily confirmation counter sits beside them.
    # - The digest lists recipients from the sparse ``type`` index, which holds confirmed
    #   subscribers only, so it never reads unsubscribed or bounced ones.
    # - Idempotency uses a conditional-put claim per (topic, ISO week, address) rather than
    #   Powertools Idempotency: the key is the business key itself (not a payload hash),
    #   the claim sits in the subscriber's partition as the record of what was sent, and
    #   one batch message covers many recipients, each needing its own at-most-once
    #   guard, which Powertools' one-record-per-invocation model does not give.
    # - ``expires_at`` (epoch seconds) is the table's TTL attribute. TTL deletion lags by
    #   up to days, so code also checks expiry itself (tokens.verify).

    def _subscriber_item(self, sub: Subscriber) -> dict[str, Any]:
        data = sub.model_dump(mode="json")
        item = {**keys.subscriber(sub.address_hash, sub.topic), **data}
        if sub.status == "confirmed":
            item["type_pk"] = keys.subscribers_type_pk(sub.topic)
            item["type_sk"] = sub.address_hash
        return item

    @staticmethod
    def _subscriber_from_item(item: dict[str, Any]) -> Subscriber:
        data = deserialize(item)
        return Subscriber.model_validate({k: v for k, v in data.items() if k in Subscriber.model_fields})

    def get_subscriber(self, address_hash: str, topic: str) -> Subscriber | None:
        """The :class:`~earshot.models.Subscriber` or None (strongly consistent read)."""
        resp = self.client.get_item(
            TableName=self.table_name, ConsistentRead=True,
            Key=serialize(keys.subscriber(address_hash, topic)),
        )
        return self._subscriber_from_item(resp["Item"]) if "Item" in resp else None

    def save_subscriber(self, sub: Subscriber) -> bool:
        """Write a subscriber if nobody else wrote it since it was read (optimistic lock on
        ``version``); the stored version becomes ``sub.version + 1``. False on a conflict."""
        item = self._subscriber_item(sub) | {"version": sub.version + 1}
        cond = "attribute_not_exists(pk)" if sub.version == 0 else "version = :v"
        kwargs: dict[str, Any] = {}
        if sub.version:
            kwargs["ExpressionAttributeValues"] = serialize({":v": sub.version})
        return self._if(
            "put_item", Item=serialize(item),
            ConditionExpression=cond, **kwargs,
        )

    def subscriptions_of_address(self, address_hash: str) -> list[Subscriber]:
        """Every subscription (any status) of one address."""
        return [self._subscriber_from_item(i) for i in self._query_all(
            KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
            ExpressionAttributeValues=serialize({":p": keys.address_pk(address_hash), ":s": "SUB#"}),
        )]

    def confirmed_subscribers(self, topic: str) -> Iterator[Subscriber]:
        """Confirmed subscribers of a topic, from the sparse ``type`` index (eventually
        consistent: a confirmation made a second ago may miss this week's digest)."""
        for item in self._query_all(
            IndexName=keys.TYPE_INDEX, KeyConditionExpression="type_pk = :t",
            ExpressionAttributeValues=serialize({":t": keys.subscribers_type_pk(topic)}),
        ):
            yield self._subscriber_from_item(item)

    def count_confirmation_mail(self, address_hash: str, request_id: str, *, now: datetime, window: timedelta,
                                limit: int) -> bool:
        """Count a confirmation mail in the address's rolling window: one item holding
        request id -> epoch second of the mails still inside the window (at most ``limit``
        of them), rewritten under an optimistic lock on ``version``."""
        key = keys.confirm_window(address_hash)
        since, at = int((now - window).timestamp()), int(now.timestamp())
        for _ in range(8):
            resp = self.client.get_item(TableName=self.table_name, ConsistentRead=True, Key=serialize(key))
            item = deserialize(resp["Item"]) if "Item" in resp else None
            recent = {k: int(v) for k, v in (item or {}).get("mails", {}).items() if int(v) > since}
            if request_id in recent:
                return True
            if len(recent) >= limit:
                return False
            recent[request_id] = at
            version = int((item or {}).get("version", 0))
            new = {**key, "mails": recent, "version": version + 1,
                   "expires_at": max(recent.values()) + int(window.total_seconds())}
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"} if item is None else {
                "ConditionExpression": "version = :v", "ExpressionAttributeValues": serialize({":v": version})}
            if self._if("put_item", Item=serialize(new), **condition):
                return True
        raise RuntimeError("the confirmation window kept changing")

    # -- tokens (stored only as hashes; see tokens.py)
    @staticmethod
    def _token_item(record: TokenRecord) -> dict[str, Any]:
        return {**keys.token(record.token_hash), **record.model_dump(mode="json"),
                "expires_at": int(record.expires_at.timestamp())}

    def put_token(self, record: TokenRecord) -> None:
        self.client.put_item(TableName=self.table_name, Item=serialize(self._token_item(record)))

    def get_token(self, token_hash: str) -> TokenRecord | None:
        resp = self.client.get_item(TableName=self.table_name, ConsistentRead=True,
                                    Key=serialize(keys.token(token_hash)))
        if "Item" not in resp:
            return None
        data = deserialize(resp["Item"])
        return TokenRecord.model_validate({k: v for k, v in data.items() if k in TokenRecord.model_fields})

    def delete_token(self, token_hash: str) -> bool:
        """Delete a token; False if it was already gone (a single-use token used twice)."""
        return self._if(
            "delete_item", ConditionExpression="attribute_exists(pk)",
            Key=serialize(keys.token(token_hash)),
        )

    # -- digest send claims: at most one mail per (topic, ISO week, address)
    def claim_send(self, address_hash: str, topic: str, week: str, *, now: datetime, expires_at: int,
                   token: TokenRecord) -> bool:
        """Claim the right to mail this address this week's digest, and store its
        unsubscribe token, in one transaction; False if claimed before (already sent, or a
        previous attempt died mid-send: never risk a second mail).

        The SDK repeats a transaction whose answer was lost (with the same client request
        token, which DynamoDB answers as a success for ten minutes); a repeat that still
        finds the claim, with this token's hash in it, is this caller's own claim."""
        key = keys.send_claim(address_hash, topic, week)
        claim = {**key, "state": "claimed", "claimed_at": iso(now), "expires_at": expires_at,
                 "token_hash": token.token_hash}
        try:
            self.client.transact_write_items(TransactItems=[
                {"Put": {"TableName": self.table_name, "Item": serialize(claim),
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Put": {"TableName": self.table_name, "Item": serialize(self._token_item(token))}},
            ])
        except self.client.exceptions.TransactionCanceledException as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" not in reasons:
                raise  # a conflict or a throttle: nothing was written; the caller retries later
            resp = self.client.get_item(TableName=self.table_name, ConsistentRead=True, Key=serialize(key))
            held: str | None = resp.get("Item", {}).get("token_hash", {}).get("S")
            return held == token.token_hash
        return True

    def finish_claim(self, address_hash: str, topic: str, week: str, *, state: str, now: datetime,
                     message_id: str | None = None, detail: str | None = None) -> None:
        """Record how a claimed send ended: ``sent`` (with SES's message id), ``rejected``
        or ``unknown`` (no answer from SES)."""
        values = {":s": state, ":t": iso(now), ":m": message_id or "-", ":d": detail or "-"}
        self.client.update_item(
            TableName=self.table_name,
            Key=serialize(keys.send_claim(address_hash, topic, week)),
            UpdateExpression="SET #s = :s, finished_at = :t, message_id = :m, detail = :d",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues=serialize(values),
        )

    def release_claim(self, address_hash: str, topic: str, week: str) -> None:
        """Drop a claim still in state ``claimed`` (SES certainly sent nothing); a claim
        that already ended (sent, rejected) stays."""
        self._if("delete_item", ConditionExpression="#s = :claimed",
                 ExpressionAttributeNames={"#s": "state"},
                 ExpressionAttributeValues=serialize({":claimed": "claimed"}),
                 Key=serialize(keys.send_claim(address_hash, topic, week)))

    def get_claim_state(self, address_hash: str, topic: str, week: str) -> str | None:
        resp = self.client.get_item(TableName=self.table_name, ConsistentRead=True,
                                    Key=serialize(keys.send_claim(address_hash, topic, week)))
        return resp["Item"]["state"]["S"] if "Item" in resp else None

    # -- rendered digests: rendered once per (topic, week), read by every send batch
    def put_rendered_digest(self, topic: str, week: str, payload: bytes, *, expires_at: int) -> bool:
        """Store a week's rendered digest unless one exists (a re-run keeps the first, so
        every batch of that week mails the same content). False if one existed."""
        return self._if(
            "put_item", ConditionExpression="attribute_not_exists(pk)",
            Item={**serialize(keys.rendered_digest(topic, week)),
                "payload": {"B": payload}, "expires_at": {"N": str(expires_at)}},
        )

    def get_rendered_digest(self, topic: str, week: str) -> bytes | None:
        resp = self.client.get_item(TableName=self.table_name, ConsistentRead=True,
                                    Key=serialize(keys.rendered_digest(topic, week)))
        return bytes(resp["Item"]["payload"]["B"]) if "Item" in resp else None
