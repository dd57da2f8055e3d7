// Teachers' and principals' views (issue 18): a group's absences and the leave requests to
// decide (#/absences), and requesting a form from a group (#/forms/new). What is live server
// data (a group's absence figures, the definitions a school may send) needs the network and
// says so offline; what is a change (leave.decide, form.request) goes through the outbox
// like every change, so it may be done offline once the page is drawn.

import { h, field } from './dom.js';
import { dateRange, dayLabel } from './format.js';
import { t, language, localText } from './i18n.js';
import * as db from './db.js';
import { api, ApiError } from './sync.js';
import { errorText } from './outcomes.js';
import { addDays, schoolToday } from './timetable.js';

const has = (me, role) => (me.roles || []).includes(role);
const leads = (me) => has(me, 'principal') || has(me, 'admin');
const online = (ctx) => navigator.onLine && ctx.state.online !== false;

/** The groups this person may act for: those they teach (their group-staff partitions)
 * and, for principals and admins, every synced group of their schools. */
export async function staffGroups(me) {
  const partitions = me.partitions || [];
  const taught = new Set(partitions.filter((p) => p.startsWith('group-staff:')).map((p) => Number(p.split(':')[1])));
  const schools = new Set(leads(me) ? partitions.filter((p) => p.startsWith('school-staff:')).map((p) => Number(p.split(':')[1])) : []);
  return (await db.recordsOf('group'))
    .filter((g) => taught.has(g.id) || schools.has(g.school_id))
    .sort((x, y) => x.name.localeCompare(y.name, language()));
}

function needsNetwork(id) {
  return h('p', { className: 'notice', id, role: 'status' }, t('staff_needs_network'));
}

/** The pupils' names this device knows (the rosters of the groups taught). */
async function pupilNames() {
  const names = new Map();
  for (const roster of await db.recordsOf('roster')) for (const p of roster.pupils) names.set(p.id, p.name);
  return names;
}

// -- leave requests ------------------------------------------------------------------------

async function leaveSection(ctx) {
  const names = await pupilNames();
  const waiting = new Map();
  for (const m of await db.outbox()) if (m.name === 'leave.decide') waiting.set(m.args.leave_id, m.args.decision);
  // Applied, but the notice with its decision not pulled yet: decided all the same.
  const applied = new Set((await db.outcomes())
    .filter((o) => o.name === 'leave.decide' && o.status === 'applied').map((o) => o.args.leave_id));
  const leaves = (await db.recordsOf('absence_notice'))
    .filter((n) => n.kind === 'leave' && ((!n.decision && !applied.has(n.id)) || waiting.has(n.id)))
    .sort((x, y) => x.from_date.localeCompare(y.from_date));
  const lang = language();
  const item = (n) => {
    const who = names.get(n.pupil_id) || t('pupil_number', { id: n.pupil_id });
    const chosen = waiting.get(n.id);
    const decide = (decision) => h('button', {
      type: 'button',
      className: decision === 'approved' ? '' : 'secondary',
      id: `leave-${n.id}-${decision}`,
      'aria-describedby': `leave-${n.id}`,
      onclick: async (e) => {
        e.currentTarget.disabled = true;
        await ctx.mutate('leave.decide', { leave_id: n.id, decision });
        ctx.rerender();
      },
    }, t(`leave_${decision === 'approved' ? 'approve' : 'deny'}`));
    return h('li', { className: 'item leave', 'data-leave': n.id },
      h('span', { className: 'what', id: `leave-${n.id}` },
        h('span', { className: 'name' }, who),
        h('span', { className: 'details' }, `${dateRange(n.from_date, n.to_date, lang)} · ${t(`reason_${n.reason}`)} · ${n.author_name}`),
        n.note ? h('span', { className: 'note' }, n.note) : null),
      chosen
        ? h('span', { className: 'badge', id: `leave-${n.id}-state` }, t(`leave_${chosen}_waiting`))
        : h('span', { className: 'actions' }, decide('approved'), decide('denied')));
  };
  return h('section', { className: 'card', 'aria-labelledby': 'leave-title', id: 'leave-requests' },
    h('h2', { id: 'leave-title' }, t('leave_requests')),
    leaves.length ? [h('p', { className: 'hint' }, t('leave_hint')), h('ul', { className: 'items' }, leaves.map(item))]
      : h('p', { className: 'empty' }, t('leave_none')));
}

