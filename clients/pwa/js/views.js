// The views, built from the device's store: they work offline. Each returns an element.

import { h, field } from './dom.js';
import { when, dayLabel, dateRange, clock } from './format.js';
import { t, language, languageName, LANGUAGES, OWN_NAMES } from './i18n.js';
import * as db from './db.js';
import { api, ApiError } from './sync.js';
import { dayTimetable, schoolToday, schoolWeek } from './timetable.js';
import { childSwitcher, currentChild, concerning } from './children.js';
import { newMessageView, mayStartConversation, teacherNames } from './conversations.js';
import { localChanges, stateBadge, refusal, errorText } from './outcomes.js';
import { pushSubscription, turnPushOn, turnPushOff } from './push.js';
import { moreView, weekAsked, weekSwitcher } from './layout.js';

const has = (me, role) => (me.roles || []).includes(role);
const isStaff = (me) => has(me, 'teacher') || has(me, 'principal') || has(me, 'admin');

/**
 * The menu for this person: [hash, text key].
 * @returns {[string, string][]}
 */
export function navFor(me) {
  if (isStaff(me)) {
    return [['#/today', 'today'], ['#/messages', 'messages'], ['#/bulletins', 'bulletins'],
      ['#/forms', 'forms'], ['#/absences', 'absences'], ['#/settings', 'settings']];
  }
  if (has(me, 'guardian')) {
    return [['#/today', 'today'], ['#/week', 'week'], ['#/messages', 'messages'],
      ['#/bulletins', 'bulletins'], ['#/absences', 'absences'], ['#/forms', 'forms'],
      ['#/settings', 'settings']];
  }
  return [['#/today', 'today'], ['#/week', 'week'], ['#/messages', 'messages'],
    ['#/bulletins', 'bulletins'], ['#/settings', 'settings']];
}

// The forms' and the staff's views are loaded when first opened, not at every start: a pupil's
// or a guardian's first screen needs neither (docs/benchmarks.md, "PWA start-up"). The service
// worker keeps both for offline use.
const formViews = () => import('./forms.js');
const staffViews = () => import('./staff.js');

export async function renderView(parts, ctx) {
  const me = ctx.state.me;
  const [name, a, b] = parts;
  switch (name) {
    case 'week': return timetableView(ctx, 'week', a);
    case 'more': return moreView(navFor(me));
    case 'roll': return rollCallView(ctx, Number(a), b);
    case 'messages':
      if (a === 'new') return newMessageView(ctx);
      return a ? threadView(ctx, Number(a)) : messagesView(ctx);
    case 'bulletins':
      if (a === 'new') return newBulletinView(ctx);
      if (a && b === 'report') return reportView(ctx, Number(a));
      return a ? bulletinView(ctx, Number(a)) : bulletinsView(ctx);
    case 'absences':
      return isStaff(me) ? (await staffViews()).staffAbsencesView(ctx, a ? Number(a) : null) : absencesView(ctx);
    case 'forms': {
      const forms = await formViews();
      if (isStaff(me) && a === 'new') return (await staffViews()).requestFormView(ctx);
      if (isStaff(me)) return forms.formStatusView(ctx, a ? Number(a) : null);
      return a ? withoutCustody(ctx, await forms.formView(ctx, Number(a))) : forms.formsView(ctx);
    }
    case 'settings': return settingsView(ctx);
    default: return isStaff(me) ? teacherTodayView(ctx) : timetableView(ctx, 'today');
  }
}

// -- whose timetable -----------------------------------------------------------------------

function timetableGroups(ctx) {
  const me = ctx.state.me;
  if (has(me, 'guardian') && !has(me, 'pupil')) {
    const child = currentChild(ctx);
    return new Set(child ? child.group_ids : []);
  }
  return new Set((me.partitions || []).filter((p) => p.startsWith('group:')).map((p) => Number(p.slice(6))));
}

/** The names of the groups on this device, by id: a teacher's lessons say whose they are. */
async function groupNames() {
  return new Map((await db.recordsOf('group')).map((g) => [g.id, g.name]));
}

function lessonItem(slot, extra, groupName) {
  const badges = [];
  if (slot.cancelled) badges.push(h('strong', { className: 'badge cancelled' }, t('cancelled')));
  else if (slot.changed) badges.push(h('strong', { className: 'badge changed' }, t('changed')));
  const details = [];
  if (groupName) details.push(groupName);
  if (slot.room) details.push(t('room', { room: slot.room }));
  if (slot.substitute_teacher_name) details.push(t('substitute', { name: slot.substitute_teacher_name }));
  else if (slot.teacher_name) details.push(t('teacher', { name: slot.teacher_name }));
  return h('li', {
    className: `lesson${slot.cancelled ? ' is-cancelled' : ''}${slot.changed ? ' is-changed' : ''}`,
    'data-lesson': slot.lesson_id,
  },
  h('span', { className: 'time' }, `${clock(slot.starts_at)}–${clock(slot.ends_at)}`),
  h('span', { className: 'what' },
    h('span', { className: 'subject' }, slot.subject), ' ', badges,
    h('span', { className: 'details' }, details.join(' · ')),
    slot.note ? h('span', { className: 'note' }, slot.note) : null),
  extra || null);
}

function lessonList(slots, emptyText, extra, groups) {
  if (!slots.length) return h('p', { className: 'empty' }, emptyText);
  return h('ol', { className: 'lessons' }, slots.map((s) => lessonItem(s, extra && extra(s), groups && groups.get(s.group_id))));
}

function weekSpan(days, lang) {
  return dateRange(days[0], days[days.length - 1], lang);
}

