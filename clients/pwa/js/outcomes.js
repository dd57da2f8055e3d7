// What this device did, and what became of it, for the lists where it was done: an absence
// report made offline is listed at once as "waiting to send", then "sent" or "refused" with
// the reason, so that nobody sends it twice because the list still said "no reports".
// The outbox (not answered yet) and the outcomes (the server's answers) are in js/db.js.
// Also the one place a refusal becomes words: a change's (reasonText) and an HTTP error's
// (errorText), each chosen by the stable code and field, in the reader's language.

import { h } from './dom.js';
import { t, language } from './i18n.js';
import { dayLabel } from './format.js';
import * as db from './db.js';

// How long an applied change is listed as "sent": its record normally arrives within seconds
// and then stands for it; the outcomes are kept far longer (to send again after a restore),
// and a record that later left the device (a tie ended) must not bring its change back.
const SENT_SHOWN_MS = 24 * 60 * 60 * 1000;

/**
 * This device's changes named ``names`` whose args ``keep`` accepts, oldest first: each as
 * {id, name, args, state, outcome}, state 'waiting' (in the outbox), 'sent' (applied in the
 * last day) or 'refused' (rejected; until the person dismisses it).
 * @param {string[]} names
 * @param {(args: any) => boolean} [keep]
 */
export async function localChanges(names, keep = () => true) {
  const wanted = new Set(names);
  const changes = [];
  const recent = Date.now() - SENT_SHOWN_MS;
  for (const o of await db.outcomes()) {
    if (!wanted.has(o.name) || !o.args || !keep(o.args)) continue;
    if (o.status === 'applied') {
      if (Date.parse(o.at) >= recent) changes.push({ id: o.id, name: o.name, args: o.args, state: 'sent', outcome: o });
    } else if (!o.seen) changes.push({ id: o.id, name: o.name, args: o.args, state: 'refused', outcome: o });
  }
  for (const m of await db.outbox()) {
    // A change queued again after a restore is in both: the outbox is the truth until answered.
    if (!wanted.has(m.name) || !keep(m.args)) continue;
    const i = changes.findIndex((c) => c.id === m.id);
    const change = { id: m.id, name: m.name, args: m.args, state: 'waiting', outcome: null };
    if (i >= 0) changes[i] = change; else changes.push(change);
  }
  return changes.sort((x, y) => x.id - y.id);
}

// A rejection in the reader's language, by its stable code (schemas/sync.py, MutationCode);
// the most specific text first: for this mutation, then for the code alone. The server's own
// sentence is shown only for a code this app does not know (a newer server).
const KNOWN_CODES = new Set([
  'mutation.unknown', 'mutation.invalid_args', 'mutation.forbidden', 'mutation.not_found',
  'mutation.out_of_order', 'mutation.too_late', 'mutation.conflict',
]);

// The form fields a rejection's ``field`` may name, by their labels in the app.
const FIELD_LABELS = {
  '$.from_date': 'from_date', '$.to_date': 'to_date', '$.reason': 'reason', '$.note': 'note',
  '$.subject': 'message_subject', '$.body': 'message_body', '$.to': 'message_to',
};

/** The words for a rejected change (an outcome or a mutation result), in the app's language:
 * the text for this mutation and field, else for this mutation, else for the code (then
 * naming the field, when it is one the person filled in). ``labels``: the questions of a
 * form by path (``$.answers.<id>``); a form's answer is looked up as field ``answers`` and
 * its question named in the text.
 * @param {Record<string, string>} [labels] */
export function reasonText(result, labels = {}) {
  const code = result.code || '';
  if (!KNOWN_CODES.has(code)) return result.reason || code;
  const base = code.replace('mutation.', 'refused_');
  const name = (result.name || '').replace('.', '_');
  const field = (result.field || '').replace(/\[\d+\]$/, '');
  const question = labels[field];
  const path = question ? 'answers' : field.replace('$.', '');
  for (const key of [`${base}_${name}_${path}`, `${base}_${name}`]) {
    const text = t(key, { question });
    if (text !== key) return text;
  }
  const label = FIELD_LABELS[field];
  return label ? `${t(base)} ${t('refused_field', { field: t(label) })}` : t(base);
}

// The fields of the app's own requests (log in, settings) an HTTP error's ``field`` may name,
// by their labels in the app.
const REQUEST_FIELD_LABELS = {
  username: 'username', password: 'password', language: 'language', webpush: 'push_mode',
  apprise: 'apprise_mode', quiet_start: 'quiet_start', quiet_end: 'quiet_end', digest_at: 'digest_at',
};

