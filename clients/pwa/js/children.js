// Which child a guardian is looking at. Every child's view (the timetable, absences, forms)
// draws the same switcher, so it lives here, beside neither views.js nor forms.js: both
// import it, and neither imports the other.

import { h } from './dom.js';
import { t } from './i18n.js';

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
