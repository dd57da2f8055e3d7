// Forms (docs/forms.md): guardians fill, save, submit and sign offline (mutations); staff
// see who has answered (GET /forms/requests/{id}/status, online only).

import { h, field } from './dom.js';
import { when, dayLabel } from './format.js';
import { t, language, localText } from './i18n.js';
import * as db from './db.js';
import { api } from './sync.js';
import { requestFormLink } from './staff.js';
import { childSwitcher, currentChild } from './children.js';
import { reasonText } from './outcomes.js';

async function requestsFor(pupilId) {
  const responses = (await db.recordsOf('form_response')).filter((r) => r.pupil_id === pupilId);
  const requests = new Map((await db.recordsOf('form_request')).map((r) => [r.id, r]));
  return responses.filter((r) => requests.has(r.request_id))
    .map((response) => ({ response, request: requests.get(response.request_id) }))
    .sort((x, y) => x.request.due_on.localeCompare(y.request.due_on));
}

export async function formsView(ctx) {
  const child = currentChild(ctx);
  const pupilId = child ? child.person.id : ctx.state.me.person.id;
  const items = await requestsFor(pupilId);
  return h('section', { 'aria-labelledby': 'view-title' },
    h('h1', { id: 'view-title' }, t('forms')), childSwitcher(ctx),
    items.length ? h('ul', { className: 'items' }, items.map(({ request, response }) => h('li', { className: 'item' },
      h('a', { href: `#/forms/${request.id}` },
        h('span', { className: 'title' }, localText(request.definition.title, request.definition.languages)),
        h('span', { className: 'details' }, t('due', { date: dayLabel(request.due_on, language()) }))),
      h('span', { className: 'badge' }, t(`form_status_${response.status}`)))))
      : h('p', { className: 'empty' }, t('forms_none')));
}

function control(def, value, langs, onInput) {
  const el = question(def, value, langs, onInput);
  el.dataset.question = def.id;  // where missingMarks puts "this question needs an answer"
  return el;
}

function question(def, value, langs, onInput) {
  const label = localText(def.label, langs) + (def.required ? ` (${t('required')})` : '');
  const hint = def.help ? localText(def.help, langs) : undefined;
  const name = `q-${def.id}`;
  switch (def.kind) {
    case 'long_text':
      return field(label, h('textarea', { name, rows: 4, maxlength: def.max_length || 4000, value: value ?? '', oninput: onInput }), hint);
    case 'single_choice':
      return h('fieldset', {}, h('legend', {}, label), def.options.map((o) => h('label', { className: 'choice' },
        h('input', { type: 'radio', name, value: o.id, checked: value === o.id, onchange: onInput }), ' ', localText(o.label, langs))));
    case 'multiple_choice':
      return h('fieldset', {}, h('legend', {}, label), def.options.map((o) => h('label', { className: 'choice' },
        h('input', { type: 'checkbox', name, value: o.id, checked: Array.isArray(value) && value.includes(o.id), onchange: onInput }), ' ', localText(o.label, langs))));
    case 'consent':
      return h('fieldset', {}, h('legend', {}, label), [['true', t('yes')], ['false', t('no')]].map(([v, text]) => h('label', { className: 'choice' },
        h('input', { type: 'radio', name, value: v, checked: value === (v === 'true'), onchange: onInput }), ' ', text)));
    case 'date':
      return field(label, h('input', { type: 'date', name, value: value ?? '', min: def.min_date, max: def.max_date, oninput: onInput }), hint);
    case 'number':
      return field(label, h('input', { type: 'number', name, value: value ?? '', min: def.min, max: def.max, step: def.integer ? 1 : 'any', oninput: onInput }), hint);
    default:
      return field(label, h('input', { type: 'text', name, maxlength: def.max_length || 200, value: value ?? '', oninput: onInput }), hint);
  }
}

function readAnswers(form, definition) {
  const answers = {};
  for (const def of definition.fields) {
    const name = `q-${def.id}`;
    let value = null;
    if (def.kind === 'multiple_choice') {
      value = [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);
      if (!value.length) value = null;
    } else if (def.kind === 'single_choice' || def.kind === 'consent') {
      const chosen = form.querySelector(`input[name="${name}"]:checked`);
      value = chosen ? (def.kind === 'consent' ? chosen.value === 'true' : chosen.value) : null;
    } else {
      const input = form.querySelector(`[name="${name}"]`);
      value = input && input.value !== '' ? input.value : null;
      if (value !== null && def.kind === 'number') value = Number(value);
    }
    if (value !== null) answers[def.id] = value;
  }
  return answers;
}

/** The required questions without an answer in ``answers`` (readAnswers), in the form's
 * order. Blank text counts as no answer, as on the server (sync/forms.py check_answers). */
function missingRequired(definition, answers) {
  return definition.fields.filter((def) => def.required
    && (answers[def.id] === undefined || (typeof answers[def.id] === 'string' && answers[def.id].trim() === '')));
}

