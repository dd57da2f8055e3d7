"""The published sync contract: what ``/schema/openapi.json`` says of records and mutations.

msgspec makes the JSON Schema of every wire type (``server/openapi.py``), from the same
Structs that encode and decode the bodies, so the document cannot drift from the server.
Three things msgspec leaves out, and this module adds to the components it made:

1. **Field descriptions.** Our Structs document a field with a docstring under it (PEP 257's
   attribute docstrings), which msgspec does not read; they are read here from the source and
   become the property's ``description``. A ``msgspec.Meta(description=...)`` wins.
2. **Fields left out when they hold their default.** A Struct with ``omit_defaults=True``
   (every record, ``PullResponse``, ``MutationResult``) does not send a field whose value is
   its default: ``null``, ``false``, ``0``, ``[]`` or ``{}`` as declared. Such a component
   lists those fields in ``x-omitted-when-default``; a client reads an absent field as its
   ``default``. A Struct without it always sends every field (``null`` included).
3. **The mutation catalogue.** ``MutationIn.args`` is any object to the envelope's decoder
   (each mutation is read on its own, ``server/push_body.py``); the arguments of each
   mutation are a Struct of their own (``server/catalogue.py``). Each gets a component
   ``<Name>Mutation`` (``name`` fixed, ``args`` its Struct) and ``Mutation`` is their
   union, told apart by ``name``. Every mutation is answered by a ``MutationResult``.

Datetimes are RFC 3339 text in JSON and MessagePack Timestamp extensions in MessagePack;
each such property says so (``x-msgpack: timestamp``; ``format: date-time`` on what the
server sends, which always has an offset), and ``docs/sync-protocol.md`` ("Datetimes")
explains it. Dates and times of day are text in both formats.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec
from msgspec import inspect as mi

from schemas.sync import MutationIn
from server.catalogue import CATALOGUE

OMITTED = "x-omitted-when-default"
MSGPACK_NOTE = "x-msgpack"
DATETIME_SENT = (
    "A datetime. JSON: RFC 3339 text, always with an offset (`2026-12-01T07:58:12.5Z`, "
    "`2026-12-01T09:58:12+02:00`). MessagePack: a Timestamp extension (type -1): the same "
    "instant, without the offset."
)
DATETIME_RECEIVED = (
    "A datetime. JSON: RFC 3339 text; without an offset it is read as UTC. MessagePack: a "
    "Timestamp extension (type -1), or the same RFC 3339 text."
)


def mutation_args_types() -> list[type]:
    """Every mutation's argument Struct, in catalogue order, each once."""
    return list(dict.fromkeys(spec.args_type for spec in CATALOGUE.values()))