async function timetableView(ctx, mode, asked) {
  const groups = timetableGroups(ctx);
  const lessons = await db.recordsOf('lesson');
  const changes = await db.recordsOf('lesson_change');
  const keep = (l) => groups.has(l.group_id);
  const today = schoolToday();
  const child = has(ctx.state.me, 'guardian') && !has(ctx.state.me, 'pupil') ? currentChild(ctx) : null;
  const whose = child ? h('p', { className: 'whose', id: 'whose' }, `${child.person.given_name} ${child.person.family_name}`) : null;
  if (mode === 'today') {
    return h('section', { 'aria-labelledby': 'view-title' },
      h('h1', { id: 'view-title' }, `${t('today')}: ${dayLabel(today, language())}`),
      childSwitcher(ctx), whose,
      lessonList(dayTimetable(lessons, changes, today, keep), t('no_lessons_today')));
  }
  const monday = weekAsked(asked);
  return h('section', { 'aria-labelledby': 'view-title' },
    h('h1', { id: 'view-title' }, t('week_of', { date: weekSpan(schoolWeek(monday), language()) })),
    childSwitcher(ctx), whose, weekSwitcher(monday),
    schoolWeek(monday).map((day) => h('section', { className: `day${day === today ? ' is-today' : ''}`, 'aria-labelledby': `d-${day}` },
      h('h2', { id: `d-${day}` }, dayLabel(day, language())),
      lessonList(dayTimetable(lessons, changes, day, keep), t('no_lessons')))));
}

// -- teacher: today's lessons and roll call --------------------------------------------------

async function teacherTodayView(ctx) {
  const me = ctx.state.me;
  const today = schoolToday();
  const lessons = await db.recordsOf('lesson');
  const changes = await db.recordsOf('lesson_change');
  const slots = dayTimetable(lessons, changes, today).filter((s) =>
    s.substitute_teacher_id === me.person.id || (s.teacher_id === me.person.id && !s.substitute_teacher_id));
  // A teacher has many groups: each lesson names its group, as its roll call does.
  const groups = await groupNames();
  return h('section', { 'aria-labelledby': 'view-title' },
    h('h1', { id: 'view-title' }, `${t('my_lessons')}: ${dayLabel(today, language())}`),
    lessonList(slots, t('no_lessons_today'), (s) => (s.cancelled ? null
      : h('a', { className: 'button', href: `#/roll/${s.lesson_id}/${today}`, id: `roll-${s.lesson_id}` }, t('roll_call'))), groups));
}

const MARK_OF_STATUS = {
  present: 'present', late: 'late', unexplained: 'absent', excused: 'absent', on_leave: 'absent',
};

async function rollCallView(ctx, lessonId, day) {
  const lesson = await db.getRecord('lesson', lessonId);
  const back = h('a', { href: '#/today', className: 'back' }, t('back'));
  if (!lesson) return h('section', {}, back, h('p', {}, t('no_lessons')));
  const roster = await db.getRecord('roster', lesson.group_id);
  // Each pupil's last mark made on this device and what became of it (js/outcomes.js):
  // waiting to send, sent, or refused with the reason, shown on the pupil's row.
  const changes = new Map();
  for (const c of await localChanges(['attendance.mark'], (a) => a.lesson_id === lessonId && a.on_date === day)) {
    changes.set(c.args.pupil_id, c); // oldest first: the last one stands
  }
  const marks = new Map();
  for (const a of await db.recordsOf('attendance')) {
    if (a.lesson_id === lessonId && a.on_date === day && MARK_OF_STATUS[a.status]) {
      marks.set(a.pupil_id, MARK_OF_STATUS[a.status]);
    }
  }
  // A mark waiting to send is the teacher's latest word; one sent stands until its record
  // arrives (the pull right after the push brings it).
  for (const c of changes.values()) {
    if (c.state === 'waiting' || (c.state === 'sent' && !marks.has(c.args.pupil_id))) marks.set(c.args.pupil_id, c.args.status);
  }
  const group = (await groupNames()).get(lesson.group_id);
  const title = group
    ? t('roll_call_for_group', { group, subject: lesson.subject, time: clock(lesson.starts_at) })
    : t('roll_call_for', { subject: lesson.subject, time: clock(lesson.starts_at) });
  if (!roster) return h('section', {}, back, h('h1', { id: 'view-title' }, title), h('p', {}, t('no_roster')));
  // Opened (by an old link) for a day the lesson does not take place: every mark would be
  // refused (mutation.invalid_args on on_date), so none is offered.
  const slot = dayTimetable([lesson], await db.recordsOf('lesson_change'), day)[0];
  if (!slot || slot.cancelled) {
    return h('section', { 'aria-labelledby': 'view-title' }, back,
      h('h1', { id: 'view-title' }, title),
      h('p', { className: 'sub' }, dayLabel(day, language())),
      h('p', { className: 'empty', id: 'no-lesson-that-day' }, t(slot ? 'roll_call_cancelled' : 'roll_call_no_lesson')));
  }
  const pupils = [...roster.pupils].sort((x, y) => x.name.localeCompare(y.name, language()));
  const row = (pupil) => {
    const mark = marks.get(pupil.id);
    const change = changes.get(pupil.id);
    const button = (status) => h('button', {
      type: 'button',
      id: `mark-${pupil.id}-${status}`,
      className: `mark mark-${status}`,
      'aria-pressed': String(mark === status),
      onclick: async () => {
        // The same mark already waiting: a double tap's second tap may land on the button
        // drawn anew after the first (dom.js once() guards the old one only).
        if (change && change.state === 'waiting' && change.args.status === status) return;
        const args = { lesson_id: lessonId, on_date: day, pupil_id: pupil.id, status };
        if (status === 'late') args.late_minutes = 5;
        await ctx.mutate('attendance.mark', args);
        ctx.rerender();
      },
    }, t(status));
    return h('li', { className: `pupil${change ? ` is-${change.state}` : ''}`, 'data-pupil': pupil.id, 'data-change': change ? change.id : null },
      h('p', { className: 'who' }, h('span', { className: 'name', id: `pupil-${pupil.id}` }, pupil.name),
        change ? [' ', stateBadge(change.state), ' ', refusal(ctx, change, pupil.name)] : null),
      h('div', { className: 'marks', role: 'group', 'aria-labelledby': `pupil-${pupil.id}` },
        ['present', 'absent', 'late'].map(button)));
  };
  // Most of a class is there: one tap marks everyone not marked yet as present (one
  // attendance.mark per pupil, the protocol has no batch form, queued in one transaction),
  // then the teacher changes the exceptions. Marks already given are left as they are.
  const unmarked = pupils.filter((p) => !marks.has(p.id));
  const done = h('p', { role: 'status', className: 'ok', id: 'all-present-done' }, ctx.state.rollDone || '');
  ctx.state.rollDone = null;
  const allPresent = unmarked.length ? h('div', { className: 'card all-present' },
    h('button', {
      type: 'button',
      id: 'all-present',
      'aria-describedby': 'all-present-hint',
      onclick: async (e) => {
        e.currentTarget.disabled = true; // a second tap must not queue the class twice
        await ctx.mutateAll(unmarked.map((pupil) => ({
          name: 'attendance.mark',
          args: { lesson_id: lessonId, on_date: day, pupil_id: pupil.id, status: 'present' },
        })));
        ctx.state.rollDone = t('all_present_done', { n: unmarked.length });
        ctx.rerender();
      },
    }, t('all_present')),
    h('p', { className: 'hint', id: 'all-present-hint' }, t('all_present_hint', { n: unmarked.length }))) : null;
  return h('section', { 'aria-labelledby': 'view-title' }, back,
    h('h1', { id: 'view-title' }, title),
    h('p', { className: 'sub' }, dayLabel(day, language())),
    allPresent, done,
    h('ul', { className: 'roll', 'data-day': day }, pupils.map(row)));
}

