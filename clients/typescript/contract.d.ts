// The Reppu sync contract (protocol version 2), generated from /schema/openapi.json by
// scripts/contract_types.py. Do not edit: run the script. docs/sync-protocol.md
// explains every type; datetimes are RFC 3339 text here (the JSON encoding).

/**
 * A pull: the changes of every readable partition since ``cursor``.
 */
export type PullRequest = {
  /**
   * The protocol version the app speaks; read before the rest of the body.
   */
  schema_version: number;
  /**
   * The cursor of the last answer applied; None (or absent) for a first sync.
   *
   * @default null
   */
  cursor?: string | null;
  /**
   * Most changes wanted in this answer; the server caps it at ``MAX_PAGE_RECORDS``.
   *
   * @default 500
   */
  limit?: number;
  /**
   * Partitions whose checksum did not match: the server sends them afresh.
   *
   * @default []
   */
  repair?: string[];
  /**
   * Partitions whose summary the client wants even if nothing in them changed (version 2):
   * the answer carries the summary of each one the caller may read that is at its newest change
   * after this answer. Others are left out without an error.
   *
   * @default []
   */
  check?: string[];
};

/**
 * A pull's answer. Empty fields are left out: "nothing new" is ``{}``.
 *
 * Left out of the body when they hold their default (read an absent field as its `default`): `cursor`, `has_more`, `added`, `removed`, `changes`, `summaries`.
 */
export type PullResponse = {
  /**
   * Send it with the next pull, after applying this answer in one local transaction.
   * Absent when it did not change: keep the cursor you sent.
   *
   * @default null
   */
  cursor?: string | null;
  /**
   * Pull again at once: the answer was cut at the page limit.
   *
   * @default false
   */
  has_more?: boolean;
  /**
   * Partitions now readable (or to be sent afresh): clear your copy of each, then apply the
   * upserts that follow (a snapshot, maybe over several pages).
   *
   * @default []
   */
  added?: string[];
  /**
   * Partitions no longer readable: drop every record no remaining partition holds.
   *
   * @default []
   */
  removed?: string[];
  /**
   * Upserts and deletions, in the order to apply them.
   *
   * @default []
   */
  changes?: (Upsert | Delete)[];
  /**
   * Counts and checksums of the partitions this answer brought to their newest change, and
   * of those asked to ``check`` (the caller may read them and they are at their newest change).
   *
   * @default []
   */
  summaries?: PartitionSummary[];
};

/**
 * Store ``record`` (replacing any older version) as held by ``partition``.
 */
export type Upsert = {
  op: "upsert";
  /**
   * The partition that holds the record (``kind:id``).
   */
  partition: string;
  record: Record;
};

/**
 * Any record a pull can carry, told apart by `type`. A client ignores fields it does not know, and may skip a `type` it does not know.
 */
export type Record = GroupRecord | LessonRecord | LessonChangeRecord | ThreadRecord | MessageRecord | BulletinRecord | ReceiptRecord | AttendanceRecord | NoticeRecord | RosterRecord | FormRequestRecord | FormResponseRecord;

/**
 * A group, as its members see it.
 *
 * Left out of the body when they hold their default (read an absent field as its `default`): `grade`, `subject`.
 */
export type GroupRecord = {
  type: "group";
  id: number;
  /**
   * The record's version: changes whenever the record does.
   */
  v: number;
  name: string;
  kind: GroupKind;
  school_id: number;
  school_name: string;
  /**
   * @default null
   */
  grade?: number | null;
  /**
   * @default null
   */
  subject?: string | null;
};

export type GroupKind = "home_class" | "teaching_group";

/**
 * A recurring weekly lesson: every ``weekday`` from ``valid_from`` to ``valid_to``.
 *
 * Left out of the body when they hold their default (read an absent field as its `default`): `valid_to`, `teacher_id`, `teacher_name`, `room`.
 */
