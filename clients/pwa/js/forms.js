// Forms (docs/forms.md): guardians fill, save, submit and sign offline (mutations); staff
// see who has answered (GET /forms/requests/{id}/status, online only).

import { h, field } from './dom.js';
import { when, dayLabel } from './format.js';
import { t, language, localText } from './i18n.js';
import * as db from './db.js';
import { api } from './sync.js';
import { childSwitcher, currentChild } from './children.js';

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

export async function formView(ctx, requestId) {
  const child = currentChild(ctx);
  const pupilId = child ? child.person.id : ctx.state.me.person.id;
  const back = h('a', { href: '#/forms', className: 'back' }, t('back'));
  const item = (await requestsFor(pupilId)).find((i) => i.request.id === requestId);
  if (!item) return h('section', {}, back, h('p', {}, t('forms_none')));
  const { request, response } = item;
  const definition = request.definition;
  const langs = definition.languages;
  const custodial = !child || child.guardianship === 'custodial';
  const form = h('form', { className: 'card', id: 'form-fill' });
  const status = h('p', { role: 'status', className: 'ok' });
  for (const def of definition.fields) form.append(control(def, response.answers ? response.answers[def.id] : undefined, langs, ctx.markDirty));
  const args = () => ({ request_id: request.id, pupil_id: pupilId, definition_version: request.definition_version, answers: readAnswers(form, definition) });
  const act = (name, makeArgs) => async () => {
    if (name === 'form.submit' && !form.reportValidity()) return;
    await ctx.mutate(name, makeArgs());
    ctx.state.dirty = false;
    status.textContent = t('queued');
  };
  if (custodial && response.status !== 'complete') {
    form.append(h('div', { className: 'actions' },
      h('button', { type: 'button', className: 'secondary', onclick: act('form.save', args) }, t('save_draft')),
      h('button', { type: 'button', onclick: act('form.submit', args) }, t('submit'))));
    if (response.status === 'submitted' || response.status === 'partly_signed') {
      // A signature covers the answers as the signer saw them: the submitted ones.
      form.append(h('button', { type: 'button', id: 'sign', onclick: act('form.sign', () => ({
        request_id: request.id, pupil_id: pupilId, definition_version: response.definition_version || request.definition_version, answers: response.answers || {},
      })) }, t('sign')));
    }
  }
  form.append(status);
  return h('section', { 'aria-labelledby': 'view-title' }, back,
    h('h1', { id: 'view-title' }, localText(definition.title, langs)),
    definition.description ? h('p', {}, localText(definition.description, langs)) : null,
    h('p', { className: 'details' }, `${t(`form_status_${response.status}`)} · ${t('due', { date: dayLabel(request.due_on, language()) })}`),
    (response.signatures || []).map((s) => h('p', { className: 'details' }, `${t('signed_by', { name: s.signer_name })} · ${when(s.signed_at, language())}`)),
    form);
}

export async function formStatusView(ctx, requestId) {
  const requests = (await db.recordsOf('form_request')).sort((x, y) => y.sent_at.localeCompare(x.sent_at));
  const list = h('ul', { className: 'items' }, requests.map((r) => h('li', { className: 'item' },
    h('a', { href: `#/forms/${r.id}` }, h('span', { className: 'title' }, localText(r.definition.title, r.definition.languages)),
      h('span', { className: 'details' }, t('due', { date: dayLabel(r.due_on, language()) }))))));
  const section = h('section', { 'aria-labelledby': 'view-title' }, h('h1', { id: 'view-title' }, t('form_status')),
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