@functools.cache
def attribute_docstrings(cls: type) -> dict[str, str]:
    """The docstring under each field of ``cls`` (and of the Structs it inherits from)."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is msgspec.Struct or not issubclass(klass, msgspec.Struct):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue  # made at run time: nothing to read
        (node,) = ast.parse(source).body
        assert isinstance(node, ast.ClassDef)
        for field, after in zip(node.body, node.body[1:], strict=False):
            if (
                isinstance(field, ast.AnnAssign)
                and isinstance(field.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                found[field.target.id] = inspect.cleandoc(after.value.value)
    return found


def _structs(info: mi.Type) -> Iterator[mi.StructType]:
    """Every Struct type within ``info``, ``info`` included (may repeat)."""
    stack, seen = [info], set()
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, mi.StructType):
            yield item
            stack += [f.type for f in item.fields]
        elif isinstance(item, mi.UnionType):
            stack += item.types
        elif isinstance(item, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
            stack.append(item.item_type)
        elif isinstance(item, mi.TupleType):
            stack += item.item_types
        elif isinstance(item, mi.DictType):
            stack += [item.key_type, item.value_type]
        elif isinstance(item, mi.Metadata):
            stack.append(item.type)


def _is_datetime(info: mi.Type) -> bool:
    if isinstance(info, mi.Metadata):
        return _is_datetime(info.type)
    if isinstance(info, mi.UnionType):
        return any(_is_datetime(t) for t in info.types)
    return isinstance(info, mi.DateTimeType)


def _omitted(struct: mi.StructType) -> list[str]:
    config = struct.cls.__struct_config__
    if not config.omit_defaults:
        return []
    return [f.encode_name for f in struct.fields if not f.required]


def describe(components: dict[str, Any], *, sent: Iterable[type], received: Iterable[type]) -> None:
    """Add field descriptions, omitted-field lists and datetime notes to ``components``: the
    msgspec-made schemas of the types the server ``sent`` and ``received`` and of what they
    hold (changed in place). A datetime the server sends always has an offset, so it gets
    ``format: date-time``; one it receives may lack it (read as UTC)."""
    done: set[type] = set()
    for types, sends in ((list(sent), True), (list(received), False)):
        for info in mi.multi_type_info(types):
            for struct in _structs(info):
                schema = components.get(struct.cls.__name__)
                if struct.cls in done or schema is None:
                    continue
                done.add(struct.cls)
                _describe_struct(schema, struct, sends=sends)


def _describe_struct(schema: dict[str, Any], struct: mi.StructType, *, sends: bool) -> None:
    if "description" in schema:
        schema["description"] = inspect.cleandoc(schema["description"])
    docs = attribute_docstrings(struct.cls)
    properties: dict[str, Any] = schema.get("properties", {})
    for field in struct.fields:
        prop = properties.get(field.encode_name)
        if prop is None:
            continue
        if field.name in docs and "description" not in prop:
            prop["description"] = docs[field.name]
        if _is_datetime(field.type):
            _mark_datetime(prop, sends=sends)
    if omitted := _omitted(struct):
        schema[OMITTED] = omitted
        listed = ", ".join(f"`{name}`" for name in omitted)
        schema["description"] = (
            f"{schema.get('description', '')}\n\nLeft out of the body when they hold "
            f"their default (read an absent field as its `default`): {listed}."
        ).strip()


def _mark_datetime(prop: dict[str, Any], *, sends: bool) -> None:
    note = DATETIME_SENT if sends else DATETIME_RECEIVED
    prop["description"] = f"{prop.get('description', '')}\n\n{note}".strip()
    prop[MSGPACK_NOTE] = "timestamp"
    if sends:
        for option in prop.get("anyOf", [prop]):
            if option.get("type") == "string":
                option["format"] = "date-time"


def mutation_components(ref_of: dict[type, Any]) -> dict[str, Any]:
    """``<Name>Mutation`` for each mutation of the catalogue, and ``Mutation``, their union.

    ``ref_of`` holds the ``$ref`` of ``MutationIn`` and of every argument Struct."""
    found: dict[str, Any] = {}
    mapping: dict[str, str] = {}
    for name, spec in CATALOGUE.items():
        component = "".join(part.capitalize() for part in name.split(".")) + "Mutation"
        doc = inspect.getdoc(spec.handler) or ""
        found[component] = {
            "title": component,
            "description": (
                f"`{name}`: {doc.split(chr(10))[0].split(': ', 1)[-1]} Answered by a "
                "`MutationResult` in `PushResponse.results`; `docs/sync-protocol.md` lists who "
                "may and the rejections."
            ),
            "allOf": [ref_of[MutationIn]],
            "properties": {"name": {"const": name}, "args": ref_of[spec.args_type]},
            "required": ["id", "name", "args", "occurred_at"],
        }
        mapping[name] = f"#/components/schemas/{component}"
    found["Mutation"] = {
        "title": "Mutation",
        "description": (
            "A mutation of the catalogue, as a client sends it in `PushRequest.mutations`: a "
            "`MutationIn` whose `args` are those of its `name`. The server reads any "
            "`MutationIn` and rejects an unknown `name` in its place (`mutation.unknown`)."
        ),
        "oneOf": [{"$ref": target} for target in mapping.values()],
        "discriminator": {"propertyName": "name", "mapping": mapping},
    }
    return found


def name_the_unions(components: dict[str, Any], ref_template: str) -> None:
    """Give the record union a component of its own (``Record``), which ``Upsert.record``
    refers to, so that a client generates one type for "any record"; and point
    ``MutationIn.args`` at the catalogue (``Mutation``)."""
    upsert = components["Upsert"]["properties"]
    components["Record"] = {
        "title": "Record",
        "description": (
            "Any record a pull can carry, told apart by `type`. A client ignores fields it "
            "does not know, and may skip a `type` it does not know."
        ),
        **upsert["record"],
    }
    upsert["record"] = {"$ref": ref_template.format(name="Record")}
    args = components["MutationIn"]["properties"]["args"]
    args["description"] = (
        "The mutation's arguments: for each `name` of the catalogue, the Struct its "
        f"component names (see `{ref_template.format(name='Mutation')}`)."
    )
