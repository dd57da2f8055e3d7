// A tiny element builder. Text always goes in as text nodes, never as HTML, so a message
// body or a name can never inject markup.

/** How long a form or button stays deaf after an act, at least: a double tap's second tap
 * comes within it, a person's second, deliberate act does not. */
const SETTLE_MS = 600;
/** @type {WeakSet<EventTarget>} */
const busy = new WeakSet();
/** When each form's submit last began, by the form's id (forms without one count as one).
 * A view drawn anew after a submit has a new form, and a double tap's second tap lands on it:
 * the element alone cannot tell it from a new act, the form's id can.
 * @type {Map<string, number>} */
const lastAct = new Map();

/**
 * ``handler`` for a submit or a click, answering one act at a time: while an act is handled
 * (and for SETTLE_MS after it began), another on the same element is dropped, so a double tap
 * on "Send" queues one change, not two. So is a submit of a form with the same id as the
 * last submitted one within SETTLE_MS: the second tap of a double tap may land on the form
 * drawn anew after the first, and a form cleared after "Send" must not send its cleared
 * self. While busy, a form's submit buttons are disabled.
 * @param {HTMLElement} el
 * @param {(event: Event) => unknown} handler
 * @returns {(event: Event) => Promise<void>}
 */
function once(el, handler) {
  return async (event) => {
    const kind = el instanceof HTMLFormElement ? `form#${el.id}` : null;
    const now = performance.now();
    if (busy.has(el) || (kind !== null && now - (lastAct.get(kind) ?? -Infinity) < SETTLE_MS)) {
      event.preventDefault();
      event.stopImmediatePropagation();
      return;
    }
    if (kind !== null) lastAct.set(kind, now);
    busy.add(el);
    const buttons = el instanceof HTMLFormElement
      ? [...el.querySelectorAll('button:not([disabled])')].filter((b) => b instanceof HTMLButtonElement && b.type === 'submit')
      : [];
    for (const button of buttons) if (button instanceof HTMLButtonElement) button.disabled = true;
    const settled = new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    try {
      await handler(event);
    } finally {
      await settled;
      busy.delete(el);
      for (const button of buttons) if (button instanceof HTMLButtonElement) button.disabled = false;
    }
  };
}

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'onsubmit' || name === 'onclick') el.addEventListener(name.slice(2), once(el, value));
    else if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (name === 'className') el.className = value;
    else if (name === 'value' || name === 'checked' || name === 'selected') el[name] = value;
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** A labelled form control: <div class="field"><label for=id>text</label>control</div>. */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  const hintEl = hint ? h('p', { className: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { className: 'field' }, h('label', { for: id }, label), control, hintEl);
}