// -- messages ------------------------------------------------------------------------------

async function receiptsFor(itemType) {
  const read = new Set();
  for (const r of await db.recordsOf('receipt')) if (r.item_type === itemType) read.add(r.item_id);
  for (const m of await db.outbox()) if (m.name === `${itemType}.read`) read.add(m.args.id);
  // Applied but its receipt not pulled yet: a view drawn in between must not mark it again.
  for (const o of await db.outcomes()) {
    if (o.name === `${itemType}.read` && o.status === 'applied') read.add(o.args.id);
  }
  return read;
}

async function messagesView(ctx) {
  const me = ctx.state.me;
  const threads = await db.recordsOf('thread');
  const messages = await db.recordsOf('message');
  const groups = await db.recordsOf('group');
  const read = await receiptsFor('message');
  const latest = new Map();
  const unread = new Map();
  for (const m of messages) {
    if (!latest.has(m.thread_id) || latest.get(m.thread_id).sent_at < m.sent_at) latest.set(m.thread_id, m);
    if (m.sender_id !== me.person.id && !read.has(m.id)) unread.set(m.thread_id, (unread.get(m.thread_id) || 0) + 1);
  }
  threads.sort((x, y) => ((latest.get(y.id) || y).sent_at || y.started_at).localeCompare((latest.get(x.id) || x).sent_at || x.started_at));
  // Conversations started on this device: listed at once, with their state, until the
  // threads they made arrive (a sent one is then that thread) or a refusal is dismissed.
  const arrived = (args) => threads.some((th) => th.subject === args.subject
    && args.to.every((id) => th.participants.some((p) => p.id === id)));
  const started = (await localChanges(['message.send'], (args) => Array.isArray(args.to) && args.to.length > 0))
    .filter((c) => c.state !== 'sent' || !arrived(c.args)).reverse();
  const names = started.length ? await teacherNames() : new Map();
  return h('section', { 'aria-labelledby': 'view-title' },
    h('h1', { id: 'view-title' }, t('messages')),
    mayStartConversation(me) ? h('a', { className: 'button', href: '#/messages/new', id: 'new-message-link' }, t('new_message')) : null,
    started.length ? h('ul', { className: 'items', id: 'messages-local' }, started.map((c) => h('li', {
      className: `item is-${c.state}`, 'data-change': c.id,
    },
    h('span', { className: 'what' }, h('span', { className: 'title-plain' }, c.args.subject),
      h('span', { className: 'details' }, t('to_names', { names: c.args.to.map((id) => names.get(id) || id).join(', ') }))),
    stateBadge(c.state), refusal(ctx, c)))) : null,
    threads.length ? h('ul', { className: 'items' }, threads.map((th) => {
      const other = th.participants.filter((p) => p.id !== me.person.id).map((p) => p.name).join(', ');
      const last = latest.get(th.id);
      const about = concerning(me, groups, { organisation_id: th.organisation_id });
      return h('li', { className: unread.get(th.id) ? 'item is-unread' : 'item', 'data-thread': th.id },
        h('a', { href: `#/messages/${th.id}` }, h('span', { className: 'title' }, th.subject),
          h('span', { className: 'details' }, other, last ? ` · ${when(last.sent_at, language())}` : ''),
          about ? h('span', { className: 'details concerns' }, about) : null),
        unread.get(th.id) ? h('span', { className: 'badge' }, t('unread')) : null);
    })) : (started.length ? null : h('p', { className: 'empty' }, t('threads_none'))));
}

