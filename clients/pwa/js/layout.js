// The layout on a phone: the bottom tab bar (never more than five cells, so it never wraps
// onto a second row at 360 px), the "More" view with what did not fit, and the timetable's
// week switcher with a word on which weeks the device holds.

import { h } from './dom.js';
import { t, language } from './i18n.js';
import { dateRange } from './format.js';
import { addDays, isoWeekday, schoolToday } from './timetable.js';

/** Cells in the tab bar: five is what fits a 360 px phone in every language. */
const TABS = 5;

/** A tab's label: its short form (tab_<key>) where the language has one. */
function tabLabel(key) {
  const short = t(`tab_${key}`);
  return short === `tab_${key}` ? t(key) : short;
}

/**
 * The tab bar's cells for a menu of [hash, text key]: the whole menu when it fits, else its
 * first four and "More", which lists the rest (#/more). ``current`` is the route's first part.
 * @param {Array<[string, string]>} items
 * @param {string} current
 */
export function tabBar(items, current) {
  const shown = items.length <= TABS ? items : items.slice(0, TABS - 1);
  const rest = items.slice(shown.length);
  const cells = shown.map(([hash, key]) => h('li', {},
    h('a', { href: hash, 'aria-current': `#/${current}` === hash ? 'page' : undefined }, tabLabel(key))));
  if (rest.length) {
    const inRest = current === 'more' || rest.some(([hash]) => hash === `#/${current}`);
    cells.push(h('li', {}, h('a', { href: '#/more', id: 'nav-more', 'aria-current': inRest ? 'page' : undefined }, t('more'))));
  }
  return cells;
}

/**
 * The "More" view: the menu's items the tab bar had no room for.
 * @param {Array<[string, string]>} items
 */
export function moreView(items) {
  const rest = items.length <= TABS ? [] : items.slice(TABS - 1);
  return h('section', { 'aria-labelledby': 'view-title' },
    h('h1', { id: 'view-title' }, t('more')),
    h('ul', { className: 'more-list', id: 'more-list' }, rest.map(([hash, key]) => h('li', {},
      h('a', { href: hash }, t(key))))));
}

/** The Monday of the week of ``day`` (YYYY-MM-DD). */
export function mondayOf(day) {
  return addDays(day, 1 - isoWeekday(day));
}

/**
 * Which week the timetable shows: the Monday in the address (#/week/2026-12-14) if it is
 * one, else this week's.
 * @param {string | undefined} asked
 */
export function weekAsked(asked) {
  const today = schoolToday();
  if (asked && /^\d{4}-\d{2}-\d{2}$/.test(asked) && !Number.isNaN(Date.parse(asked))) return mondayOf(asked);
  return mondayOf(today);
}

/**
 * Back and forth between weeks, and what the device holds of the week shown. The weekly
 * plan is on the device for every week it is valid; a day's changes (cancellations,
 * substitutes, rooms) only for this week and next (the server's sync window,
 * docs/sync-protocol.md): any other week shows the plan alone, and says so.
 * @param {string} monday
 */
export function weekSwitcher(monday) {
  const thisMonday = mondayOf(schoolToday());
  const lang = language();
  const span = (m) => dateRange(m, addDays(m, 4), lang);
  // The week's dates are part of the link's text, so its name says where it goes.
  const link = (m, key, id) => h('a', { href: `#/week/${m}`, className: 'button secondary', id },
    t(key), h('span', { className: 'span' }, span(m)));
  const nav = h('nav', { className: 'weeks', 'aria-label': t('weeks') },
    link(addDays(monday, -7), 'week_before', 'week-before'),
    monday === thisMonday ? null : h('a', { href: `#/week/${thisMonday}`, className: 'button secondary', id: 'week-this' }, t('this_week')),
    link(addDays(monday, 7), 'week_after', 'week-after'));
  let held = null;
  if (monday < thisMonday) held = t('week_past_not_held');
  else if (monday > addDays(thisMonday, 7)) held = t('week_future_not_held');
  return [nav, held ? h('p', { className: 'notice', id: 'week-not-held' }, held) : null];
}
