// Starting a conversation (docs/messages.md): a guardian with their child's teachers, a pupil
// with theirs where the school allows it (GET /me: pupil_conversation_schools). It is a
// message.send with `to` and `subject`, queued in the outbox like every change, so it can be
// written offline; the server gives each recipient a thread of their own.

import { h, field } from './dom.js';
import { t, language } from './i18n.js';
import * as db from './db.js';
import { childSwitcher, currentChild } from './children.js';

const has = (me, role) => (me.roles || []).includes(role);

/** Whether the app offers this person "New message": guardians, and pupils where their
 * school lets pupils start conversations. Staff write to families through the API for now. */
export function mayStartConversation(me) {
  if (has(me, 'teacher') || has(me, 'principal') || has(me, 'admin')) return false;
  if (has(me, 'guardian')) return true;
  return (me.pupil_conversation_schools || []).length > 0;
}

/** The groups whose teachers this person may write to: the chosen child's (a guardian), or
 * the pupil's own in the schools that allow it. */
async function groupsToWrite(ctx) {
  const me = ctx.state.me;
  if (has(me, 'guardian') && !has(me, 'pupil')) {
    const child = currentChild(ctx);
    return new Set(child ? child.group_ids : []);
  }
  const schools = new Set(me.pupil_conversation_schools || []);
  const own = new Set((me.partitions || []).filter((p) => p.startsWith('group:')).map((p) => Number(p.slice(6))));
  return new Set((await db.recordsOf('group')).filter((g) => own.has(g.id) && schools.has(g.school_id)).map((g) => g.id));
}

/**
 * The teachers of ``groups``, as the synced lessons name them: [{id, name, subjects}], by
 * name. Every lesson record carries its teacher, so no other record is needed.
 */
export function teachersOf(lessons, groups) {
  const found = new Map();
  for (const l of lessons) {
    if (!groups.has(l.group_id) || !l.teacher_id || !l.teacher_name) continue;
    const teacher = found.get(l.teacher_id) || { id: l.teacher_id, name: l.teacher_name, subjects: new Set() };
    teacher.subjects.add(l.subject);
    found.set(l.teacher_id, teacher);
  }
  return [...found.values()]
    .map((x) => ({ ...x, subjects: [...x.subjects].sort((a, b) => a.localeCompare(b, language())) }))
    .sort((x, y) => x.name.localeCompare(y.name, language()));
}

/** Every teacher's name this device knows (for listing a conversation not yet answered). */
export async function teacherNames() {
  const names = new Map();
  for (const l of await db.recordsOf('lesson')) if (l.teacher_id && l.teacher_name) names.set(l.teacher_id, l.teacher_name);
  return names;
}

/** ``#/messages/new``: whom (checkboxes: each gets a thread), the subject and the message. */
export async function newMessageView(ctx) {
  const me = ctx.state.me;
  const back = h('a', { href: '#/messages', className: 'back' }, t('back'));
  const heading = h('h1', { id: 'view-title' }, t('new_message'));
  const section = h('section', { 'aria-labelledby': 'view-title' }, back, heading);
  if (!mayStartConversation(me)) {
    section.append(h('p', { className: 'empty' }, t('refused_forbidden_message_send')));
    return section;
  }
  const child = has(me, 'guardian') && !has(me, 'pupil') ? currentChild(ctx) : null;
  // Switching the child draws the view again (the recipients are the chosen child's
  // teachers): what was typed goes with it, kept for this one drawing.
  const draft = ctx.state.messageDraft || { subject: '', body: '' };
  ctx.state.messageDraft = null;
  const subject = h('input', { name: 'subject', required: true, maxlength: 200, value: draft.subject, oninput: ctx.markDirty });
  const body = h('textarea', { name: 'body', rows: 5, required: true, maxlength: 10000, value: draft.body, oninput: ctx.markDirty });
  const switching = { ...ctx, setChild: (id) => {
    ctx.state.messageDraft = { subject: subject.value, body: body.value };
    return ctx.setChild(id);
  } };
  section.append(childSwitcher(switching) || '',
    child ? h('p', { className: 'whose', id: 'whose' }, `${child.person.given_name} ${child.person.family_name}`) : '');
  const teachers = teachersOf(await db.recordsOf('lesson'), await groupsToWrite(ctx));
  if (!teachers.length) {
    section.append(h('p', { className: 'empty', id: 'no-teachers' }, t('no_teachers')));
    return section;
  }
  const recipients = h('fieldset', { id: 'recipients', 'aria-describedby': 'recipients-hint' },
    h('legend', {}, t('message_to')),
    h('p', { className: 'hint', id: 'recipients-hint' }, t('message_to_hint')),
    teachers.map((x) => h('label', { className: 'choice' },
      h('input', { type: 'checkbox', name: 'to', value: x.id, onchange: ctx.markDirty }), ' ',
      // The subjects in brackets: a screen reader reads the label as one name, "Ari Seppälä
      // (Kuvataide)", not "Ari SeppäläKuvataide".
      x.name, h('span', { className: 'details' }, `(${x.subjects.join(', ')})`))));
  // A draft brought over from the other child is typing in progress: a background sync
  // must not draw the view again over it.
  if (draft.subject || draft.body) ctx.state.dirty = true;
  const error = h('p', { className: 'error', role: 'alert', id: 'new-message-error' });
  const form = h('form', { className: 'card', id: 'new-message', onsubmit: async (e) => {
    e.preventDefault();
    error.textContent = '';
    const to = [...form.querySelectorAll('input[name=to]:checked')].map((i) => Number(i.value));
    if (!to.length) { error.textContent = t('choose_recipients'); return; }
    if (!subject.value.trim() || !body.value.trim()) { error.textContent = t('subject_and_body'); return; }
    await ctx.mutate('message.send', { to, subject: subject.value.trim(), body: body.value });
    ctx.state.dirty = false;
    ctx.navigate('#/messages');
  } },
  recipients, field(t('message_subject'), subject), field(t('message_body'), body),
  h('button', { type: 'submit' }, t('send')), error);
  section.append(form);
  return section;
}