/** The words for an HTTP error (js/sync.js ApiError, or the bare code of a refused sign-in)
 * in the app's language, by its stable code (schemas/errors.py, docs/errors.md): the text for
 * this code and field, else for the code (then naming the field, when it is one the person
 * filled in). The server's own sentence, in English, only for a code this app has no words
 * for (a newer server); with none, the code itself.
 * @param {string | {code?: string | null, field?: string | null, serverMessage?: string | null}} error */
export function errorText(error) {
  const { code, field, serverMessage } = typeof error === 'string' ? { code: error, field: null, serverMessage: null } : error;
  const base = `error_${String(code || '').replace(/\./g, '_')}`;
  const name = String(field || '').replace(/^\$\./, '');
  const specific = `${base}_${name}`;
  if (name && t(specific) !== specific) return t(specific);
  if (t(base) === base) return serverMessage || String(code || '');
  const label = REQUEST_FIELD_LABELS[name];
  return label ? `${t(base)} ${t('refused_field', { field: t(label) })}` : t(base);
}

/**
 * The refused changes not dismissed yet as the lines of the shell's box of rejected changes:
 * those of one mutation refused for the same reason (and, for roll-call marks, of one lesson
 * and day) make one line with their count, so a class refused at once is one line, not
 * thirty. A line says what it is about where the device knows (a mark's lesson and day, and
 * its pupil when the line is one mark). Each as {text, outcomes}, in the order first refused.
 * @param {any[]} refused
 * @returns {Promise<{text: string, outcomes: any[]}[]>}
 */
export async function refusalLines(refused) {
  const alike = new Map();
  for (const o of refused) {
    const args = o.args || {};
    const about = o.name === 'attendance.mark' ? `${args.lesson_id}/${args.on_date}` : '';
    const key = JSON.stringify([o.name, o.code, reasonText(o), about]);
    if (!alike.has(key)) alike.set(key, []);
    alike.get(key).push(o);
  }
  const groups = new Map((await db.recordsOf('group')).map((g) => [g.id, g.name]));
  const lines = [];
  for (const outcomes of alike.values()) {
    const first = outcomes[0];
    const name = (first.name || '').replace('.', '_');
    const n = outcomes.length;
    let what = t(`mutation_${name}`);
    if (n > 1) {
      const counted = `rejected_count_${name}`;
      what = t(counted) !== counted ? t(counted, { n }) : t('rejected_count', { what, n });
    }
    const about = await aboutChange(first, n === 1, groups);
    const reason = reasonText(first);
    lines.push({
      text: about ? t('rejected_item_about', { what, about, reason }) : t('rejected_item', { what, reason }),
      outcomes,
    });
  }
  return lines;
}

/** What a refused change is about, in words, where the device knows: for a roll-call mark
 * its lesson (group and subject) and day, and its pupil when ``one``; else ''. */
async function aboutChange(outcome, one, groups) {
  const args = outcome.args || {};
  if (outcome.name !== 'attendance.mark') return '';
  const lesson = await db.getRecord('lesson', args.lesson_id);
  const parts = [];
  if (lesson && one) {
    const roster = await db.getRecord('roster', lesson.group_id);
    const pupil = roster && roster.pupils.find((p) => p.id === args.pupil_id);
    if (pupil) parts.push(pupil.name);
  }
  if (lesson) parts.push([groups.get(lesson.group_id), lesson.subject].filter(Boolean).join(' '));
  if (args.on_date) parts.push(dayLabel(args.on_date, language()));
  return parts.join(', ');
}

/** Mark a refusal as seen: it leaves the list and the banner's box of rejected changes. */
export async function dismiss(outcome) {
  const database = await db.openDb();
  const tx = database.transaction('outcomes', 'readwrite');
  tx.objectStore('outcomes').put({ ...outcome, seen: true });
  await db.committed(tx);
}

/** The badge of a change's state: "waiting to send", "sent" or "refused". */
export function stateBadge(state) {
  return h('span', { className: `badge state-${state}`, 'data-state': state }, t(`change_${state}`));
}

/** A refused change's reason and its "Dismiss" button (which draws the view again);
 * ``about`` (a pupil's name) tells apart the buttons of rows refused for the same reason. */
export function refusal(ctx, change, about = '') {
  if (change.state !== 'refused') return null;
  const reason = reasonText(change.outcome);
  // Named with what it is about and its reason: several "Dismiss" buttons in one list (a roll
  // call's rows refused for the same reason) each say which they clear.
  const label = about ? `${t('dismiss')}: ${about}: ${reason}` : `${t('dismiss')}: ${reason}`;
  return h('span', { className: 'refusal' },
    h('span', { className: 'error' }, reason), ' ',
    h('button', { type: 'button', className: 'link', 'aria-label': label,
      onclick: async () => { await dismiss(change.outcome); ctx.rerender(); } }, t('dismiss')));
}
