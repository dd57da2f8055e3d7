// The views, built from the device's store: they work offline. Each returns an element.

import { h, field, when, dayLabel } from './dom.js';
import { t, language } from './i18n.js';
import * as db from './db.js';
import { api } from './sync.js';
import { dayTimetable, schoolToday, schoolWeek } from './timetable.js';
import { formsView, formView, formStatusView } from './forms.js';
import { pushSubscription, turnPushOn, turnPushOff } from './push.js';

const has = (me, role) => (me.roles || []).includes(role);
const isStaff = (me) => has(me, 'teacher') || has(me, 'principal') || has(me, 'admin');

/** The menu for this person: [hash, text key]. */
export function navFor(me) {
  if (isStaff(me)) {
    return [['#/today', 'today'], ['#/messages', 'messages'], ['#/bulletins', 'bulletins'],
      ['#/forms', 'forms'], ['#/settings', 'settings']];
  }
  if (has(me, 'guardian')) {
    return [['#/today', 'today'], ['#/week', 'week'], ['#/messages', 'messages'],
      ['#/bulletins', 'bulletins'], ['#/absences', 'absences'], ['#/forms', 'forms'],
      ['#/settings', 'settings']];
  }
  return [['#/today', 'today'], ['#/week', 'week'], ['#/messages', 'messages'],
    ['#/bulletins', 'bulletins'], ['#/settings', 'settings']];
}

export async function renderView(parts, ctx) {
  const me = ctx.state.me;
  const [name, a, b] = parts;
  switch (name) {
    case 'week': return timetableView(ctx, 'week');
    case 'roll': return rollCallView(ctx, Number(a), b);
    case 'messages': return a ? threadView(ctx, Number(a)) : messagesView(ctx);
    case 'bulletins': return a ? bulletinView(ctx, Number(a)) : bulletinsView(ctx);
    case 'absences': return absencesView(ctx);
    case 'forms':
      if (isStaff(me)) return formStatusView(ctx, a ? Number(a) : null);
      return a ? formView(ctx, Number(a)) : formsView(ctx);
    case 'settings': return settingsView(ctx);
    default: return isStaff(me) ? teacherTodayView(ctx) : timetableView(ctx, 'today');
  }
}

// -- whose timetable -----------------------------------------------------------------------

/** The child chosen in the switcher (guardians), or null. */
export function currentChild(ctx) {
  const children = ctx.state.me.children || [];
  return children.find((c) => c.person.id === ctx.state.childId) || children[0] || null;
}

/** A guardian's switch between children: one button per child, the chosen one pressed. */
export function childSwitcher(ctx) {
  const children = ctx.state.me.children || [];
  if (children.length < 2) return null;
  const chosen = currentChild(ctx);
  return h('div', { className: 'switcher', role: 'group', 'aria-label': t('choose_child') },
    children.map((c) => h('button', {
      type: 'button',
      id: `child-${c.person.id}`,
      'aria-pressed': String(c.person.id === chosen.person.id),
      'data-child': c.person.id,
      onclick: () => ctx.setChild(c.person.id),
    }, c.person.given_name)));
}

function timetableGroups(ctx) {
  const me = ctx.state.me;
  if (has(me, 'guardian') && !has(me, 'pupil')) {
    const child = currentChild(ctx);
    return new Set(child ? child.group_ids : []);
  }
  return new Set((me.partitions || []).filter((p) => p.startsWith('group:')).map((p) => Number(p.slice(6))));
}

function lessonItem(slot, extra) {
  const badges = [];
  if (slot.cancelled) badges.push(h('strong', { className: 'badge cancelled' }, t('cancelled')));
  else if (slot.changed) badges.push(h('strong', { className: 'badge changed' }, t('changed')));
  const details = [];
  if (slot.room) details.push(t('room', { room: slot.room }));
  if (slot.substitute_teacher_name) details.push(t('substitute', { name: slot.substitute_teacher_name }));
  else if (slot.teacher_name) details.push(t('teacher', { name: slot.teacher_name }));
  return h('li', {
    className: `lesson${slot.cancelled ? ' is-cancelled' : ''}${slot.changed ? ' is-changed' : ''}`,
    'data-lesson': slot.lesson_id,
  },
  h('span', { className: 'time' }, `${slot.starts_at}–${slot.ends_at}`),
  h('span', { className: 'what' },
    h('span', { className: 'subject' }, slot.subject), ' ', badges,
    h('span', { className: 'details' }, details.join(' · ')),
    slot.note ? h('span', { className: 'note' }, slot.note) : null),
  extra || null);
}