/** Say next to each of ``missing`` questions that it needs an answer (and drop what an
 * earlier try said), then focus the first. */
function markMissing(form, missing) {
  for (const old of form.querySelectorAll('.missing')) old.remove();
  for (const input of form.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
  for (const def of missing) {
    const box = form.querySelector(`[data-question="${def.id}"]`);
    if (!box) continue;
    const note = h('p', { className: 'error missing', id: `missing-${def.id}` }, t('form_answer_needed'));
    box.append(note);
    for (const input of box.querySelectorAll(`[name="q-${def.id}"]`)) {
      input.setAttribute('aria-invalid', 'true');
      input.setAttribute('aria-describedby', [input.getAttribute('aria-describedby'), note.id].filter(Boolean).join(' '));
    }
  }
  const first = missing.length ? form.querySelector(`[name="q-${missing[0].id}"]`) : null;
  if (first) first.focus();
}

/** The form's mutations for this request and pupil: those still in the outbox, and the
 * latest one the server answered (kept in ``outcomes``). */
async function formActivity(requestId, pupilId) {
  const ours = (m) => m.name.startsWith('form.') && m.args && m.args.request_id === requestId && m.args.pupil_id === pupilId;
  const waiting = (await db.outbox()).filter(ours).sort((x, y) => x.id - y.id);
  const answered = (await db.outcomes()).filter((o) => o.name && ours(o)).sort((x, y) => x.id - y.id);
  return { waiting, answered: answered.length ? answered[answered.length - 1] : null };
}

/** What became of the person's last act on the form. "Saved on this device" only while it
 * really waits there: once the server has applied it, say what the server did. */
function activityLine(activity, labels) {
  const { waiting, answered } = activity;
  if (waiting.length) {
    const online = navigator.onLine;
    return h('p', { role: 'status', className: 'hint', id: 'form-state', 'data-state': online ? 'sending' : 'waiting' },
      online ? t('form_sending') : t('queued'));
  }
  if (!answered) return h('p', { role: 'status', id: 'form-state' });
  if (answered.status === 'rejected') {
    return h('p', { role: 'status', className: 'error', id: 'form-state', 'data-state': 'refused' },
      t('form_refused', { reason: reasonText(answered, labels) }));
  }
  return h('p', { role: 'status', className: 'ok', id: 'form-state', 'data-state': 'applied' },
    t(`form_applied_${answered.name.split('.')[1]}`));
}

/** Who still has to sign: the count, and whether it is this person. */
function signingLine(request, response, me, signingNow) {
  if (!['submitted', 'partly_signed', 'complete'].includes(response.status) && !signingNow) return null;
  const signed = response.signed ?? (response.signatures || []).length;
  const needed = response.needed || 1;
  const mine = signingNow || (response.signatures || []).some((s) => s.signer_id === me.person.id);
  const left = Math.max(0, needed - signed - (signingNow ? 1 : 0));
  const parts = [t('form_signatures', { signed: Math.min(needed, signed + (signingNow ? 1 : 0)), needed })];
  if (left === 0) parts.push(t('form_signed_all'));
  else if (request.definition.signing === 'any_custodian') parts.push(t('form_one_signature'));
  else if (!mine) parts.push(left === 1 ? t('form_yours_needed') : left === 2 ? t('form_yours_and_other') : t('form_yours_and_others', { n: left - 1 }));
  else parts.push(left === 1 ? t('form_others_one') : t('form_others', { n: left }));
  return h('p', { className: 'signing', id: 'form-signing' }, parts.join(' '));
}

/** Whom and what the request is about, and who asked: a guardian of two children sees which
 * child and school it is for, and the teacher's note ("Retki Heurekaan torstaina"). */
async function aboutRequest(request, child) {
  const groups = await db.recordsOf('group');
  const group = groups.find((g) => g.id === request.group_id) || groups.find((g) => g.school_id === request.school_id);
  const who = child ? [child.person.given_name, group ? group.school_name : null].filter(Boolean).join(' · ') : null;
  return h('div', { className: 'about-request', id: 'form-about' },
    who ? h('p', { className: 'details', id: 'form-concerns' }, t('concerns', { what: who })) : null,
    request.sender_name ? h('p', { className: 'details', id: 'form-sender' },
      t('form_asked_by', { name: request.sender_name, date: when(request.sent_at, language()) })) : null,
    request.note ? h('p', { className: 'note', id: 'form-note' }, request.note) : null);
}

export async function formView(ctx, requestId) {
  const me = ctx.state.me;
  const child = currentChild(ctx);
  const pupilId = child ? child.person.id : me.person.id;
  const back = h('a', { href: '#/forms', className: 'back' }, t('back'));
  const item = (await requestsFor(pupilId)).find((i) => i.request.id === requestId);
  if (!item) return h('section', {}, back, h('p', {}, t('forms_none')));
  const { request, response } = item;
  const definition = request.definition;
  const langs = definition.languages;
  const custodial = !child || child.guardianship === 'custodial';
  const activity = await formActivity(request.id, pupilId);
  // What the outbox holds counts as done on this device: a submit waiting there means the
  // draft is over (the server refuses form.save after a submit), a signature waiting there
  // must not be given twice.
  const submitWaiting = activity.waiting.filter((m) => m.name === 'form.submit').pop();
  const signWaiting = activity.waiting.some((m) => m.name === 'form.sign');
  const submitted = Boolean(submitWaiting) || ['submitted', 'partly_signed', 'complete'].includes(response.status);
  const signedByMe = signWaiting || (response.signatures || []).some((s) => s.signer_id === me.person.id);
  const answersShown = submitWaiting ? submitWaiting.args.answers : response.answers;
  const form = h('form', { className: 'card', id: 'form-fill' });
  for (const def of definition.fields) form.append(control(def, answersShown ? answersShown[def.id] : undefined, langs, ctx.markDirty));
  const args = () => ({ request_id: request.id, pupil_id: pupilId, definition_version: request.definition_version, answers: readAnswers(form, definition) });
  const labels = Object.fromEntries(definition.fields.map((def) => [`$.answers.${def.id}`, localText(def.label, langs)]));
  const act = (name, makeArgs) => async () => {
    if (name === 'form.submit') {
      // Required answers are checked here, before anything is queued: the server would only
      // refuse the submission later, perhaps after the person has gone offline.
      const missing = missingRequired(definition, readAnswers(form, definition));
      markMissing(form, missing);
      if (missing.length) {
        const line = form.querySelector('#form-state');
        line.className = 'error';
        line.dataset.state = 'missing';
        line.textContent = t('form_missing', { questions: missing.map((def) => labels[`$.answers.${def.id}`]).join(', ') });
        return;
      }
      if (!form.reportValidity()) return;
    }
    await ctx.mutate(name, makeArgs());
    ctx.state.dirty = false;
    ctx.rerender();
  };
  if (custodial && response.status !== 'complete') {
    const actions = h('div', { className: 'actions' },
      submitted ? null : h('button', { type: 'button', className: 'secondary', id: 'save-draft', onclick: act('form.save', args) }, t('save_draft')),
      h('button', { type: 'button', id: 'submit', onclick: act('form.submit', args) }, submitted ? t('form_submit_changes') : t('submit')));
    form.append(actions);
    if (submitted && !signedByMe) {
      // A signature covers the answers as the signer saw them: the submitted ones.
      form.append(h('button', { type: 'button', id: 'sign', onclick: act('form.sign', () => ({
        request_id: request.id, pupil_id: pupilId,
        definition_version: submitWaiting ? submitWaiting.args.definition_version : (response.definition_version || request.definition_version),
        answers: answersShown || {},
      })) }, t('sign')));
    }
  }
  // Without custody, views.js (withoutCustody) disables the form and says why, once.
  form.append(activityLine(activity, labels));
  return h('section', { 'aria-labelledby': 'view-title' }, back,
    h('h1', { id: 'view-title' }, localText(definition.title, langs)),
    definition.description ? h('p', {}, localText(definition.description, langs)) : null,
    h('p', { className: 'details' }, `${t(`form_status_${response.status}`)} · ${t('due', { date: dayLabel(request.due_on, language()) })}`),
    await aboutRequest(request, child),
    (response.signatures || []).map((s) => h('p', { className: 'details' }, `${t('signed_by', { name: s.signer_name })} · ${when(s.signed_at, language())}`)),
    signingLine(request, response, me, signWaiting && !(response.signatures || []).some((s) => s.signer_id === me.person.id)),
    form);
}

export async function formStatusView(ctx, requestId) {
  const requests = (await db.recordsOf('form_request')).sort((x, y) => y.sent_at.localeCompare(x.sent_at));
  const list = h('ul', { className: 'items' }, requests.map((r) => h('li', { className: 'item' },
    h('a', { href: `#/forms/${r.id}` }, h('span', { className: 'title' }, localText(r.definition.title, r.definition.languages)),
      h('span', { className: 'details' }, t('due', { date: dayLabel(r.due_on, language()) }))))));
  const section = h('section', { 'aria-labelledby': 'view-title' }, h('h1', { id: 'view-title' }, t('form_status')),
    await requestFormLink(ctx),
    requests.length ? list : h('p', { className: 'empty' }, t('forms_none')));
  if (requestId) {
    const box = h('section', { className: 'card', 'aria-live': 'polite' });
    section.append(box);
    try {
      const status = await api(`/forms/requests/${requestId}/status`);
      box.append(h('h2', {}, t('form_status')),
        h('p', {}, Object.entries(status.counts).map(([k, n]) => `${t(`form_status_${k}`)}: ${n}`).join(' · ')),
        h('ul', {}, status.pupils.map((p) => h('li', {}, `${p.name}: ${t(`form_status_${p.status}`)} (${p.signed}/${p.needed})`))));
    } catch (_) {
      box.append(h('p', {}, t('needs_network')));
    }
  }
  return section;
}