export type LessonRecord = {
  type: "lesson";
  id: number;
  v: number;
  group_id: number;
  subject: string;
  /**
   * ISO weekday: 1 is Monday.
   */
  weekday: number;
  /**
   * Local time (Europe/Helsinki), as is every time of day.
   */
  starts_at: string;
  ends_at: string;
  /**
   * The first day of the weekly plan.
   */
  valid_from: string;
  /**
   * The last day of the weekly plan (inclusive); absent: no end set.
   *
   * @default null
   */
  valid_to?: string | null;
  /**
   * @default null
   */
  teacher_id?: number | null;
  /**
   * @default null
   */
  teacher_name?: string | null;
  /**
   * @default null
   */
  room?: string | null;
};

/**
 * One dated occurrence of a lesson changed; fields left out keep the lesson's value.
 *
 * Left out of the body when they hold their default (read an absent field as its `default`): `cancelled`, `substitute_teacher_id`, `substitute_teacher_name`, `room`, `starts_at`, `ends_at`, `note`.
 */
export type LessonChangeRecord = {
  type: "lesson_change";
  id: number;
  v: number;
  lesson_id: number;
  /**
   * The date of the one occurrence it changes.
   */
  on_date: string;
  /**
   * The occurrence does not take place.
   *
   * @default false
   */
  cancelled?: boolean;
  /**
   * Who teaches it instead of the lesson's teacher.
   *
   * @default null
   */
  substitute_teacher_id?: number | null;
  /**
   * @default null
   */
  substitute_teacher_name?: string | null;
  /**
   * @default null
   */
  room?: string | null;
  /**
   * @default null
   */
  starts_at?: string | null;
  /**
   * @default null
   */
  ends_at?: string | null;
  /**
   * @default null
   */
  note?: string | null;
};

/**
 * A conversation; synced to the inbox of each participant.
 */
export type ThreadRecord = {
  type: "thread";
  id: number;
  v: number;
  subject: string;
  /**
   * The school (or city) the conversation belongs to.
   */
  organisation_id: number;
  participants: Participant[];
  /**
   * A datetime. JSON: RFC 3339 text, always with an offset (`2026-12-01T07:58:12.5Z`, `2026-12-01T09:58:12+02:00`). MessagePack: a Timestamp extension (type -1): the same instant, without the offset.
   */
  started_at: string;
};

export type Participant = {
  id: number;
  /**
   * Given and family name; never contact details.
   */
  name: string;
};

/**
 * One message of a thread; synced to the inbox of each participant.
 */
export type MessageRecord = {
  type: "message";
  id: number;
  v: number;
  thread_id: number;
  sender_id: number;
  sender_name: string;
  body: string;
  /**
   * A datetime. JSON: RFC 3339 text, always with an offset (`2026-12-01T07:58:12.5Z`, `2026-12-01T09:58:12+02:00`). MessagePack: a Timestamp extension (type -1): the same instant, without the offset.
   */
  sent_at: string;
};

/**
 * An announcement, synced to its community's partition (or named people's inboxes).
 *
 * Left out of the body when they hold their default (read an absent field as its `default`): `urgent`, `group_id`.
 */
export type BulletinRecord = {
  type: "bulletin";
  id: number;
  v: number;
  title: string;
  body: string;
  author_id: number;
  author_name: string;
  organisation_id: number;
  audience: Audience;
  roles: AudienceRole[];
  /**
   * A datetime. JSON: RFC 3339 text, always with an offset (`2026-12-01T07:58:12.5Z`, `2026-12-01T09:58:12+02:00`). MessagePack: a Timestamp extension (type -1): the same instant, without the offset.
   */
  sent_at: string;
  /**
   * @default false
   */
  urgent?: boolean;
  /**
   * @default null
   */
  group_id?: number | null;
};

/**
 * Where a bulletin lives (which partition), and so who may read it. A community bulletin
 *     whose ``roles`` leave out pupils lives in the community's ``*-guardians`` partition (its
 *     guardians and staff read it, its pupils do not); one for staff alone in its staff one.
 */
export type Audience = "group" | "municipality" | "people" | "school";

/**
 * Whom of the audience a bulletin notifies.
 */
