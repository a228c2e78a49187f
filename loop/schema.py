"""A small declarative schema: validates request bodies and query strings, and describes
itself as JSON Schema for the generated OpenAPI document (one source for both).

Unknown keys are stripped (as the reference's zod schemas do) unless ``strict=True``.
Failures raise :class:`loop.errors.ValidationError` with ``details = {field: [message]}``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loop.clock import parse_iso
from loop.errors import ValidationError

_MISSING: Any = object()

#: Integers are signed 64-bit: what orjson can write back out and Redis can store as a number.
#: A larger one (``pullRequests[].number = 2**64``) used to pass and then fail every response.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: Deepest JSON a free-form value (payloads, webhook bodies) may nest. orjson writes at most 254
#: levels; a stored payload is served inside at most three more (``{"data": [{"payload": ...}]}``),
#: so 250 leaves every response encodable (and one level to spare).
MAX_JSON_DEPTH = 250
#: 9999-12-31T23:59:59.999Z: the last instant a timestamp field can hold (four-digit years on the wire).
MAX_TIMESTAMP_MS = 253_402_300_799_999


def json_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """How deep ``value`` nests (a scalar is 0, ``{}`` 1), counting no further than ``limit + 1``.

    Iterative, so a hostile body cannot exhaust the Python stack; each container is visited once.
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


class Invalid(Exception):
    """Raised by a field to report one problem at a path."""

    def __init__(self, problems: dict[str, list[str]]) -> None:
        super().__init__(problems)
        self.problems = problems


def _fail(path: str, msg: str) -> Invalid:
    return Invalid({path or "body": [msg]})


@dataclass
class Field:
    """Base field. ``nullable`` admits JSON null; ``default`` fills in when absent."""

    required: bool = False
    nullable: bool = False
    default: Any = _MISSING
    description: str = ""

    def check(self, value: Any, path: str) -> Any:
        raise NotImplementedError

    def clean(self, value: Any, path: str) -> Any:
        if value is None:
            if self.nullable:
                return None
            raise _fail(path, "must not be null")
        return self.check(value, path)

    def coerce(self, raw: str, path: str) -> Any:
        """Query-string values arrive as strings."""
        return self.clean(raw, path)

    def json_schema(self) -> dict[str, Any]:
        raise NotImplementedError

    def openapi(self) -> dict[str, Any]:
        schema = self.json_schema()
        if self.nullable:
            t = schema.get("type")
            if isinstance(t, str):
                schema["type"] = [t, "null"]
            else:
                schema = {"anyOf": [schema, {"type": "null"}]}
        if self.description:
            schema["description"] = self.description
        if self.default is not _MISSING:
            schema["default"] = self.default
        return schema


@dataclass
class Str(Field):
    min_len: int = 0
    max_len: int | None = None
    pattern: str | None = None

    def check(self, value: Any, path: str) -> Any:
        if not isinstance(value, str):
            raise _fail(path, "must be a string")
        if len(value) < self.min_len:
            raise _fail(path, "must not be empty" if self.min_len == 1 else f"must be at least {self.min_len} characters")
        if self.max_len is not None and len(value) > self.max_len:
            raise _fail(path, f"must be at most {self.max_len} characters")
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise _fail(path, f"must match the pattern {self.pattern}")
        return value

    def json_schema(self) -> dict[str, Any]:
        s: dict[str, Any] = {"type": "string"}
        if self.min_len:
            s["minLength"] = self.min_len
        if self.max_len is not None:
            s["maxLength"] = self.max_len
        if self.pattern:
            s["pattern"] = self.pattern
        return s


@dataclass
class Id(Str):
    """A reference to another row's id. When optional, ``""`` means no reference, stored as null
    (the reference's prompts send ``"parentId": ""`` for top-level issues), on create and update
    alike; a required id must not be empty."""

    min_len: int = 1

    def clean(self, value: Any, path: str) -> Any:
        if value == "" and not self.required:
            return None
        return super().clean(value, path)

    def json_schema(self) -> dict[str, Any]:
        if self.required:
            return super().json_schema()
        return {"type": "string", "description": 'an id; "" means none (null)'}


