"""What every DynamoDB item family shares: the client, (de)serialization, conditional
writes, paging, batch reads and writes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_ser = TypeSerializer()
_de = TypeDeserializer()


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items() if v is not None and v != ""}
    if isinstance(value, (list, tuple)):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, set)):
        return [_from_dynamo(v) for v in value]
    return value


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    """Plain dict -> DynamoDB attribute map (None and empty strings dropped)."""
    return {k: _ser.serialize(v) for k, v in _to_dynamo(item).items()}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = _from_dynamo({k: _de.deserialize(v) for k, v in item.items()})
    return data


class DynamoTable:
    """The table and its client (a boto3 client: thread-safe), shared by the item families."""

    client: Any
    table_name: str
    due_shards: int

    def _if(self, operation: str, **kwargs: Any) -> bool:
        """Run a conditional write; False (nothing changed) when its condition failed."""
        try:
            getattr(self.client, operation)(TableName=self.table_name, **kwargs)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _update(
        self,
        item: dict[str, Any],
        *,
        remove: list[str] = (),  # type: ignore[assignment]
        condition: str | None = None,
        extra_set: str | None = None,
        extra_values: dict[str, Any] | None = None,
        extra_names: dict[str, str] | None = None,
    ) -> None:
        """UpdateItem that SETs every present attribute of ``item`` and REMOVEs ``remove``."""
        present = {k: v for k, v in item.items() if k not in ("pk", "sk") and v not in (None, "")}
        names = {f"#{k}": k for k in [*present, *remove]} | (extra_names or {})
        values = {f":{k}": v for k, v in present.items()} | (extra_values or {})
        sets = [f"#{k} = :{k}" for k in present] + ([extra_set] if extra_set else [])
        expr = "SET " + ", ".join(sets)
        if remove:
            expr += " REMOVE " + ", ".join(f"#{k}" for k in remove)
        kwargs: dict[str, Any] = {}
        if condition:
            kwargs["ConditionExpression"] = condition
        self.client.update_item(
            TableName=self.table_name,
            Key=serialize({"pk": item["pk"], "sk": item["sk"]}),
            UpdateExpression=expr,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=serialize(values),
            **kwargs,
        )

    def _query_all(self, **kwargs: Any) -> Iterable[dict[str, Any]]:
        kwargs["TableName"] = self.table_name
        while True:
            resp = self.client.query(**kwargs)
            yield from resp.get("Items", [])
            if "LastEvaluatedKey" not in resp:
                return
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def _batch_get(self, keys: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """BatchGetItem in chunks of 100, retrying unprocessed keys; items in key order."""
        for start in range(0, len(keys), 100):
            chunk = keys[start:start + 100]
            found: dict[tuple[str, str], dict[str, Any]] = {}
            pending: dict[str, Any] = {self.table_name: {"Keys": chunk}}
            for _attempt in range(8):
                resp = self.client.batch_get_item(RequestItems=pending)
                for item in resp.get("Responses", {}).get(self.table_name, []):
                    found[(item["pk"]["S"], item["sk"]["S"])] = item
                pending = resp.get("UnprocessedKeys") or {}
                if not pending:
                    break
            else:
                raise RuntimeError(f"DynamoDB left {len(pending[self.table_name]['Keys'])} keys unprocessed")
            yield from (found[key] for k in chunk if (key := (k["pk"]["S"], k["sk"]["S"])) in found)

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        for start in range(0, len(requests), 25):
            pending = {self.table_name: requests[start:start + 25]}
            for _attempt in range(8):
                resp = self.client.batch_write_item(RequestItems=pending)
                pending = resp.get("UnprocessedItems") or {}
                if not pending:
                    break
            else:
                raise RuntimeError(f"DynamoDB left {len(pending[self.table_name])} items unprocessed")