function lessonList(slots, emptyText, extra) {
  if (!slots.length) return h('p', { className: 'empty' }, emptyText);
  return h('ol', { className: 'lessons' }, slots.map((s) => lessonItem(s, extra && extra(s))));
}

function weekSpan(days, lang) {
  const short = new Intl.DateTimeFormat(lang, { day: 'numeric', month: 'numeric', timeZone: 'UTC' });
  const at = (day) => short.format(new Date(`${day}T12:00:00Z`));
  return `${at(days[0])}–${at(days[days.length - 1])}`;
}

async function timetableView(ctx, mode) {
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
  return h('section', { 'aria-labelledby': 'view-title' },
    h('h1', { id: 'view-title' }, t('week_of', { date: weekSpan(schoolWeek(today), language()) })),
    childSwitcher(ctx), whose,
    schoolWeek(today).map((day) => h('section', { className: `day${day === today ? ' is-today' : ''}`, 'aria-labelledby': `d-${day}` },
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
  return h('section', { 'aria-labelledby': 'view-title' },
    h('h1', { id: 'view-title' }, `${t('my_lessons')}: ${dayLabel(today, language())}`),
    lessonList(slots, t('no_lessons_today'), (s) => (s.cancelled ? null
      : h('a', { className: 'button', href: `#/roll/${s.lesson_id}/${today}`, id: `roll-${s.lesson_id}` }, t('roll_call')))));
}

const MARK_OF_STATUS = {
  present: 'present', late: 'late', unexplained: 'absent', excused: 'absent', on_leave: 'absent',
};

async function rollCallView(ctx, lessonId, day) {
  const lesson = await db.getRecord('lesson', lessonId);
  const back = h('a', { href: '#/today', className: 'back' }, t('back'));
  if (!lesson) return h('section', {}, back, h('p', {}, t('no_lessons')));
  const roster = await db.getRecord('roster', lesson.group_id);
  const marks = new Map();
  for (const a of await db.recordsOf('attendance')) {
    if (a.lesson_id === lessonId && a.on_date === day && MARK_OF_STATUS[a.status]) {
      marks.set(a.pupil_id, { status: MARK_OF_STATUS[a.status], pending: false });
    }
  }
  for (const m of (await db.outbox()).sort((x, y) => x.id - y.id)) {
    if (m.name === 'attendance.mark' && m.args.lesson_id === lessonId && m.args.on_date === day) {
      marks.set(m.args.pupil_id, { status: m.args.status, pending: true });
    }
  }
  const title = t('roll_call_for', { subject: lesson.subject, time: lesson.starts_at.slice(0, 5) });
  if (!roster) return h('section', {}, back, h('h1', { id: 'view-title' }, title), h('p', {}, t('no_roster')));
  const pupils = [...roster.pupils].sort((x, y) => x.name.localeCompare(y.name, language()));
  const row = (pupil) => {
    const mark = marks.get(pupil.id);
    const button = (status) => h('button', {
      type: 'button',
      id: `mark-${pupil.id}-${status}`,
      className: `mark mark-${status}`,
      'aria-pressed': String(Boolean(mark && mark.status === status)),
      onclick: async () => {
        const args = { lesson_id: lessonId, on_date: day, pupil_id: pupil.id, status };
        if (status === 'late') args.late_minutes = 5;
        await ctx.mutate('attendance.mark', args);
        ctx.rerender();
      },
    }, t(status));
    return h('li', { className: 'pupil', 'data-pupil': pupil.id },
      h('span', { className: 'name', id: `pupil-${pupil.id}` }, pupil.name,
        mark && mark.pending ? h('span', { className: 'pending' }, ` (${t('pending')})`) : null),
      h('div', { className: 'marks', role: 'group', 'aria-labelledby': `pupil-${pupil.id}` },
        ['present', 'absent', 'late'].map(button)));
  };
  return h('section', { 'aria-labelledby': 'view-title' }, back,
    h('h1', { id: 'view-title' }, title),
    h('p', { className: 'sub' }, dayLabel(day, language())),
    h('ul', { className: 'roll' }, pupils.map(row)));
}

// -- messages ------------------------------------------------------------------------------

async function receiptsFor(itemType) {
  const read = new Set();
  for (const r of await db.recordsOf('receipt')) if (r.item_type === itemType) read.add(r.item_id);
  for (const m of await db.outbox()) if (m.name === `${itemType}.read`) read.add(m.args.id);
  return read;
}

async function messagesView(ctx) {
  const me = ctx.state.me;
  const threads = await db.recordsOf('thread');
  const messages = await db.recordsOf('message');
  const read = await receiptsFor('message');
  const latest = new Map();
  const unread = new Map();
  for (const m of messages) {
    if (!latest.has(m.thread_id) || latest.get(m.thread_id).sent_at < m.sent_at) latest.set(m.thread_id, m);
    if (m.sender_id !== me.person.id && !read.has(m.id)) unread.set(m.thread_id, (unread.get(m.thread_id) || 0) + 1);
  }
  threads.sort((x, y) => ((latest.get(y.id) || y).sent_at || y.started_at).localeCompare((latest.get(x.id) || x).sent_at || x.started_at));
  return h('section', { 'aria-labelledby': 'view-title' },
    h('h1', { id: 'view-title' }, t('messages')),
    threads.length ? h('ul', { className: 'items' }, threads.map((th) => {
      const other = th.participants.filter((p) => p.id !== me.person.id).map((p) => p.name).join(', ');
      const last = latest.get(th.id);
      return h('li', { className: unread.get(th.id) ? 'item is-unread' : 'item' },
        h('a', { href: `#/messages/${th.id}` }, h('span', { className: 'title' }, th.subject),
          h('span', { className: 'details' }, other, last ? ` · ${when(last.sent_at, language())}` : '')),
        unread.get(th.id) ? h('span', { className: 'badge' }, t('unread')) : null);
    })) : h('p', { className: 'empty' }, t('threads_none')));
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
  const pending = (await db.outbox()).filter((m) => m.name === 'message.send' && m.args.thread_id === threadId);
  const body = h('textarea', { name: 'body', rows: 3, required: true, maxlength: 10000, oninput: ctx.markDirty });
  return h('section', { 'aria-labelledby': 'view-title' }, back,
    h('h1', { id: 'view-title' }, thread.subject),
    h('ol', { className: 'messages' },
      messages.map((m) => h('li', { className: m.sender_id === me.person.id ? 'mine' : 'theirs' },
        h('p', { className: 'from' }, `${m.sender_name} · ${when(m.sent_at, language())}`),
        h('p', { className: 'body' }, m.body))),
      pending.map((m) => h('li', { className: 'mine is-pending' },
        h('p', { className: 'from' }, t('pending')), h('p', { className: 'body' }, m.args.body)))),
    h('form', { className: 'card', onsubmit: async (e) => {
      e.preventDefault();
      if (!body.value.trim()) return;
      await ctx.mutate('message.send', { thread_id: threadId, body: body.value });
      ctx.rerender();
    } }, h('h2', {}, t('reply')), field(t('message_body'), body), h('button', { type: 'submit' }, t('send'))));
}

// -- bulletins -----------------------------------------------------------------------------

async function bulletinsView(ctx) {
  const bulletins = (await db.recordsOf('bulletin')).sort((x, y) => y.sent_at.localeCompare(x.sent_at));
  const read = await receiptsFor('bulletin');
  return h('section', { 'aria-labelledby': 'view-title' },
    h('h1', { id: 'view-title' }, t('bulletins')),
    bulletins.length ? h('ul', { className: 'items' }, bulletins.map((b) => h('li', {
      className: `item${read.has(b.id) ? '' : ' is-unread'}${b.urgent ? ' is-urgent' : ''}`, 'data-bulletin': b.id,
    },
    h('a', { href: `#/bulletins/${b.id}` }, h('span', { className: 'title' }, b.title),
      h('span', { className: 'details' }, `${b.author_name} · ${when(b.sent_at, language())}`)),
    b.urgent ? h('strong', { className: 'badge urgent' }, t('urgent')) : null,
    h('span', { className: 'badge' }, read.has(b.id) ? t('read') : t('unread')))))
      : h('p', { className: 'empty' }, t('bulletins_none')));
}

async function bulletinView(ctx, id) {
  const b = await db.getRecord('bulletin', id);
  const back = h('a', { href: '#/bulletins', className: 'back' }, t('back'));
  if (!b) return h('section', {}, back, h('p', {}, t('bulletins_none')));
  if (!(await receiptsFor('bulletin')).has(id)) await ctx.mutate('bulletin.read', { id });
  return h('article', { 'aria-labelledby': 'view-title' }, back,
    h('h1', { id: 'view-title' }, b.title),
    b.urgent ? h('strong', { className: 'badge urgent' }, t('urgent')) : null,
    h('p', { className: 'details' }, `${b.author_name} · ${when(b.sent_at, language())}`),
    h('p', { className: 'body' }, b.body));
}

// -- absences (guardians) ------------------------------------------------------------------

const REASONS = ['illness', 'appointment', 'family', 'other'];

async function absencesView(ctx) {
  const child = currentChild(ctx);
  if (!child) return h('p', {}, t('no_lessons'));
  const pupilId = child.person.id;
  const today = schoolToday();
  const prefill = ctx.state.explain || null;
  ctx.state.explain = null;
  const kind = h('select', { name: 'kind', onchange: ctx.markDirty },
    h('option', { value: 'absence.report', selected: !prefill }, t('kind_report')),
    h('option', { value: 'absence.explain', selected: Boolean(prefill) }, t('kind_explain')));
  const from = h('input', { type: 'date', name: 'from_date', required: true, value: prefill || today, oninput: ctx.markDirty });
  const to = h('input', { type: 'date', name: 'to_date', required: true, value: prefill || today, oninput: ctx.markDirty });
  const reason = h('select', { name: 'reason' }, REASONS.map((r) => h('option', { value: r }, t(`reason_${r}`))));
  const note = h('textarea', { name: 'note', rows: 2, maxlength: 500, oninput: ctx.markDirty });
  const done = h('p', { role: 'status', className: 'ok' });
  const custodial = child.guardianship === 'custodial';
  const notices = (await db.recordsOf('absence_notice')).filter((n) => n.pupil_id === pupilId)
    .sort((x, y) => y.from_date.localeCompare(x.from_date));
  const lessons = new Map((await db.recordsOf('lesson')).map((l) => [l.id, l]));
  const unexplained = (await db.recordsOf('attendance'))
    .filter((a) => a.pupil_id === pupilId && a.status === 'unexplained')
    .sort((x, y) => y.on_date.localeCompare(x.on_date));
  return h('section', { 'aria-labelledby': 'view-title' },
    h('h1', { id: 'view-title' }, t('absences')),
    childSwitcher(ctx),
    h('p', { className: 'whose', id: 'whose' }, `${child.person.given_name} ${child.person.family_name}`),
    unexplained.length ? h('section', { 'aria-labelledby': 'unexplained-title' },
      h('h2', { id: 'unexplained-title' }, t('unexplained')),
      h('ul', { className: 'items' }, unexplained.map((a) => h('li', { className: 'item' },
        `${dayLabel(a.on_date, language())} ${(lessons.get(a.lesson_id) || {}).subject || ''}`, ' ',
        custodial ? h('button', { type: 'button', className: 'link', onclick: () => { ctx.state.explain = a.on_date; ctx.rerender(); } }, t('explain')) : null)))) : null,
    custodial ? h('form', { className: 'card', id: 'absence-form', onsubmit: async (e) => {
      e.preventDefault();
      const args = { pupil_id: pupilId, from_date: from.value, to_date: to.value, reason: reason.value };
      if (note.value.trim()) args.note = note.value.trim();
      await ctx.mutate(kind.value, args);
      ctx.state.dirty = false;
      done.textContent = t('queued');
      ctx.rerender();
    } },
    h('h2', {}, prefill ? t('explain_absence') : t('report_absence')),
    field(t('kind'), kind), field(t('from_date'), from), field(t('to_date'), to),
    field(t('reason'), reason), field(t('note'), note),
    h('button', { type: 'submit' }, t('send')), done) : null,
    h('h2', {}, t('notices')),
    notices.length ? h('ul', { className: 'items' }, notices.map((n) => h('li', { className: 'item' },
      `${n.from_date}${n.to_date !== n.from_date ? ` – ${n.to_date}` : ''} · ${t(`reason_${n.reason}`)} · ${n.author_name}`)))
      : h('p', { className: 'empty' }, t('notices_none')));
}

// -- settings ------------------------------------------------------------------------------

const MODES = ['instant', 'digest', 'off'];

async function settingsView(ctx) {
  const me = ctx.state.me;
  const section = h('section', { 'aria-labelledby': 'view-title' },
    h('h1', { id: 'view-title' }, t('settings')),
    h('p', {}, `${me.person.given_name} ${me.person.family_name} · ${t('language')}: ${language()}`));
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
        try { await api('/me/notifications', { method: 'PUT', body }); saved.textContent = t('saved'); ctx.state.dirty = false; } catch (err) { saved.textContent = err.message; }
      });
      const channels = await api('/me/channels');
      section.append(h('section', { className: 'card' }, h('h2', {}, t('channels')),
        channels.length ? h('ul', {}, channels.map((c) => h('li', {}, `${c.scheme}: ${c.label}`))) : h('p', {}, t('channels_none'))));
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
      try { if (on) await turnPushOff(); else await turnPushOn(); } catch (err) { pushState.textContent = t('push_failed', { reason: err.message }); return; }
      showPush();
    };
  };
  showPush();
  section.append(h('section', { className: 'card' }, h('h2', {}, 'Web Push'), pushState, pushButton),
    h('button', { type: 'button', className: 'secondary', id: 'log-out', onclick: ctx.logOut }, t('log_out')));
  return section;
}