@dataclass
class Int(Field):
    minimum: int | None = INT64_MIN
    maximum: int | None = INT64_MAX

    def check(self, value: Any, path: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(path, "must be an integer")
        if isinstance(value, float):
            if not value.is_integer():
                raise _fail(path, "must be an integer")
            value = int(value)
        if self.minimum is not None and value < self.minimum:
            raise _fail(path, f"must be at least {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise _fail(path, f"must be at most {self.maximum}")
        return value

    def coerce(self, raw: str, path: str) -> Any:
        try:
            return self.clean(int(raw.strip()), path)
        except ValueError:
            raise _fail(path, "must be an integer") from None

    def json_schema(self) -> dict[str, Any]:
        s: dict[str, Any] = {"type": "integer"}
        if self.minimum is not None:
            s["minimum"] = self.minimum
        if self.maximum is not None:
            s["maximum"] = self.maximum
        return s


@dataclass
class Num(Field):
    minimum: float | None = None
    maximum: float | None = None

    def check(self, value: Any, path: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise _fail(path, "must be a number")
        if self.minimum is not None and value < self.minimum:
            raise _fail(path, f"must be at least {self.minimum:g}")
        if self.maximum is not None and value > self.maximum:
            raise _fail(path, f"must be at most {self.maximum:g}")
        return value

    def json_schema(self) -> dict[str, Any]:
        s: dict[str, Any] = {"type": "number"}
        if self.minimum is not None:
            s["minimum"] = self.minimum
        if self.maximum is not None:
            s["maximum"] = self.maximum
        return s


@dataclass
class Bool(Field):
    def check(self, value: Any, path: str) -> Any:
        if not isinstance(value, bool):
            raise _fail(path, "must be a boolean")
        return value

    def coerce(self, raw: str, path: str) -> Any:
        low = raw.lower()
        if low in ("true", "1"):
            return True
        if low in ("false", "0"):
            return False
        raise _fail(path, "must be true or false")

    def json_schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


@dataclass
class Enum(Field):
    values: Sequence[str] = ()

    def check(self, value: Any, path: str) -> Any:
        if not isinstance(value, str) or value not in self.values:
            raise _fail(path, "must be one of: " + ", ".join(self.values))
        return value

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.values)}


@dataclass
class Timestamp(Field):
    """An ISO 8601 timestamp (``2026-03-01T12:00:00Z``; no zone means UTC), cleaned to epoch ms."""

    def check(self, value: Any, path: str) -> Any:
        if isinstance(value, str):
            try:
                ms = parse_iso(value)
            except (ValueError, OverflowError):
                pass
            else:
                # Served back as ISO 8601 with a four-digit year: only 1970..9999 round-trips.
                if 0 <= ms <= MAX_TIMESTAMP_MS:
                    return ms
                raise _fail(path, "must be a time between 1970 and 9999")
        raise _fail(path, "must be an ISO 8601 timestamp, e.g. 2026-03-01T12:00:00Z")

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "date-time"}


@dataclass
class EnumList(Field):
    """A comma-separated query value whose items must each be one of ``values``."""

    values: Sequence[str] = ()

    def check(self, value: Any, path: str) -> Any:
        items = [v.strip() for v in str(value).split(",") if v.strip()]
        if not items:
            raise _fail(path, "must name at least one value")
        bad = [v for v in items if v not in self.values]
        if bad:
            raise _fail(path, f"unknown value {bad[0]!r}; expected a comma-separated list of: " + ", ".join(self.values))
        return list(dict.fromkeys(items))

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "description": "comma-separated list of: " + ", ".join(self.values)}


@dataclass
class Array(Field):
    item: Field = field(default_factory=lambda: Str())
    max_items: int | None = None

    def check(self, value: Any, path: str) -> Any:
        if not isinstance(value, list):
            raise _fail(path, "must be an array")
        if self.max_items is not None and len(value) > self.max_items:
            raise _fail(path, f"must have at most {self.max_items} items")
        return [self.item.clean(v, f"{path}.{i}") for i, v in enumerate(value)]

    def json_schema(self) -> dict[str, Any]:
        s: dict[str, Any] = {"type": "array", "items": self.item.openapi()}
        if self.max_items is not None:
            s["maxItems"] = self.max_items
        return s