export type AudienceRole = "guardians" | "pupils" | "staff";

/**
 * The caller has read an item; synced to the reader's own inbox.
 */
export type ReceiptRecord = {
  type: "receipt";
  id: number;
  v: number;
  item_type: ItemType;
  item_id: number;
  /**
   * A datetime. JSON: RFC 3339 text, always with an offset (`2026-12-01T07:58:12.5Z`, `2026-12-01T09:58:12+02:00`). MessagePack: a Timestamp extension (type -1): the same instant, without the offset.
   */
  read_at: string;
};

export type ItemType = "bulletin" | "message";

/**
 * A pupil's effective status in one lesson occurrence.
 *
 * Left out of the body when they hold their default (read an absent field as its `default`): `late_minutes`, `note`, `notice_id`, `reason`, `marked_by`.
 */
export type AttendanceRecord = {
  type: "attendance";
  id: number;
  v: number;
  pupil_id: number;
  lesson_id: number;
  on_date: string;
  status: AttendanceStatus;
  /**
   * @default null
   */
  late_minutes?: number | null;
  /**
   * The teacher's note at roll call.
   *
   * @default null
   */
  note?: string | null;
  /**
   * The report, explanation or leave that explains (or announces) the absence.
   *
   * @default null
   */
  notice_id?: number | null;
  /**
   * @default null
   */
  reason?: Reason | null;
  /**
   * @default null
   */
  marked_by?: number | null;
};

/**
 * A pupil's effective status in one lesson (``docs/absences.md`` has the table).
 */
export type AttendanceStatus = "excused" | "expected_absent" | "late" | "on_leave" | "present" | "unexplained";

export type Reason = "appointment" | "family" | "illness" | "other";

/**
 * A report, explanation or leave request, with the leave's decision.
 *
 * Left out of the body when they hold their default (read an absent field as its `default`): `from_time`, `to_time`, `note`, `decision`, `decided_by`, `decided_by_name`, `decision_note`.
 */
export type NoticeRecord = {
  type: "absence_notice";
  id: number;
  v: number;
  pupil_id: number;
  kind: NoticeKind;
  from_date: string;
  to_date: string;
  reason: Reason;
  author_id: number;
  author_name: string;
  /**
   * @default null
   */
  from_time?: string | null;
  /**
   * @default null
   */
  to_time?: string | null;
  /**
   * @default null
   */
  note?: string | null;
  /**
   * Leave only: None while undecided.
   *
   * @default null
   */
  decision?: LeaveDecision | null;
  /**
   * @default null
   */
  decided_by?: number | null;
  /**
   * @default null
   */
  decided_by_name?: string | null;
  /**
   * @default null
   */
  decision_note?: string | null;
};

export type NoticeKind = "explanation" | "leave" | "report";

export type LeaveDecision = "approved" | "denied";

/**
 * A group's pupils today, for its teachers' roll call (``id`` is the group's).
 */
export type RosterRecord = {
  type: "roster";
  id: number;
  v: number;
  pupils: RosterPupil[];
};

export type RosterPupil = {
  id: number;
  name: string;
};

/**
 * A form sent to the guardians of some of a group's pupils; synced to each of those
 * pupils' ``person:`` partition and to the group's staff (``group-staff:<g>``). It never
 * lists the pupils: families do not learn of one another through it.
 *
 * Left out of the body when they hold their default (read an absent field as its `default`): `note`.
 */
export type FormRequestRecord = {
  type: "form_request";
  id: number;
  v: number;
  definition_id: number;
  definition_version: number;
  definition: FormDefinition;
  school_id: number;
  group_id: number;
  sender_id: number;
  sender_name: string;
  /**
   * A datetime. JSON: RFC 3339 text, always with an offset (`2026-12-01T07:58:12.5Z`, `2026-12-01T09:58:12+02:00`). MessagePack: a Timestamp extension (type -1): the same instant, without the offset.
   */
  sent_at: string;
  /**
   * The last day (Helsinki) on which a response may be saved, submitted or signed.
   */
  due_on: string;
  /**
   * @default null
   */
  note?: string | null;
};