// -- a group's absences --------------------------------------------------------------------

async function groupAbsences(ctx, group) {
  const box = h('section', { className: 'card', 'aria-labelledby': 'group-absences-title', id: 'group-absences' },
    h('h2', { id: 'group-absences-title' }, t('group_absences_of', { name: group.name })));
  if (!online(ctx)) { box.append(needsNetwork('group-absences-offline')); return box; }
  let summary;
  try {
    summary = await api(`/groups/${group.id}/absences`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) box.append(h('p', { className: 'error', role: 'alert' }, t('group_absences_refused')));
    else if (error instanceof ApiError) box.append(h('p', { className: 'error', role: 'alert' }, t('report_failed', { reason: errorText(error) })));
    else box.append(needsNetwork('group-absences-offline'));
    return box;
  }
  const lang = language();
  const pupils = [...summary.pupils].sort((x, y) => (y.unexplained - x.unexplained) || x.name.localeCompare(y.name, lang));
  box.append(h('p', { className: 'details', id: 'group-absences-period' }, t('period', { span: dateRange(summary.from_date, summary.to_date, lang) })));
  if (!pupils.length) { box.append(h('p', { className: 'empty' }, t('no_pupils'))); return box; }
  // The scrolling table is a region of its own inside the section: named by the title and
  // the period, so that the two landmarks do not share one name (axe's landmark-unique).
  box.append(h('div', { className: 'table-wrap', tabindex: '0', role: 'region', 'aria-labelledby': 'group-absences-title group-absences-period' },
    h('table', { className: 'absences', id: 'group-absences-table' },
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, t('pupil')),
        h('th', { scope: 'col' }, t('col_unexplained')),
        h('th', { scope: 'col' }, t('col_absent')),
        h('th', { scope: 'col' }, t('col_late')))),
      h('tbody', {}, pupils.map((p) => h('tr', { 'data-pupil': p.pupil_id, className: p.unexplained ? 'has-unexplained' : '' },
        h('th', { scope: 'row' }, p.name),
        h('td', { 'data-col': 'unexplained' }, String(p.unexplained)),
        h('td', { 'data-col': 'absent' }, String(p.absent_lessons)),
        h('td', { 'data-col': 'late' }, String(p.late))))))));
  return box;
}

/** #/absences for staff: leave to decide (synced: works offline), and a group's absence
 * figures (GET /groups/{id}/absences: online). */
export async function staffAbsencesView(ctx, groupId) {
  const me = ctx.state.me;
  const groups = await staffGroups(me);
  const chosen = groups.find((g) => g.id === groupId) || null;
  // A group's figures are live server data: a background pull must not fetch them again
  // (navigating here again does). Without them, a pull redraws the leave list.
  if (chosen) ctx.state.dirty = true;
  const section = h('section', { 'aria-labelledby': 'view-title' },
    h('h1', { id: 'view-title' }, t('absences')),
    await leaveSection(ctx));
  const picker = h('section', { className: 'card', 'aria-labelledby': 'groups-title' },
    h('h2', { id: 'groups-title' }, t('group_absences')),
    groups.length ? h('ul', { className: 'group-list', id: 'absence-groups' }, groups.map((g) => h('li', {},
      h('a', { href: `#/absences/${g.id}`, 'aria-current': chosen && chosen.id === g.id ? 'true' : undefined, 'data-group': g.id }, g.name))))
      : h('p', { className: 'empty' }, t('no_groups')));
  section.append(picker);
  if (chosen) section.append(await groupAbsences(ctx, chosen));
  return section;
}

// -- requesting a form ---------------------------------------------------------------------

/** #/forms/new: a form to a group's pupils (form.request through the outbox). The
 * definitions the school may send come from the server (GET /forms/definitions), so the
 * view needs the network to be drawn. */