@dataclass
class Record(Field):
    """Any JSON object (free-form payloads), at most :data:`MAX_JSON_DEPTH` levels deep."""

    def check(self, value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise _fail(path, "must be a JSON object")
        if json_depth(value) > MAX_JSON_DEPTH:
            raise _fail(path, f"must not nest deeper than {MAX_JSON_DEPTH} levels")
        return value

    def json_schema(self) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": True}


@dataclass
class Obj(Field):
    """A JSON object with known fields."""

    fields: Mapping[str, Field] = field(default_factory=dict)
    strict: bool = False
    ref: str | None = None

    def check(self, value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise _fail(path, "must be a JSON object")
        return _validate_fields(self.fields, value, self.strict, path)

    def json_schema(self) -> dict[str, Any]:
        if self.ref:
            return {"$ref": f"#/components/schemas/{self.ref}"}
        return object_schema(self.fields, self.strict)


def object_schema(fields: Mapping[str, Field], strict: bool = False) -> dict[str, Any]:
    s: dict[str, Any] = {
        "type": "object",
        "properties": {name: f.openapi() for name, f in fields.items()},
    }
    required = [name for name, f in fields.items() if f.required]
    if required:
        s["required"] = required
    if strict:
        s["additionalProperties"] = False
    return s


def _validate_fields(fields: Mapping[str, Field], data: Mapping[str, Any], strict: bool, path: str) -> dict[str, Any]:
    problems: dict[str, list[str]] = {}
    out: dict[str, Any] = {}
    if strict:
        for key in data:
            if key not in fields:
                problems.setdefault(f"{path}.{key}" if path else key, []).append("is not an allowed key")
    for name, f in fields.items():
        p = f"{path}.{name}" if path else name
        if name not in data:
            if f.required:
                problems.setdefault(p, []).append("is required")
            elif f.default is not _MISSING:
                out[name] = f.default() if callable(f.default) else f.default
            continue
        try:
            out[name] = f.clean(data[name], p)
        except Invalid as exc:
            for k, v in exc.problems.items():
                problems.setdefault(k, []).extend(v)
    if problems:
        raise Invalid(problems)
    return out


def summarize(problems: Mapping[str, list[str]]) -> str:
    """One readable sentence naming the first problem (and how many more)."""
    items = [(k, m) for k, msgs in problems.items() for m in msgs]
    first_key, first_msg = items[0]
    sentence = f"Invalid request: {first_key} {first_msg}"
    if len(items) > 1:
        sentence += f" (and {len(items) - 1} more problem{'s' if len(items) > 2 else ''})"
    return sentence + "."


@dataclass
class Body:
    """A request body schema."""

    fields: Mapping[str, Field]
    strict: bool = False
    min_fields: int = 0
    name: str | None = None

    def validate(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ValidationError("Request body must be a JSON object.", {"body": ["must be a JSON object"]})
        try:
            out = _validate_fields(self.fields, data, self.strict, "")
        except Invalid as exc:
            raise ValidationError(summarize(exc.problems), exc.problems) from None
        if self.min_fields and len([k for k in data if k in self.fields]) < self.min_fields:
            names = ", ".join(self.fields)
            raise ValidationError(
                f"Request body must contain at least one field to update ({names}).",
                {"body": ["must contain at least one updatable field"]},
            )
        return out

    def openapi(self) -> dict[str, Any]:
        return object_schema(self.fields, self.strict)


@dataclass
class Query:
    """A query-string schema; values are coerced from strings."""

    fields: Mapping[str, Field]

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        problems: dict[str, list[str]] = {}
        out: dict[str, Any] = {}
        for name, f in self.fields.items():
            raw = params.get(name)
            if isinstance(raw, list):
                raw = ",".join(raw)
            if raw is None or raw == "":
                if f.required:
                    problems.setdefault(name, []).append("is required")
                elif f.default is not _MISSING:
                    out[name] = f.default
                continue
            try:
                out[name] = f.coerce(raw, name)
            except Invalid as exc:
                for k, v in exc.problems.items():
                    problems.setdefault(k, []).extend(v)
        if problems:
            raise ValidationError(summarize(problems), problems)
        return out

    def openapi(self) -> list[dict[str, Any]]:
        return [
            {"name": name, "in": "query", "required": f.required, "schema": f.openapi()}
            for name, f in self.fields.items()
        ]


#: Largest accepted ``offset``: Redis range arguments are signed 64-bit, so an unbounded
#: offset (e.g. 2**63) made ZRANGE fail with a server error instead of an empty page.
MAX_OFFSET = 1_000_000_000

PAGINATION: dict[str, Field] = {
    "limit": Int(minimum=1, maximum=200, default=50),
    "offset": Int(minimum=0, maximum=MAX_OFFSET, default=0),
}