export type FormDefinition = {
  key: string;
  languages: string[];
  title: { [key: string]: string };
  signing: SigningRule;
  fields: FormField[];
  description?: { [key: string]: string } | null;
};

/**
 * Whose signatures make a response complete. Only custodial guardians ever sign: a
 *     guardian with a right to information only reads the form and its answers, never signs.
 */
export type SigningRule = "any_custodian" | "all_custodians";

export type FormField = {
  id: string;
  kind: FieldKind;
  label: { [key: string]: string };
  help?: { [key: string]: string } | null;
  /**
   * @default false
   */
  required?: boolean;
  max_length?: number | null;
  min_length?: number | null;
  options?: ChoiceOption[];
  min_choices?: number | null;
  max_choices?: number | null;
  min_date?: string | null;
  max_date?: string | null;
  min?: number | null;
  max?: number | null;
  /**
   * @default false
   */
  integer?: boolean;
};

/**
 * The kinds of question, and the JSON value each one's answer is.
 */
export type FieldKind = "text" | "long_text" | "single_choice" | "multiple_choice" | "date" | "consent" | "number";

export type ChoiceOption = {
  id: string;
  label: { [key: string]: string };
};

/**
 * One pupil's response to a request; made for every pupil when the request is sent
 * (``not_opened``) and synced to that pupil's ``person:`` partition.
 *
 * Left out of the body when they hold their default (read an absent field as its `default`): `signed`, `definition_version`, `answers`, `answers_hash`, `saved_at`, `submitted_at`, `submitted_by_id`, `submitted_by_name`, `signatures`.
 */
export type FormResponseRecord = {
  type: "form_response";
  id: number;
  v: number;
  request_id: number;
  pupil_id: number;
  status: ResponseStatus;
  /**
   * Signatures that make it complete (the pupil's custodial guardians under
   * ``all_custodians``, else 1), as of the last change.
   */
  needed: number;
  /**
   * Valid signatures that count towards ``needed``.
   *
   * @default 0
   */
  signed?: number;
  /**
   * @default null
   */
  definition_version?: number | null;
  /**
   * @default {}
   */
  answers?: { [key: string]: string | number | boolean | string[] | null };
  /**
   * SHA-256 (hex) of the canonical answers (``docs/forms.md``): what a signature covers.
   *
   * @default null
   */
  answers_hash?: string | null;
  /**
   * A datetime. JSON: RFC 3339 text, always with an offset (`2026-12-01T07:58:12.5Z`, `2026-12-01T09:58:12+02:00`). MessagePack: a Timestamp extension (type -1): the same instant, without the offset.
   *
   * @default null
   */
  saved_at?: string | null;
  /**
   * A datetime. JSON: RFC 3339 text, always with an offset (`2026-12-01T07:58:12.5Z`, `2026-12-01T09:58:12+02:00`). MessagePack: a Timestamp extension (type -1): the same instant, without the offset.
   *
   * @default null
   */
  submitted_at?: string | null;
  /**
   * @default null
   */
  submitted_by_id?: number | null;
  /**
   * @default null
   */
  submitted_by_name?: string | null;
  /**
   * Valid signatures only: a signature over answers that changed since is void.
   *
   * @default []
   */
  signatures?: Signature[];
};

export type ResponseStatus = "not_opened" | "draft" | "submitted" | "partly_signed" | "complete";

export type Signature = {
  signer_id: number;
  signer_name: string;
  /**
   * When the signer signed, by their device's clock (clamped by the server).
   *
   * A datetime. JSON: RFC 3339 text, always with an offset (`2026-12-01T07:58:12.5Z`, `2026-12-01T09:58:12+02:00`). MessagePack: a Timestamp extension (type -1): the same instant, without the offset.
   */
  signed_at: string;
  answers_hash: string;
};

/**
 * ``partition`` no longer holds the record. Drop it if no other partition does.
 */
