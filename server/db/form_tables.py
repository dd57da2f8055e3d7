"""Form definitions, requests, responses and signatures. ``docs/forms.md`` explains them.

Unique keys that Piccolo's column options cannot express (a definition's organisation, key
and version; one response per request and pupil) are made by a hand-written migration.
"""

from __future__ import annotations

from piccolo.columns import (
    BigInt,
    Date,
    ForeignKey,
    Integer,
    OnDelete,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

from server.db.tables import Organisation, Person, SchoolGroup


class FormDefinition(Table, tablename="form_definition"):
    """One version of a form, as the JSON of ``schemas.forms.FormDefinition``; never changed
    once stored (a change is the next version)."""

    id = Serial(primary_key=True)

    organisation = ForeignKey(references=Organisation, on_delete=OnDelete.restrict, index=False)
    """The school or municipality that owns it; its schools may send it."""
    key = Varchar(length=60)
    version = Integer()
    body = Text()
    created_by = ForeignKey(references=Person, on_delete=OnDelete.restrict, index=True)
    created_at = Timestamptz()


class FormRequest(Table, tablename="form_request"):
    """A definition version sent to the guardians of some of a group's pupils."""

    id = Serial(primary_key=True)

    definition = ForeignKey(references=FormDefinition, on_delete=OnDelete.restrict, index=True)
    school = ForeignKey(references=Organisation, on_delete=OnDelete.restrict, index=True)
    group = ForeignKey(references=SchoolGroup, on_delete=OnDelete.restrict, index=True)
    sender = ForeignKey(references=Person, on_delete=OnDelete.restrict, index=True)
    due_on = Date()
    note = Text(null=True, default=None)
    sent_at = Timestamptz()


class FormResponse(Table, tablename="form_response"):
    """One pupil's response to a request; made, empty, when the request is sent."""

    id = Serial(primary_key=True)

    request = ForeignKey(references=FormRequest, on_delete=OnDelete.restrict, index=False)
    pupil = ForeignKey(references=Person, on_delete=OnDelete.restrict, index=True)
    definition_version = Integer(null=True, default=None)
    answers = Text(null=True, default=None)
    """The canonical answers as JSON; NULL until a draft is saved."""
    answers_hash = Varchar(length=64, null=True, default=None)
    saved_at = Timestamptz(null=True, default=None)
    submitted_at = Timestamptz(null=True, default=None)
    submitted_by = ForeignKey(
        references=Person, null=True, on_delete=OnDelete.restrict, index=False
    )


class FormSignature(Table, tablename="form_signature"):
    """A custodial guardian signed a response's answers: the audit trail of the act.

    A signature is never deleted: answers changed after it void it (``voided_at``)."""

    id = Serial(primary_key=True)

    response = ForeignKey(references=FormResponse, on_delete=OnDelete.restrict, index=True)
    signer = ForeignKey(references=Person, on_delete=OnDelete.restrict, index=True)
    signed_at = Timestamptz()
    """By the signer's device clock, clamped by the server."""
    received_at = Timestamptz()
    device = Varchar(length=100)
    """The name the signer's device logged in with."""
    client_id = Varchar(length=64)
    mutation_id = BigInt()
    """With ``client_id``: the pushed mutation that signed."""
    answers_hash = Varchar(length=64)
    voided_at = Timestamptz(null=True, default=None)


FORM_TABLES: tuple[type[Table], ...] = (
    FormDefinition,
    FormRequest,
    FormResponse,
    FormSignature,
)
