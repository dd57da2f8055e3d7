"""The mutation catalogue: every mutation a client may push, by name.

``docs/sync-protocol.md`` lists them with their args and rejections. A handler checks
permission through the access policy and writes through the one write path
(``server/mutations.py`` says what a handler may rely on).
"""

from __future__ import annotations

from schemas.absences import LeaveDecideArgs, MarkArgs, NoticeArgs
from schemas.forms import FormAnswerArgs, FormRequestArgs, FormSignArgs
from schemas.messages import BulletinSendArgs, MessageSendArgs, ReadArgs
from schemas.sync import LessonChangeArgs, LessonRestoreArgs
from server.absences import (
    decide_leave,
    explain_absence,
    mark_attendance,
    mark_attendance_batch,
    prepare_marks,
    report_absence,
    request_leave,
)
from server.forms import save_form, send_form_request, sign_form, submit_form
from server.messaging import read_bulletin, read_message, send_bulletin, send_message
from server.mutations import MutationSpec, change_lesson, restore_lesson

CATALOGUE: dict[str, MutationSpec] = {
    spec.name: spec
    for spec in (
        MutationSpec("lesson.change", LessonChangeArgs, change_lesson),
        MutationSpec("lesson.restore", LessonRestoreArgs, restore_lesson),
        MutationSpec("message.send", MessageSendArgs, send_message),
        MutationSpec("message.read", ReadArgs, read_message),
        MutationSpec("bulletin.send", BulletinSendArgs, send_bulletin),
        MutationSpec("bulletin.read", ReadArgs, read_bulletin),
        MutationSpec(
            "attendance.mark", MarkArgs, mark_attendance, mark_attendance_batch, prepare_marks
        ),
        MutationSpec("absence.report", NoticeArgs, report_absence),
        MutationSpec("absence.explain", NoticeArgs, explain_absence),
        MutationSpec("leave.request", NoticeArgs, request_leave),
        MutationSpec("leave.decide", LeaveDecideArgs, decide_leave),
        MutationSpec("form.request", FormRequestArgs, send_form_request),
        MutationSpec("form.save", FormAnswerArgs, save_form),
        MutationSpec("form.submit", FormAnswerArgs, submit_form),
        MutationSpec("form.sign", FormSignArgs, sign_form),
    )
}