async function threadView(ctx, threadId) {
  const me = ctx.state.me;
  const thread = await db.getRecord('thread', threadId);
  const back = h('a', { href: '#/messages', className: 'back' }, t('back'));
  if (!thread) return h('section', {}, back, h('p', {}, t('threads_none')));
  const messages = (await db.recordsOf('message')).filter((m) => m.thread_id === threadId)
    .sort((x, y) => x.sent_at.localeCompare(y.sent_at));
  const read = await receiptsFor('message');
  for (const m of messages) {
    if (m.sender_id !== me.person.id && !read.has(m.id)) await ctx.mutate('message.read', { id: m.id });
  }
  // Replies from this device: waiting, sent (until the message itself arrives) or refused.
  const mine = messages.filter((m) => m.sender_id === me.person.id);
  const replies = (await localChanges(['message.send'], (args) => args.thread_id === threadId))
    .filter((c) => c.state !== 'sent' || !mine.some((m) => m.body === c.args.body));
  const about = concerning(me, await db.recordsOf('group'), { organisation_id: thread.organisation_id });
  const body = h('textarea', { name: 'body', rows: 3, required: true, maxlength: 10000, oninput: ctx.markDirty });
  return h('section', { 'aria-labelledby': 'view-title' }, back,
    h('h1', { id: 'view-title' }, thread.subject),
    about ? h('p', { className: 'details concerns' }, about) : null,
    h('ol', { className: 'messages' },
      messages.map((m) => h('li', { className: m.sender_id === me.person.id ? 'mine' : 'theirs' },
        h('p', { className: 'from' }, `${m.sender_name} · ${when(m.sent_at, language())}`),
        h('p', { className: 'body' }, m.body))),
      replies.map((c) => h('li', { className: `mine is-${c.state}${c.state === 'waiting' ? ' is-pending' : ''}`, 'data-change': c.id },
        h('p', { className: 'from' }, stateBadge(c.state), ' ', refusal(ctx, c)), h('p', { className: 'body' }, c.args.body)))),
    h('form', { className: 'card', onsubmit: async (e) => {
      e.preventDefault();
      if (!body.value.trim()) return;
      await ctx.mutate('message.send', { thread_id: threadId, body: body.value });
      ctx.rerender();
    } }, h('h2', {}, t('reply')), field(t('message_body'), body), h('button', { type: 'submit' }, t('send'))));
}

// -- bulletins -----------------------------------------------------------------------------

async function bulletinsView(ctx) {
  const me = ctx.state.me;
  const bulletins = (await db.recordsOf('bulletin')).sort((x, y) => y.sent_at.localeCompare(x.sent_at));
  const read = await receiptsFor('bulletin');
  const sending = isStaff(me) ? (await db.outbox()).filter((m) => m.name === 'bulletin.send') : [];
  const groups = await db.recordsOf('group');
  return h('section', { 'aria-labelledby': 'view-title' },
    h('h1', { id: 'view-title' }, t('bulletins')),
    isStaff(me) ? h('a', { className: 'button', href: '#/bulletins/new', id: 'new-bulletin' }, t('new_bulletin')) : null,
    sending.length ? h('ul', { className: 'items', id: 'bulletins-pending' }, sending.map((m) => h('li', { className: 'item is-pending' },
      h('span', { className: 'title-plain' }, m.args.title), h('span', { className: 'badge' }, t('pending'))))) : null,
    bulletins.length ? h('ul', { className: 'items' }, bulletins.map((b) => h('li', {
      className: `item${read.has(b.id) ? '' : ' is-unread'}${b.urgent ? ' is-urgent' : ''}`, 'data-bulletin': b.id,
    },
    h('a', { href: `#/bulletins/${b.id}` }, h('span', { className: 'title' }, b.title),
      h('span', { className: 'details' }, `${b.author_name} · ${when(b.sent_at, language())}`),
      concerningLine(me, groups, b)),
    b.urgent ? h('strong', { className: 'badge urgent' }, t('urgent')) : null,
    h('span', { className: 'badge' }, read.has(b.id) ? t('read') : t('unread')))))
      : h('p', { className: 'empty' }, t('bulletins_none')));
}

/** Which child and school a bulletin concerns (a guardian's children may be in two schools). */
function concerningLine(me, groups, b, tag = 'span') {
  const about = concerning(me, groups, { organisation_id: b.organisation_id, group_id: b.group_id });
  return about ? h(tag, { className: 'details concerns' }, about) : null;
}

/** Whether the app offers this person the bulletin's delivery report: its author, and
 * principals and admins (the server decides in the end: anyone else gets a 404). */
function mayAskReport(me, bulletin) {
  return isStaff(me) && (bulletin.author_id === me.person.id || has(me, 'principal') || has(me, 'admin'));
}

async function bulletinView(ctx, id) {
  const me = ctx.state.me;
  const b = await db.getRecord('bulletin', id);
  const back = h('a', { href: '#/bulletins', className: 'back' }, t('back'));
  if (!b) return h('section', {}, back, h('p', {}, t('bulletins_none')));
  if (!(await receiptsFor('bulletin')).has(id)) await ctx.mutate('bulletin.read', { id });
  return h('article', { 'aria-labelledby': 'view-title' }, back,
    h('h1', { id: 'view-title' }, b.title),
    b.urgent ? h('strong', { className: 'badge urgent' }, t('urgent')) : null,
    h('p', { className: 'details' }, `${b.author_name} · ${when(b.sent_at, language())}`),
    concerningLine(me, await db.recordsOf('group'), b, 'p'),
    h('p', { className: 'body' }, b.body),
    mayAskReport(me, b) ? h('a', { className: 'button', id: 'report-link', href: `#/bulletins/${id}/report` }, t('who_was_reached')) : null);
}