export type Delete = {
  op: "delete";
  /**
   * The partition that no longer holds the record.
   */
  partition: string;
  /**
   * The record's ``type``.
   */
  type: string;
  /**
   * The record's ``id``: with ``type``, it names the record.
   */
  id: number;
};

/**
 * What the client's copy of a partition must add up to once it has applied the answer.
 */
export type PartitionSummary = {
  partition: string;
  /**
   * How many records the partition holds.
   */
  count: number;
  /**
   * 16 hex digits: the sum, modulo 2**64, of ``record_digest`` over the partition's records.
   */
  checksum: string;
};

/**
 * A push. The server reads the envelope (``schema_version``, ``client_id``, the list)
 * strictly, but each mutation on its own: a mutation that does not fit :class:`MutationIn`
 * is rejected alone (``mutation.invalid_args``) and never fails the push.
 */
export type PushRequest = {
  /**
   * As in :class:`PullRequest`.
   */
  schema_version: number;
  /**
   * A random id the app makes once per installation and keeps.
   */
  client_id: string;
  mutations: MutationIn[];
};

/**
 * One thing the user did, possibly offline.
 */
export type MutationIn = {
  /**
   * Sequential per client, from 1: the server applies each id once, in order.
   */
  id: number;
  /**
   * A mutation of the catalogue (``docs/sync-protocol.md``), such as ``lesson.change``.
   */
  name: string;
  /**
   * The mutation's arguments: for each `name` of the catalogue, the Struct its component names (see `#/components/schemas/Mutation`).
   */
  args: { [key: string]: unknown };
  /**
   * When it happened on the device (its clock).
   *
   * A datetime. JSON: RFC 3339 text; without an offset it is read as UTC. MessagePack: a Timestamp extension (type -1), or the same RFC 3339 text.
   */
  occurred_at: string;
};

/**
 * A push's answer.
 */
export type PushResponse = {
  /**
   * One per mutation sent, in the same order.
   */
  results: MutationResult[];
};

/**
 * Left out of the body when they hold their default (read an absent field as its `default`): `code`, `reason`, `field`.
 */
export type MutationResult = {
  /**
   * The mutation's id. A mutation whose id is not an id (not an integer from 1 to 2**62)
   * takes no place in the sequence: it is answered with the id as sent if that is an
   * integer, else 0, rejected, and not recorded.
   */
  id: number;
  /**
   * ``applied`` or ``rejected``. A replayed id gets the answer it got the first time.
   */
  status: MutationStatus;
  /**
   * Why it was rejected (absent when applied): branch on this, never on ``reason``.
   *
   * @default null
   */
  code?: MutationCode | null;
  /**
   * A sentence the user can read.
   *
   * @default null
   */
  reason?: string | null;
  /**
   * Which input was wrong: a JSON path into ``args`` (``$.on_date``), or ``$.occurred_at``,
   * ``$.name`` or ``$.id``.
   *
   * @default null
   */
  field?: string | null;
};

/**
 * What became of a mutation. A new value would be a protocol version of its own.
 */
export type MutationStatus = "applied" | "rejected";

/**
 * Why a mutation was rejected. Stable strings, like the error catalogue.
 */
export type MutationCode = "mutation.conflict" | "mutation.forbidden" | "mutation.invalid_args" | "mutation.not_found" | "mutation.out_of_order" | "mutation.too_late" | "mutation.unknown";

/**
 * A mutation of the catalogue, as a client sends it in `PushRequest.mutations`: a `MutationIn` whose `args` are those of its `name`. The server reads any `MutationIn` and rejects an unknown `name` in its place (`mutation.unknown`).
 */
export type Mutation = LessonChangeMutation | LessonRestoreMutation | MessageSendMutation | MessageReadMutation | BulletinSendMutation | BulletinReadMutation | AttendanceMarkMutation | AbsenceReportMutation | AbsenceExplainMutation | LeaveRequestMutation | LeaveDecideMutation | FormRequestMutation | FormSaveMutation | FormSubmitMutation | FormSignMutation;