export async function requestFormView(ctx) {
  const me = ctx.state.me;
  const back = h('a', { href: '#/forms', className: 'back' }, t('back'));
  const heading = h('h1', { id: 'view-title' }, t('request_form'));
  const section = h('section', { 'aria-labelledby': 'view-title' }, back, heading);
  const groups = await staffGroups(me);
  if (!groups.length) { section.append(h('p', { className: 'empty' }, t('no_groups'))); return section; }
  if (!online(ctx)) { section.append(needsNetwork('request-form-offline')); return section; }
  ctx.state.dirty = true; // keep the choices while a background pull lands
  const schools = [...new Set(groups.map((g) => g.school_id))];
  let definitions = [];
  try {
    const lists = await Promise.all(schools.map((s) => api(`/forms/definitions?organisation_id=${s}`)));
    const seen = new Set();
    for (const list of lists) for (const d of list) if (!seen.has(d.id)) { seen.add(d.id); definitions.push(d); }
  } catch (error) {
    section.append(error instanceof ApiError
      ? h('p', { className: 'error', role: 'alert' }, t('report_failed', { reason: errorText(error) }))
      : needsNetwork('request-form-offline'));
    return section;
  }
  // The newest version of each key (the list is newest first within a key).
  const latest = new Map();
  for (const d of definitions) if (!latest.has(`${d.organisation_id}:${d.key}`)) latest.set(`${d.organisation_id}:${d.key}`, d);
  definitions = [...latest.values()];
  if (!definitions.length) { section.append(h('p', { className: 'empty', id: 'no-definitions' }, t('no_definitions'))); return section; }
  const definition = h('select', { name: 'definition', required: true },
    definitions.map((d) => h('option', { value: d.id }, `${localText(d.title, Object.keys(d.title))} (${t('version', { n: d.version })})`)));
  const group = h('select', { name: 'group', required: true },
    groups.map((g) => h('option', { value: g.id }, `${g.name} (${g.school_name})`)));
  const due = h('input', { type: 'date', name: 'due_on', required: true, min: schoolToday(), value: addDays(schoolToday(), 7) });
  const note = h('textarea', { name: 'note', rows: 2, maxlength: 500 });
  const error = h('p', { className: 'error', role: 'alert' });
  const form = h('form', { className: 'card', id: 'request-form', onsubmit: async (e) => {
    e.preventDefault();
    error.textContent = '';
    if (!due.value || due.value < schoolToday()) { error.textContent = t('due_in_past'); return; }
    const args = { definition_id: Number(definition.value), group_id: Number(group.value), due_on: due.value };
    if (note.value.trim()) args.note = note.value.trim();
    await ctx.mutate('form.request', args);
    ctx.state.dirty = false;
    ctx.state.formRequested = t('form_requested', { date: dayLabel(due.value, language()) });
    ctx.navigate('#/forms');
  } },
  field(t('form_definition'), definition), field(t('form_group'), group),
  field(t('form_due'), due), field(t('note'), note),
  h('button', { type: 'submit' }, t('send')), error);
  section.append(form);
  return section;
}

/** The top of the staff's forms list: the link to request one, and what was just sent. */
export async function requestFormLink(ctx) {
  const done = ctx.state.formRequested || '';
  ctx.state.formRequested = null;
  const waiting = (await db.outbox()).filter((m) => m.name === 'form.request').length;
  return [
    h('a', { className: 'button', href: '#/forms/new', id: 'request-form-link' }, t('request_form')),
    h('p', { role: 'status', className: 'ok', id: 'form-requested' }, done),
    waiting ? h('p', { className: 'hint', id: 'form-requests-waiting' }, t('form_requests_waiting', { n: waiting })) : null,
  ];
}

// -- a bulletin's delivery report ----------------------------------------------------------

const CHANNELS = ['webpush', 'apprise'];
const DELIVERY = ['sent', 'queued', 'digest', 'digested', 'failed', 'gone', 'expired', 'off', 'unreachable'];

/** One channel's best delivery status in the person's words ("Push: failed"); a channel or
 * status this app does not know yet is shown as the server named it. */
export function deliveryText(channel, status) {
  const name = CHANNELS.includes(channel) ? t(`channel_${channel}`) : channel;
  return `${name}: ${DELIVERY.includes(status) ? t(`delivery_${status}`) : status}`;
}