// -- staff: a bulletin's delivery report (GET /bulletins/{id}/status, online only) ----------

const RECIPIENT_STATUSES = ['read', 'reached', 'pending', 'not_reached'];
const REPORT_PAGE = 50;

async function reportView(ctx, id) {
  // Live server data, never synced: a background pull must not fetch it again (and lose
  // the pages shown); navigating here again does.
  ctx.state.dirty = true;
  const b = await db.getRecord('bulletin', id);
  const section = h('section', { 'aria-labelledby': 'view-title', id: 'report' },
    h('a', { href: b ? `#/bulletins/${id}` : '#/bulletins', className: 'back' }, t('back')),
    h('h1', { id: 'view-title' }, t('who_was_reached')),
    b ? h('p', { className: 'details' }, `${b.title} · ${when(b.sent_at, language())}`) : null);
  const problem = (key, vars) => h('p', { className: 'error', role: 'alert', id: 'report-problem' }, t(key, vars));
  if (!navigator.onLine || ctx.state.online === false) {
    section.append(problem('report_offline'));
    return section;
  }
  const { deliveryText } = await staffViews();
  const pageSize = ctx.state.reportPage || REPORT_PAGE;
  const fetchPage = (after) => api(`/bulletins/${id}/status?only=not_reached&limit=${pageSize}&after=${after}`);
  let report;
  try {
    report = await fetchPage(0);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) section.append(problem('report_refused'));
    else if (error instanceof ApiError) section.append(problem('report_failed', { reason: errorText(error) }));
    else section.append(problem('report_offline'));
    return section;
  }
  const counts = h('section', { className: 'card', 'aria-labelledby': 'counts-title' },
    h('h2', { id: 'counts-title' }, t('report_counts', { n: report.recipients })),
    h('dl', { className: 'counts', id: 'report-counts' }, RECIPIENT_STATUSES.map((s) => [
      h('dt', {}, t(`recipient_${s}`)),
      h('dd', { 'data-status': s }, String(report.counts[s] ?? 0))])),
    report.expansion === 'expanding' ? h('p', { className: 'hint' }, t('report_expanding')) : null);
  const list = h('ol', { className: 'items', id: 'not-reached' });
  const more = h('button', { type: 'button', className: 'secondary', id: 'report-more' }, t('show_more'));
  const failed = h('p', { role: 'status', className: 'error' });
  const add = (page) => {
    const items = page.people.map((p) => h('li', { className: 'item', 'data-person': p.person_id, tabindex: '-1' },
      h('span', { className: 'name' }, p.name),
      Object.keys(p.channels || {}).length
        ? h('span', { className: 'details' }, Object.entries(p.channels).map(([c, s]) => deliveryText(c, s)).join(' · '))
        : h('span', { className: 'details' }, t('no_channel'))));
    list.append(...items);
    // The last page: no button at all (button's own display rule would beat `hidden`).
    if (page.next_after === null || page.next_after === undefined) more.remove();
    else more.dataset.after = String(page.next_after);
    return items;
  };
  more.addEventListener('click', async () => {
    if (!more.dataset.after) return;
    more.disabled = true;
    failed.textContent = '';
    try {
      const items = add(await fetchPage(Number(more.dataset.after)));
      if (items.length) items[0].focus();
    } catch (_) {
      failed.textContent = t('report_offline');
    }
    more.disabled = false;
  });
  const notReached = h('section', { className: 'card', 'aria-labelledby': 'not-reached-title' },
    h('h2', { id: 'not-reached-title' }, t('not_reached_title', { n: report.counts.not_reached ?? 0 })),
    report.people.length ? [h('p', { className: 'hint' }, t('not_reached_hint')), list, more, failed]
      : h('p', { className: 'empty' }, t('not_reached_none')));
  add(report);
  section.append(counts, notReached,
    h('button', { type: 'button', className: 'secondary', id: 'report-refresh', onclick: () => ctx.rerender() }, t('refresh')));
  return section;
}

// -- staff: a new bulletin (queued through the outbox like every change) --------------------

function bulletinAudiences(me, groups) {
  const partitions = me.partitions || [];
  const taught = new Set(partitions.filter((p) => p.startsWith('group-staff:')).map((p) => Number(p.split(':')[1])));
  const options = groups.filter((g) => taught.has(g.id)).sort((x, y) => x.name.localeCompare(y.name, language()))
    .map((g) => ({ value: `group:${g.id}`, text: `${g.name} (${g.school_name})` }));
  if (has(me, 'principal') || has(me, 'admin')) {
    const schoolNames = new Map(groups.map((g) => [g.school_id, g.school_name]));
    for (const p of partitions.filter((x) => x.startsWith('school-staff:'))) {
      const schoolId = Number(p.split(':')[1]);
      options.unshift({ value: `school:${schoolId}`, text: t('whole_school', { name: schoolNames.get(schoolId) || schoolId }) });
    }
  }
  return options;
}