/**
 * `lesson.change`: cancel, substitute, move room or time of one occurrence. Answered by a `MutationResult` in `PushResponse.results`; `docs/sync-protocol.md` lists who may and the rejections.
 */
export type LessonChangeMutation = Omit<MutationIn, "name" | "args"> & {
  name: "lesson.change";
  args: LessonChangeArgs;
};

/**
 * ``lesson.change``: set how one occurrence of a lesson differs (replacing any earlier).
 */
export type LessonChangeArgs = {
  lesson_id: number;
  on_date: string;
  /**
   * @default false
   */
  cancelled?: boolean;
  /**
   * @default null
   */
  substitute_teacher_id?: number | null;
  /**
   * @default null
   */
  room?: string | null;
  /**
   * @default null
   */
  starts_at?: string | null;
  /**
   * @default null
   */
  ends_at?: string | null;
  /**
   * @default null
   */
  note?: string | null;
};

/**
 * `lesson.restore`: the occurrence follows the weekly plan again. Answered by a `MutationResult` in `PushResponse.results`; `docs/sync-protocol.md` lists who may and the rejections.
 */
export type LessonRestoreMutation = Omit<MutationIn, "name" | "args"> & {
  name: "lesson.restore";
  args: LessonRestoreArgs;
};

/**
 * ``lesson.restore``: the occurrence goes back to the weekly plan.
 */
export type LessonRestoreArgs = {
  lesson_id: number;
  on_date: string;
};

/**
 * `message.send`: see :class:`schemas.messages.MessageSendArgs`. Answered by a `MutationResult` in `PushResponse.results`; `docs/sync-protocol.md` lists who may and the rejections.
 */
export type MessageSendMutation = Omit<MutationIn, "name" | "args"> & {
  name: "message.send";
  args: MessageSendArgs;
};

/**
 * ``message.send``: reply in a thread (``thread_id``) or start threads (``to``).
 *
 * Starting: staff may write to people of their schools (pupils, guardians, staff); a
 * guardian may write to the staff of their children's schools. Each recipient gets a thread
 * of their own with the sender.
 */
export type MessageSendArgs = {
  body: string;
  /**
   * A reply: the thread it goes to (then no ``to`` and no ``subject``).
   *
   * @default null
   */
  thread_id?: number | null;
  /**
   * A new conversation: the people (ids) to start a thread with, each their own.
   *
   * @default []
   */
  to?: number[];
  /**
   * A new conversation's subject (required with ``to``).
   *
   * @default null
   */
  subject?: string | null;
};

/**
 * `message.read`: a participant of the message's thread has read it. Answered by a `MutationResult` in `PushResponse.results`; `docs/sync-protocol.md` lists who may and the rejections.
 */
export type MessageReadMutation = Omit<MutationIn, "name" | "args"> & {
  name: "message.read";
  args: ReadArgs;
};

/**
 * ``message.read`` / ``bulletin.read``: the caller has read the item (idempotent).
 */
export type ReadArgs = {
  id: number;
};

/**
 * `bulletin.send`: see :class:`schemas.messages.BulletinSendArgs`. Answered by a `MutationResult` in `PushResponse.results`; `docs/sync-protocol.md` lists who may and the rejections.
 */
export type BulletinSendMutation = Omit<MutationIn, "name" | "args"> & {
  name: "bulletin.send";
  args: BulletinSendArgs;
};

/**
 * ``bulletin.send``: announce to an audience.
 *
 * ``audience_id`` names the group, school or municipality; ``people`` the named persons.
 * Teachers may send to their groups, principals to their schools (and their groups),
 * admins to their city and its schools. Only principals and admins may mark ``urgent``.
 */
export type BulletinSendArgs = {
  audience: Audience;
  title: string;
  body: string;
  /**
   * Who of the audience it is for (default: the guardians).
   */
  roles?: AudienceRole[];
  /**
   * The group, school or municipality, for those audiences.
   *
   * @default null
   */
  audience_id?: number | null;
  /**
   * The persons (ids), for the audience ``people``.
   *
   * @default []
   */
  people?: number[];
  /**
   * Principals and admins only.
   *
   * @default false
   */
  urgent?: boolean;
};

