"""A small, deterministic JSON-Schema instance generator for the mock model.

Theory of operation: `example_for(schema, rng)` walks the schema and builds the simplest
instance it can that satisfies it, drawing the free choices (which enum member, which words,
which number in range) from `rng`, so the same seed gives the same document. It covers what
structured-output schemas use in practice: `type` (object, array, string, integer, number,
boolean, null, or a list of these), `properties`/`required`, `minProperties`/`maxProperties`,
`items`/`prefixItems`/`minItems`/`maxItems`/`uniqueItems`, `enum`, `const`, string
`minLength`/`maxLength`/`format` (date, date-time, time, email, uri, uuid), numeric bounds
(inclusive and exclusive) and `multipleOf` for integers, `anyOf`/`oneOf` (the first option),
`allOf` (merged shallowly) and local `$ref`s (`#/$defs/...`). It does not attempt `pattern`,
`not`, or `if`/`then`/`else`; such a schema may get an invalid document, which the caller's
own validation then reports.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Mapping
from typing import Any

WORDS = (
    "amber", "bright", "calm", "delta", "eager", "fable", "garden", "harbor", "island", "jasper",
    "kettle", "lumen", "meadow", "nectar", "orbit", "pebble", "quartz", "river", "summit",
    "timber", "umber", "velvet", "willow", "yonder", "zephyr",
)  # fmt: skip

_MAX_DEPTH = 16


class _Generator:
    def __init__(self, root: Mapping[str, Any], rng: random.Random) -> None:
        self.root = root
        self.rng = rng

    def resolve(self, ref: str) -> Mapping[str, Any]:
        if not ref.startswith("#"):
            raise ValueError(f"only local $refs are supported, got {ref!r}")
        node: Any = self.root
        for part in filter(None, ref[1:].split("/")):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        if not isinstance(node, Mapping):
            raise ValueError(f"$ref {ref!r} does not point at a schema")
        return node

    def instance(self, schema: Any, depth: int = 0) -> Any:
        if schema is True or not isinstance(schema, Mapping):
            return self.string({})
        if depth > _MAX_DEPTH:
            return None
        if "$ref" in schema:
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            merged = {**self.resolve(schema["$ref"]), **siblings}
            return self.instance(merged, depth + 1)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self.rng.choice(list(schema["enum"]))
        for key in ("anyOf", "oneOf"):
            if schema.get(key):
                rest = {k: v for k, v in schema.items() if k != key}
                return self.instance({**rest, **schema[key][0]}, depth + 1)
        if schema.get("allOf"):
            return self.instance(self.merge(schema), depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = (
                "object" if "properties" in schema else "array" if "items" in schema else "string"
            )
        if kind == "object":
            return self.object(schema, depth)
        if kind == "array":
            return self.array(schema, depth)
        if kind == "integer":
            return self.integer(schema)
        if kind == "number":
            return self.number(schema)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        return self.string(schema)

    def merge(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            if "$ref" in part:
                part = self.resolve(part["$ref"])
            for key, value in part.items():
                if key == "properties":
                    merged["properties"] = {**merged.get("properties", {}), **value}
                elif key == "required":
                    merged["required"] = [*merged.get("required", []), *value]
                else:
                    merged.setdefault(key, value)
        return merged

    def object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        properties: Mapping[str, Any] = schema.get("properties", {})
        required = list(dict.fromkeys(schema.get("required", [])))
        optional = [name for name in properties if name not in required]
        room = schema.get("maxProperties")
        names = required + (optional if room is None else optional[: max(0, room - len(required))])
        result = {name: self.instance(properties.get(name, {}), depth + 1) for name in names}
        extra = schema.get("additionalProperties", True)
        while len(result) < schema.get("minProperties", 0) and extra is not False:
            result[f"field_{len(result)}"] = self.instance(extra, depth + 1)
        return result

    def array(self, schema: Mapping[str, Any], depth: int) -> list[Any]:
        prefix = list(schema.get("prefixItems", []))
        items = schema.get("items", {})
        low = max(schema.get("minItems", 0), len(prefix) if items is False else 0)
        high = schema.get("maxItems", max(low, 3))
        count = max(low, min(high, 1 + self.rng.randrange(3)))
        result: list[Any] = []
        attempts = 0
        while len(result) < count and attempts < count * 20:
            attempts += 1
            position = len(result)
            element_schema = prefix[position] if position < len(prefix) else items
            element = self.instance(element_schema, depth + 1)
            if schema.get("uniqueItems") and element in result:
                continue
            result.append(element)
        return result

    def string(self, schema: Mapping[str, Any]) -> str:
        fmt = schema.get("format")
        rng = self.rng
        date = f"20{rng.randrange(10, 30)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
        clock = f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:00Z"
        if fmt == "date":
            text = date
        elif fmt == "date-time":
            text = f"{date}T{clock}"
        elif fmt == "time":
            text = clock
        elif fmt == "email":
            text = f"{rng.choice(WORDS)}.{rng.choice(WORDS)}@example.com"
        elif fmt in ("uri", "url"):
            text = f"https://example.com/{rng.choice(WORDS)}/{rng.randrange(1000)}"
        elif fmt == "uuid":
            text = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        else:
            text = " ".join(rng.choice(WORDS) for _ in range(1 + rng.randrange(3)))
        low = schema.get("minLength", 0)
        high = schema.get("maxLength")
        while len(text) < low:
            text += " " + rng.choice(WORDS)
        if high is not None:
            text = text[:high]
        return text

    def integer(self, schema: Mapping[str, Any]) -> int:
        low, high = self.bounds(schema, step=1)
        low, high = math.ceil(low), math.floor(high)
        multiple = schema.get("multipleOf")
        if isinstance(multiple, int) and multiple > 0:
            first = math.ceil(low / multiple)
            last = max(first, math.floor(high / multiple))
            return int(multiple * self.rng.randint(first, last))
        return self.rng.randint(low, max(low, high))

    def number(self, schema: Mapping[str, Any]) -> float | int:
        if isinstance(schema.get("multipleOf"), int):
            return self.integer(schema)
        low, high = self.bounds(schema, step=0.0)
        exclusive_low = "exclusiveMinimum" in schema and low == schema["exclusiveMinimum"]
        exclusive_high = "exclusiveMaximum" in schema and high == schema["exclusiveMaximum"]
        value = round(self.rng.uniform(low, high), 2)
        if (
            (exclusive_low and value <= low)
            or (exclusive_high and value >= high)
            or not (low <= value <= high)
        ):
            value = (low + high) / 2
        return value

    def bounds(self, schema: Mapping[str, Any], step: float) -> tuple[float, float]:
        """Inclusive [low, high] (exclusive bounds moved in by `step`), defaulting to 0..100
        and widened around whichever bound is given."""
        low: float | None = schema.get("minimum")
        high: float | None = schema.get("maximum")
        if "exclusiveMinimum" in schema:
            low = max(low if low is not None else -math.inf, schema["exclusiveMinimum"] + step)
        if "exclusiveMaximum" in schema:
            high = min(high if high is not None else math.inf, schema["exclusiveMaximum"] - step)
        if low is None and high is None:
            return 0.0, 100.0
        if low is None:
            assert high is not None
            return min(0.0, high - 100), high
        if high is None:
            return low, low + 100
        return low, max(low, high)


def example_for(schema: Mapping[str, Any], rng: random.Random) -> Any:
    """A JSON value valid for `schema` (within the subset in the module docstring)."""
    return _Generator(schema, rng).instance(schema)