async function newBulletinView(ctx) {
  const me = ctx.state.me;
  const back = h('a', { href: '#/bulletins', className: 'back' }, t('back'));
  const heading = h('h1', { id: 'view-title' }, t('new_bulletin'));
  if (!isStaff(me)) return h('section', { 'aria-labelledby': 'view-title' }, back, heading, h('p', {}, t('bulletins_none')));
  const audiences = bulletinAudiences(me, await db.recordsOf('group'));
  if (!audiences.length) return h('section', { 'aria-labelledby': 'view-title' }, back, heading, h('p', { className: 'empty' }, t('no_audiences')));
  const audience = h('select', { name: 'audience', onchange: ctx.markDirty },
    audiences.map((o) => h('option', { value: o.value }, o.text)));
  const title = h('input', { name: 'title', required: true, maxlength: 200, oninput: ctx.markDirty });
  const body = h('textarea', { name: 'body', rows: 5, required: true, maxlength: 10000, oninput: ctx.markDirty });
  const role = (value, checked) => h('label', { className: 'choice' },
    h('input', { type: 'checkbox', name: 'roles', value, checked, onchange: ctx.markDirty }), ' ', t(`audience_${value}`));
  const roles = h('fieldset', {}, h('legend', {}, t('bulletin_roles')), role('guardians', true), role('pupils', false), role('staff', false));
  const leader = has(me, 'principal') || has(me, 'admin');
  const urgent = leader ? h('label', { className: 'choice' }, h('input', { type: 'checkbox', name: 'urgent', onchange: ctx.markDirty }), ' ', t('urgent')) : null;
  const error = h('p', { className: 'error', role: 'alert' });
  const form = h('form', { className: 'card', id: 'bulletin-form', onsubmit: async (e) => {
    e.preventDefault();
    error.textContent = '';
    const chosen = [...form.querySelectorAll('input[name=roles]:checked')].map((i) => i.value);
    if (!chosen.length) { error.textContent = t('choose_roles'); return; }
    if (!title.value.trim() || !body.value.trim()) { error.textContent = t('title_and_body'); return; }
    const [kind, audienceId] = audience.value.split(':');
    const args = { audience: kind, audience_id: Number(audienceId), title: title.value.trim(), body: body.value, roles: chosen };
    if (urgent && urgent.querySelector('input').checked) args.urgent = true;
    await ctx.mutate('bulletin.send', args);
    ctx.state.dirty = false;
    ctx.navigate('#/bulletins');
  } },
  field(t('bulletin_audience'), audience), field(t('bulletin_title'), title), field(t('message_body'), body),
  roles, urgent, h('button', { type: 'submit' }, t('send')), error);
  return h('section', { 'aria-labelledby': 'view-title' }, back, heading, form);
}

// -- absences (guardians) ------------------------------------------------------------------

const REASONS = ['illness', 'appointment', 'family', 'other'];

/** The notice a guardian with a right to information only reads where a custodial one acts:
 * why the controls below are disabled (their aria-describedby points here). */
function custodyNotice(child, key) {
  return h('p', { className: 'notice', id: 'cannot-act' }, t(key, { name: child.person.given_name }));
}

/** A form as forms.js draws it, for a child this guardian has no custody of: the answers
 * shown read-only, "Submit" and "Sign" disabled, and the reason said before the act. */
function withoutCustody(ctx, view) {
  const me = ctx.state.me;
  const child = has(me, 'guardian') && !has(me, 'pupil') ? currentChild(ctx) : null;
  const form = view.querySelector('#form-fill');
  if (!child || child.guardianship === 'custodial' || !form) return view;
  for (const control of form.querySelectorAll('input, select, textarea, button')) {
    control.disabled = true;
    control.setAttribute('aria-describedby', 'cannot-act');
  }
  form.prepend(custodyNotice(child, 'info_only_forms'));
  if (!form.querySelector('.actions')) {
    form.append(h('div', { className: 'actions' },
      h('button', { type: 'button', disabled: true, 'aria-describedby': 'cannot-act' }, t('submit')),
      h('button', { type: 'button', id: 'sign', disabled: true, 'aria-describedby': 'cannot-act' }, t('sign'))));
  }
  return view;
}

// How long the line under the absence form says what became of the report just sent.
const ANSWER_SHOWN_MS = 60_000;

const NOTICE_KIND = { 'absence.report': 'report', 'absence.explain': 'explanation' };

/** Whether a notice record is the one a change from this device made. */
function madeBy(change, notice) {
  const a = change.args;
  return NOTICE_KIND[change.name] === notice.kind && a.pupil_id === notice.pupil_id
    && a.from_date === notice.from_date && a.to_date === notice.to_date && a.reason === notice.reason;
}

// The server's limits (schemas/absences.py): checked here first, so that a date the server
// would refuse is said at once, next to its field, and nothing is sent.
const MAX_NOTICE_DAYS = 14;
const EXPLAIN_DAYS_BACK = 30;
const DAY_MS = 24 * 60 * 60 * 1000;

/** What is wrong with a report's or an explanation's dates, as [field name, words key], or
 * null: the same rules the server applies (server/absences.py). */
function spanProblem(kind, fromDate, toDate, today) {
  if (!fromDate) return ['from_date', 'absence_check_missing'];
  if (!toDate) return ['to_date', 'absence_check_missing'];
  if (toDate < fromDate) return ['to_date', 'absence_check_order'];
  if ((Date.parse(toDate) - Date.parse(fromDate)) / DAY_MS + 1 > MAX_NOTICE_DAYS) return ['to_date', 'absence_check_long'];
  if (kind === 'absence.report' && fromDate < today) return ['from_date', 'absence_check_report_past'];
  if (kind === 'absence.explain' && toDate > today) return ['to_date', 'absence_check_explain_future'];
  if (kind === 'absence.explain' && (Date.parse(today) - Date.parse(fromDate)) / DAY_MS > EXPLAIN_DAYS_BACK) {
    return ['from_date', 'absence_check_explain_old'];
  }
  return null;
}

