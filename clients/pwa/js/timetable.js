// A day's timetable built offline from the synced records, as clients/python/timetable.py
// does: the weekly plan with that date's change applied.

const HELSINKI = 'Europe/Helsinki';

/** Today's date (YYYY-MM-DD) where the schools are. */
export function schoolToday(now = new Date()) {
  return isoDateIn(now, HELSINKI);
}

function isoDateIn(when, timeZone) {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone, year: 'numeric', month: '2-digit', day: '2-digit',
  }).formatToParts(when);
  const get = (t) => parts.find((p) => p.type === t).value;
  return `${get('year')}-${get('month')}-${get('day')}`;
}

/** ISO weekday (1 = Monday) of a YYYY-MM-DD date. */
export function isoWeekday(day) {
  const d = new Date(`${day}T12:00:00Z`).getUTCDay();
  return d === 0 ? 7 : d;
}

export function addDays(day, n) {
  const d = new Date(`${day}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

/** Monday to Friday of the week of ``day``. */
export function schoolWeek(day) {
  const monday = addDays(day, 1 - isoWeekday(day));
  return [0, 1, 2, 3, 4].map((n) => addDays(monday, n));
}

const hhmm = (t) => (t || '').slice(0, 5);

/**
 * The lessons of ``day`` in time order. ``lessons`` and ``changes`` are the synced records;
 * ``keep`` (optional) chooses lessons, e.g. by group or teacher.
 * @param {any[]} lessons
 * @param {any[]} changes
 * @param {string} day
 * @param {(lesson: any) => boolean} [keep]
 */
export function dayTimetable(lessons, changes, day, keep = () => true) {
  const byLesson = new Map();
  for (const c of changes) if (c.on_date === day) byLesson.set(c.lesson_id, c);
  const weekday = isoWeekday(day);
  const slots = [];
  for (const lesson of lessons) {
    if (lesson.weekday !== weekday || !keep(lesson)) continue;
    if (lesson.valid_from > day) continue;
    if (lesson.valid_to && lesson.valid_to < day) continue;
    const change = byLesson.get(lesson.id);
    slots.push({
      lesson_id: lesson.id,
      group_id: lesson.group_id,
      subject: lesson.subject,
      starts_at: hhmm((change && change.starts_at) || lesson.starts_at),
      ends_at: hhmm((change && change.ends_at) || lesson.ends_at),
      room: (change && change.room) || lesson.room || '',
      teacher_id: lesson.teacher_id,
      teacher_name: lesson.teacher_name || '',
      cancelled: Boolean(change && change.cancelled),
      substitute_teacher_id: change ? change.substitute_teacher_id : undefined,
      substitute_teacher_name: (change && change.substitute_teacher_name) || '',
      room_changed: Boolean(change && change.room && change.room !== lesson.room),
      time_changed: Boolean(change && change.starts_at),
      note: (change && change.note) || '',
      changed: Boolean(change),
      on_date: day,
    });
  }
  return slots.sort((a, b) => (a.starts_at + a.subject).localeCompare(b.starts_at + b.subject));
}
