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

/**
 * Which of a guardian's children and which school an item concerns, as words ("Aino ·
 * Kallion koulu"), from the synced group records: a group's item is about the children in
 * that group, a school's about the children at that school, a city's about all of them.
 * Null for anyone without children (a pupil, staff: it is about themselves).
 * @param {{organisation_id?: number, group_id?: number|null}} item
 */
export function concerning(me, groups, item) {
  const children = me.children || [];
  if (!children.length) return null;
  const group = item.group_id ? groups.find((g) => g.id === item.group_id) : null;
  const atSchool = groups.filter((g) => g.school_id === (group ? group.school_id : item.organisation_id));
  let kids = group ? children.filter((c) => c.group_ids.includes(group.id)) : [];
  if (!kids.length) {
    const ids = new Set(atSchool.map((g) => g.id));
    kids = children.filter((c) => c.group_ids.some((id) => ids.has(id)));
  }
  const names = kids.map((c) => c.person.given_name).join(', ');
  if (!kids.length) return t('concerns', { what: t('concerns_city') });
  return t('concerns', { what: atSchool.length ? `${names} · ${atSchool[0].school_name}` : names });
}