async function absencesView(ctx) {
  const child = currentChild(ctx);
  if (!child) return h('p', {}, t('no_lessons'));
  const pupilId = child.person.id;
  const today = schoolToday();
  const prefill = ctx.state.explain || null;
  ctx.state.explain = null;
  const custodial = child.guardianship === 'custodial';
  // Without custody the form is still drawn, every control disabled and described by the
  // reason, so the guardian learns before trying that only a custodial guardian may act.
  const why = custodial ? undefined : 'cannot-act';
  const off = { disabled: !custodial, 'aria-describedby': why };
  const kind = h('select', { name: 'kind', onchange: ctx.markDirty, ...off },
    h('option', { value: 'absence.report', selected: !prefill }, t('kind_report')),
    h('option', { value: 'absence.explain', selected: Boolean(prefill) }, t('kind_explain')));
  const from = h('input', { type: 'date', name: 'from_date', required: true, value: prefill || today, oninput: ctx.markDirty, ...off });
  const to = h('input', { type: 'date', name: 'to_date', required: true, value: prefill || today, oninput: ctx.markDirty, ...off });
  const reason = h('select', { name: 'reason', ...off }, REASONS.map((r) => h('option', { value: r }, t(`reason_${r}`))));
  const note = h('textarea', { name: 'note', rows: 2, maxlength: 500, oninput: ctx.markDirty, ...off });
  const notices = (await db.recordsOf('absence_notice')).filter((n) => n.pupil_id === pupilId)
    .sort((x, y) => y.from_date.localeCompare(x.from_date));
  // What this device reported or explained: waiting, sent, refused. A sent one whose notice
  // has arrived is shown as that notice (marked sent); the others are listed above them.
  const changes = await localChanges(Object.keys(NOTICE_KIND), (args) => args.pupil_id === pupilId);
  const sentHere = (n) => changes.some((c) => c.state === 'sent' && madeBy(c, n));
  const local = changes.filter((c) => c.state !== 'sent' || !notices.some((n) => madeBy(c, n))).reverse();
  // After "Send" the form is drawn again empty, for the next report, and the line under it
  // (focused, a status) follows the change just sent: sending, or saved on the device, then
  // sent or refused, for a minute after the answer (the list below keeps its state).
  let sentNow = ctx.state.absenceSent && ctx.state.absenceSent.pupilId === pupilId
    ? changes.find((c) => c.id === ctx.state.absenceSent.id) : null;
  if (sentNow && sentNow.outcome && Date.now() - Date.parse(sentNow.outcome.at) > ANSWER_SHOWN_MS) sentNow = null;
  if (!sentNow) ctx.state.absenceSent = null;
  const doneText = !sentNow ? ''
    : sentNow.state === 'waiting' ? t(navigator.onLine ? 'absence_sending' : 'absence_queued')
      : t(`absence_${sentNow.state}`);
  const done = h('p', { role: 'status', className: sentNow && sentNow.state === 'refused' ? 'error' : 'ok', id: 'absence-done', tabindex: '-1' }, doneText);
  const lessons = new Map((await db.recordsOf('lesson')).map((l) => [l.id, l]));
  const unexplained = (await db.recordsOf('attendance'))
    .filter((a) => a.pupil_id === pupilId && a.status === 'unexplained')
    .sort((x, y) => y.on_date.localeCompare(x.on_date));
  const notice = (range, n) => `${range} · ${t(`reason_${n.reason}`)}`;
  return h('section', { 'aria-labelledby': 'view-title' },
    h('h1', { id: 'view-title' }, t('absences')),
    childSwitcher(ctx),
    h('p', { className: 'whose', id: 'whose' }, `${child.person.given_name} ${child.person.family_name}`),
    custodial ? null : custodyNotice(child, 'info_only_absences'),
    unexplained.length ? h('section', { 'aria-labelledby': 'unexplained-title' },
      h('h2', { id: 'unexplained-title' }, t('unexplained')),
      h('ul', { className: 'items' }, unexplained.map((a) => h('li', { className: 'item' },
        `${dayLabel(a.on_date, language())} ${(lessons.get(a.lesson_id) || {}).subject || ''}`, ' ',
        h('button', { type: 'button', className: 'link', ...off, onclick: () => { ctx.state.explain = a.on_date; ctx.rerender(); } }, t('explain')))))) : null,
    h('form', { className: 'card', id: 'absence-form', 'aria-describedby': why, onsubmit: async (e) => {
      e.preventDefault();
      if (!custodial) return;
      for (const input of [from, to]) input.removeAttribute('aria-invalid');
      const problem = spanProblem(kind.value, from.value, to.value, schoolToday());
      if (problem) {
        const [name, key] = problem;
        const input = name === 'from_date' ? from : to;
        input.setAttribute('aria-invalid', 'true');
        done.className = 'error';
        done.textContent = t(key, { days: MAX_NOTICE_DAYS, back: EXPLAIN_DAYS_BACK, report: t('kind_report'), explain: t('kind_explain') });
        input.focus();
        return;
      }
      const args = { pupil_id: pupilId, from_date: from.value, to_date: to.value, reason: reason.value };
      if (note.value.trim()) args.note = note.value.trim();
      const id = await ctx.mutate(kind.value, args);
      ctx.state.dirty = false;
      ctx.state.absenceSent = { id, pupilId };
      await ctx.rerender();
      const line = document.getElementById('absence-done');
      if (line) line.focus();
    } },
    h('h2', {}, prefill ? t('explain_absence') : t('report_absence')),
    field(t('kind'), kind), field(t('from_date'), from), field(t('to_date'), to),
    field(t('reason'), reason), field(t('note'), note),
    h('button', { type: 'submit', ...off }, t('send')), done),
    h('h2', {}, t('notices')),
    local.length ? h('ul', { className: 'items', id: 'notices-local' }, local.map((c) => h('li', {
      className: `item is-${c.state}`, 'data-change': c.id,
    },
    h('span', { className: 'what' }, notice(dateRange(c.args.from_date, c.args.to_date, language()), c.args),
      h('span', { className: 'details' }, t(`mutation_${c.name.replace('.', '_')}`))),
    stateBadge(c.state), refusal(ctx, c)))) : null,
    notices.length ? h('ul', { className: 'items', id: 'notices' }, notices.map((n) => h('li', { className: 'item', 'data-notice': n.id },
      `${notice(dateRange(n.from_date, n.to_date, language()), n)} · ${n.author_name}`, ' ',
      sentHere(n) ? stateBadge('sent') : null)))
      : (local.length ? null : h('p', { className: 'empty' }, t('notices_none'))));
}