/**
 * `bulletin.read`: a reader of the bulletin has read it. Answered by a `MutationResult` in `PushResponse.results`; `docs/sync-protocol.md` lists who may and the rejections.
 */
export type BulletinReadMutation = Omit<MutationIn, "name" | "args"> & {
  name: "bulletin.read";
  args: ReadArgs;
};

/**
 * `attendance.mark`: one pupil's mark at one lesson occurrence's roll call. Answered by a `MutationResult` in `PushResponse.results`; `docs/sync-protocol.md` lists who may and the rejections.
 */
export type AttendanceMarkMutation = Omit<MutationIn, "name" | "args"> & {
  name: "attendance.mark";
  args: MarkArgs;
};

/**
 * ``attendance.mark``: one pupil at one lesson occurrence's roll call.
 *
 * A roll call of 25 pupils is 25 of these, pushed together. A later mark of the same pupil
 * in the same lesson, made the same day, corrects the earlier one.
 */
export type MarkArgs = {
  lesson_id: number;
  on_date: string;
  pupil_id: number;
  status: MarkStatus;
  /**
   * Required for ``late``, refused otherwise.
   *
   * @default null
   */
  late_minutes?: number | null;
  /**
   * @default null
   */
  note?: string | null;
};

/**
 * What the teacher saw at roll call.
 */
export type MarkStatus = "absent" | "late" | "present";

/**
 * `absence.report`: a custodial guardian tells ahead that the pupil will be away. Answered by a `MutationResult` in `PushResponse.results`; `docs/sync-protocol.md` lists who may and the rejections.
 */
export type AbsenceReportMutation = Omit<MutationIn, "name" | "args"> & {
  name: "absence.report";
  args: NoticeArgs;
};

/**
 * ``absence.report`` (ahead), ``absence.explain`` (afterwards) and ``leave.request``.
 *
 * The span runs from ``from_date`` at ``from_time`` (start of day if left out) to
 * ``to_date`` at ``to_time`` (end of day if left out): "Tuesday from 12:00" or "8:00-10:00
 * on Friday" or "Monday to Wednesday".
 */
export type NoticeArgs = {
  pupil_id: number;
  from_date: string;
  to_date: string;
  reason: Reason;
  /**
   * Absent: from the start of ``from_date``.
   *
   * @default null
   */
  from_time?: string | null;
  /**
   * Absent: to the end of ``to_date``.
   *
   * @default null
   */
  to_time?: string | null;
  /**
   * @default null
   */
  note?: string | null;
};

/**
 * `absence.explain`: why the pupil was away, told afterwards. Answered by a `MutationResult` in `PushResponse.results`; `docs/sync-protocol.md` lists who may and the rejections.
 */
export type AbsenceExplainMutation = Omit<MutationIn, "name" | "args"> & {
  name: "absence.explain";
  args: NoticeArgs;
};

/**
 * `leave.request`: a custodial guardian asks leave for a longer absence. Answered by a `MutationResult` in `PushResponse.results`; `docs/sync-protocol.md` lists who may and the rejections.
 */
export type LeaveRequestMutation = Omit<MutationIn, "name" | "args"> & {
  name: "leave.request";
  args: NoticeArgs;
};

/**
 * `leave.decide`: approve or deny a leave request; the last decision made stands. Answered by a `MutationResult` in `PushResponse.results`; `docs/sync-protocol.md` lists who may and the rejections.
 */
export type LeaveDecideMutation = Omit<MutationIn, "name" | "args"> & {
  name: "leave.decide";
  args: LeaveDecideArgs;
};

/**
 * ``leave.decide``: approve or deny a leave request. A later decision overrides.
 */
export type LeaveDecideArgs = {
  leave_id: number;
  decision: LeaveDecision;
  /**
   * @default null
   */
  note?: string | null;
};

/**
 * `form.request`: see :class:`schemas.forms.FormRequestArgs`. Answered by a `MutationResult` in `PushResponse.results`; `docs/sync-protocol.md` lists who may and the rejections.
 */
