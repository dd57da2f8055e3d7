"""Writes the sync contract as TypeScript types: ``clients/typescript/contract.d.ts``.

The types are made from the published OpenAPI document (``/schema/openapi.json``, as
``server/openapi.py`` and ``server/contract.py`` complete it), not from our Python: a native
or web client generated this way sees exactly what any other team would. Only the sync
contract is written: the components that ``PullRequest``, ``PullResponse``, ``PushRequest``,
``PushResponse``, ``Record``, ``Mutation`` and ``ErrorBody`` refer to, and what they refer to.

The rules (``docs/sync-protocol.md``, "In the OpenAPI document"):

- A field that is not required is optional (``?``); the JSDoc gives its ``@default``, which
  an absent field means (``x-omitted-when-default``).
- Datetimes, dates and times of day are ``string``: the JSON encoding (RFC 3339 text). A
  MessagePack client decodes datetimes from Timestamp extensions (``x-msgpack``).
- Objects are type aliases, not interfaces: an alias is assignable to an object with an
  index signature, so a ``Mutation`` (its ``args`` a Struct's fields) is a ``MutationIn``
  (its ``args`` any object), as on the wire.
- Unions told apart by a field (``Record`` by ``type``, ``Change`` by ``op``, ``Mutation``
  by ``name``) are TypeScript unions whose members carry that field as a literal type, so a
  ``switch`` on it narrows.

Run from the repository root: ``.venv/bin/python scripts/contract_types.py`` writes the file;
``--check`` exits 1 if the file differs from what the document gives now (a test runs it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "clients" / "typescript" / "contract.d.ts"
ROOTS = (
    "PullRequest",
    "PullResponse",
    "PushRequest",
    "PushResponse",
    "Record",
    "Mutation",
    "ErrorBody",
)
PREFIX = "#/components/schemas/"
PRIMITIVES = {
    "string": "string",
    "integer": "number",
    "number": "number",
    "boolean": "boolean",
    "null": "null",
}


def published_document() -> dict[str, Any]:
    """``/schema/openapi.json`` as the server serves it (no database is opened)."""
    sys.path.insert(0, str(ROOT))
    from server.app import create_app
    from server.openapi import complete_document
    from server.settings import load_settings

    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app(load_settings({"REPPU_DATA_DIR": data_dir}))
        return complete_document(app.openapi_schema.to_schema(), app)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"].removeprefix(PREFIX)] if "$ref" in node else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


def reachable(schemas: dict[str, Any], roots: tuple[str, ...] = ROOTS) -> list[str]:
    """The components ``roots`` refer to, directly or not, in the order first met."""
    order: list[str] = []
    stack = list(reversed(roots))
    while stack:
        name = stack.pop()
        if name in order:
            continue
        order.append(name)
        stack += reversed(_refs(schemas[name]))
    return order


def _literal(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _union(members: list[str]) -> str:
    unique = list(dict.fromkeys(members))
    return " | ".join(unique) if unique else "never"


def ts_type(schema: dict[str, Any]) -> str:
    """A TypeScript type for a JSON Schema made by msgspec (and ``server/contract.py``)."""
    if "$ref" in schema:
        return str(schema["$ref"]).removeprefix(PREFIX)
    if "const" in schema:
        return _literal(schema["const"])
    if "enum" in schema:
        return _union([_literal(v) for v in schema["enum"]])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return _union([ts_type(option) for option in schema[key]])
    kind = schema.get("type")
    if kind == "array":
        if "prefixItems" in schema:
            return "[" + ", ".join(ts_type(item) for item in schema["prefixItems"]) + "]"
        item = ts_type(schema.get("items", {}))
        return f"({item})[]" if " " in item else f"{item}[]"
    if kind == "object":
        if "properties" in schema:
            return _object_body(schema, indent="")
        extra = schema.get("additionalProperties", {})
        value = "never" if extra is False else ts_type(extra if isinstance(extra, dict) else {})
        return f"{{ [key: string]: {value} }}"
    if isinstance(kind, str) and kind in PRIMITIVES:
        return PRIMITIVES[kind]
    return "unknown"  # any JSON value


def _jsdoc(schema: dict[str, Any], indent: str) -> list[str]:
    lines = str(schema.get("description", "")).strip().splitlines()
    if "default" in schema:
        lines += ([""] if lines else []) + [f"@default {_literal(schema['default'])}"]
    if not lines:
        return []
    body = [f"{indent} * {line}".rstrip() for line in lines]
    return [f"{indent}/**", *[line.replace("*/", "*\\/") for line in body], f"{indent} */"]


def _object_body(schema: dict[str, Any], indent: str) -> str:
    required = set(schema.get("required", []))
    lines = ["{"]
    for name, prop in schema["properties"].items():
        lines += _jsdoc(prop, indent + "  ")
        optional = "" if name in required else "?"
        lines.append(f"{indent}  {name}{optional}: {ts_type(prop)};")
    lines.append(f"{indent}}}")
    return "\n".join(lines)


def declaration(name: str, schema: dict[str, Any]) -> str:
    """One exported TypeScript declaration for the component ``name``."""
    doc = "\n".join(_jsdoc(schema, ""))
    doc = f"{doc}\n" if doc else ""
    if "allOf" in schema:  # <Name>Mutation: MutationIn with its name and args fixed
        (base,) = [ts_type(part) for part in schema["allOf"]]
        fixed = " | ".join(_literal(key) for key in schema["properties"])
        body = _object_body(schema, indent="")
        return f"{doc}export type {name} = Omit<{base}, {fixed}> & {body};\n"
    return f"{doc}export type {name} = {ts_type(schema)};\n"


def typescript(document: dict[str, Any]) -> str:
    """The contents of ``contract.d.ts`` for ``document``."""
    schemas: dict[str, Any] = document["components"]["schemas"]
    head = (
        "// The Reppu sync contract (protocol version "
        f"{_protocol_version(schemas)}), generated from /schema/openapi.json by\n"
        "// scripts/contract_types.py. Do not edit: run the script. docs/sync-protocol.md\n"
        "// explains every type; datetimes are RFC 3339 text here (the JSON encoding).\n"
    )
    return head + "".join("\n" + declaration(n, schemas[n]) for n in reachable(schemas))


def _protocol_version(schemas: dict[str, Any]) -> str:
    sys.path.insert(0, str(ROOT))
    from schemas.sync import SCHEMA_VERSION

    assert "PullRequest" in schemas
    return str(SCHEMA_VERSION)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args()
    text = typescript(published_document())
    if args.check:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET.relative_to(ROOT)} is stale: run scripts/contract_types.py")
            return 1
        return 0
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