// -- settings ------------------------------------------------------------------------------

const MODES = ['instant', 'digest', 'off'];

/** The language picker. Saved on the server (PUT /me/language), so push texts and calendar
 * titles follow it too; online only, as a choice queued offline would show the app in one
 * language and send pushes in another until it reached the server. */
function languageCard(ctx) {
  const me = ctx.state.me;
  const setting = me.language || { language: language(), chosen: null, roster: me.person.language, roster_supported: true };
  const card = h('form', { className: 'card', id: 'language' }, h('h2', {}, t('language')));
  if (setting.roster && !setting.roster_supported) {
    card.append(h('p', { id: 'roster-language' }, t('roster_language_missing', { language: languageName(setting.roster) })));
  }
  const online = navigator.onLine;
  const picker = h('select', { name: 'language', disabled: !online },
    LANGUAGES.map((code) => h('option', { value: code, lang: code, selected: code === language() }, OWN_NAMES[code])));
  const saved = h('p', { role: 'status', className: 'ok', id: 'language-state' }, online ? '' : t('language_needs_network'));
  card.append(field(t('choose_language'), picker), h('button', { type: 'submit', disabled: !online }, t('save')), saved);
  card.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const answer = await api('/me/language', { method: 'PUT', body: { language: picker.value } });
      await ctx.languageChosen(answer);
    } catch (err) {
      saved.className = 'error';
      saved.textContent = err instanceof ApiError ? errorText(err) : t('language_needs_network');
    }
  });
  return card;
}

async function settingsView(ctx) {
  const me = ctx.state.me;
  const section = h('section', { 'aria-labelledby': 'view-title' },
    h('h1', { id: 'view-title' }, t('settings')),
    h('p', {}, `${me.person.given_name} ${me.person.family_name}`));
  section.append(languageCard(ctx));
  const notifications = h('form', { className: 'card', id: 'prefs' }, h('h2', {}, t('notifications')));
  section.append(notifications);
  if (navigator.onLine) {
    try {
      const prefs = await api('/me/notifications');
      const select = (name) => h('select', { name, onchange: ctx.markDirty },
        MODES.map((m) => h('option', { value: m, selected: prefs[name] === m }, t(`mode_${m}`))));
      const time = (name) => h('input', { type: 'time', name, value: (prefs[name] || '').slice(0, 5), oninput: ctx.markDirty });
      const controls = { webpush: select('webpush'), apprise: select('apprise'), quiet_start: time('quiet_start'), quiet_end: time('quiet_end'), digest_at: time('digest_at') };
      const saved = h('p', { role: 'status', className: 'ok' });
      notifications.append(field(t('push_mode'), controls.webpush), field(t('apprise_mode'), controls.apprise),
        field(t('quiet_start'), controls.quiet_start), field(t('quiet_end'), controls.quiet_end),
        field(t('digest_at'), controls.digest_at), h('button', { type: 'submit' }, t('save')), saved);
      notifications.addEventListener('submit', async (e) => {
        e.preventDefault();
        const body = { webpush: controls.webpush.value, apprise: controls.apprise.value,
          quiet_start: controls.quiet_start.value || null, quiet_end: controls.quiet_end.value || null,
          digest_at: controls.digest_at.value || '18:00' };
        try { await api('/me/notifications', { method: 'PUT', body }); saved.textContent = t('saved'); ctx.state.dirty = false; } catch (err) { saved.textContent = err instanceof ApiError ? errorText(err) : t('needs_network'); }
      });
      const channels = await api('/me/channels');
      section.append(h('section', { className: 'card' }, h('h2', {}, t('channels')),
        channels.length ? h('ul', {}, channels.map((c) => h('li', {}, [c.address || c.scheme, c.label].filter(Boolean).join(' · ')))) : h('p', {}, t('channels_none'))));
    } catch (_) {
      notifications.append(h('p', {}, t('needs_network')));
    }
  } else {
    notifications.append(h('p', {}, t('needs_network')));
  }
  const pushState = h('p', { role: 'status', id: 'push-state' });
  const pushButton = h('button', { type: 'button', id: 'push-toggle' });
  const showPush = async () => {
    const on = Boolean(await pushSubscription().catch(() => null));
    pushState.textContent = on ? t('push_is_on') : t('push_is_off');
    pushButton.textContent = on ? t('push_off') : t('push_on');
    pushButton.onclick = async () => {
      try { if (on) await turnPushOff(); else await turnPushOn(); } catch (err) { pushState.textContent = t('push_failed', { reason: err instanceof ApiError ? errorText(err) : err.message }); return; }
      showPush();
    };
  };
  showPush();
  section.append(h('section', { className: 'card' }, h('h2', {}, 'Web Push'), pushState, pushButton),
    h('button', { type: 'button', className: 'secondary', id: 'log-out', onclick: ctx.logOut }, t('log_out')));
  return section;
}