export type FormRequestMutation = Omit<MutationIn, "name" | "args"> & {
  name: "form.request";
  args: FormRequestArgs;
};

/**
 * ``form.request``: send definition ``definition_id`` to the guardians of the current
 * pupils of ``group_id`` (or of ``pupil_ids`` among them), due on ``due_on``.
 *
 * The group's teachers, the school's principals and the city's admins may; the definition
 * must belong to the group's school or its municipality.
 */
export type FormRequestArgs = {
  definition_id: number;
  group_id: number;
  due_on: string;
  /**
   * Chosen pupils of the group; empty: all of its current pupils.
   *
   * @default []
   */
  pupil_ids?: number[];
  /**
   * @default null
   */
  note?: string | null;
};

/**
 * `form.save`: keep a draft (checked as far as it goes; nothing is required). Answered by a `MutationResult` in `PushResponse.results`; `docs/sync-protocol.md` lists who may and the rejections.
 */
export type FormSaveMutation = Omit<MutationIn, "name" | "args"> & {
  name: "form.save";
  args: FormAnswerArgs;
};

/**
 * ``form.save`` (a draft: only what is given is checked, nothing is required) and
 * ``form.submit`` (checked in full against the definition): custodial guardians only.
 */
export type FormAnswerArgs = {
  request_id: number;
  pupil_id: number;
  /**
   * The version of the definition the answers were filled for.
   */
  definition_version: number;
  answers: { [key: string]: string | number | boolean | string[] | null };
};

/**
 * `form.submit`: the answers, checked in full against the definition version. Answered by a `MutationResult` in `PushResponse.results`; `docs/sync-protocol.md` lists who may and the rejections.
 */
export type FormSubmitMutation = Omit<MutationIn, "name" | "args"> & {
  name: "form.submit";
  args: FormAnswerArgs;
};

/**
 * `form.sign`: a custodial guardian signs the submitted answers they saw. Answered by a `MutationResult` in `PushResponse.results`; `docs/sync-protocol.md` lists who may and the rejections.
 */
export type FormSignMutation = Omit<MutationIn, "name" | "args"> & {
  name: "form.sign";
  args: FormSignArgs;
};

/**
 * ``form.sign``: a custodial guardian signs the answers they saw, which must still be
 * the response's answers (else ``mutation.conflict``).
 */
export type FormSignArgs = {
  request_id: number;
  pupil_id: number;
  definition_version: number;
  answers: { [key: string]: string | number | boolean | string[] | null };
};

/**
 * The body of every error answer.
 *
 * Left out of the body when they hold their default (read an absent field as its `default`): `field`.
 */
export type ErrorBody = {
  code: ErrorCode;
  /**
   * A sentence a person can read. Not for branching: use ``code``.
   */
  message: string;
  /**
   * Where in the request the problem is, as a JSON path (``$.password``) or a parameter name.
   *
   * @default null
   */
  field?: string | null;
};

export type ErrorCode = "account.device_not_found" | "account.not_found" | "activation.invalid" | "activation.username_taken" | "auth.bad_credentials" | "auth.forbidden" | "auth.invalid_token" | "auth.rate_limited" | "auth.required" | "channel.invalid_address" | "channel.unsupported" | "import.not_applicable" | "import.not_found" | "method_not_allowed" | "not_found" | "push.endpoint_not_allowed" | "push.invalid_device_token" | "push.invalid_keys" | "push.native_unavailable" | "push.unknown_app" | "request.invalid" | "request.malformed" | "request.too_large" | "request.unsupported_media_type" | "server.error" | "server.unavailable" | "signin.ambiguous" | "signin.handoff_invalid" | "signin.invalid_id_token" | "signin.no_match" | "signin.provider_unavailable" | "signin.redirect_not_allowed" | "signin.refused" | "signin.role_not_allowed" | "signin.state_mismatch" | "signin.unknown_provider" | "sync.bad_cursor" | "sync.client_mismatch" | "sync.update_required" | "sync.version_unknown";
