// Reppu's web app: start-up, the shell (header, status, menu), routing and the login.
// The views are in views.js and forms.js; the sync engine in sync.js.

import { h, field } from './dom.js';
import { when, age } from './format.js';
import { t, setLanguage, language, languageOf, expectedLanguage } from './i18n.js';
import * as db from './db.js';
import { api, syncNow, followLive, events, ApiError, queue, queueAll } from './sync.js';
import { renderView, navFor } from './views.js';
import { errorText, refusalLines, dismiss } from './outcomes.js';
import { tabBar } from './layout.js';

const state = {
  me: null,
  online: navigator.onLine,
  live: false,
  stopLive: null,
  childId: null,
  dirty: false, // the person is typing in a form: background updates must not re-render it
  syncError: null,
  signinError: null, // the code of a refused provider sign-in, shown on the login screen
};

// -- helpers the views use -----------------------------------------------------------------

const ctx = {
  state,
  rerender: () => render({ force: true }),
  navigate: (hash) => { if (location.hash === hash) render({ force: true }); else location.hash = hash; },
  /** Queue a mutation (works offline), then send it if the network is there. */
  async mutate(name, args) {
    const id = await queue(name, args);
    requestSend();
    return id;
  },
  /** Queue several mutations at once (one transaction), then send them. */
  async mutateAll(mutations) {
    const ids = await queueAll(mutations);
    requestSend();
    return ids;
  },
  markDirty: () => { state.dirty = true; },
  async setChild(id) {
    state.childId = id;
    await db.setMeta('child', id);
    render({ force: true });
  },
};

async function requestSend() {
  if (navigator.onLine) {
    trySync();
    return;
  }
  // Offline: ask the browser to wake the service worker when the network returns
  // (Background Sync); the 'online' event below covers browsers without it.
  try {
    // Background Sync is not in every browser, nor in TypeScript's DOM types.
    const registration = /** @type {ServiceWorkerRegistration & {sync?: {register(tag: string): Promise<void>}}} */ (
      await navigator.serviceWorker.ready);
    if (registration.sync) await registration.sync.register('reppu-outbox');
  } catch (_) { /* no Background Sync: the online event will do */ }
}

let syncing = null;
let again = false;
/** Push and pull now; a call made while one runs makes it run once more afterwards (the
 * running one may have sent the outbox before a new mutation arrived). */
async function trySync() {
  if (syncing) { again = true; return syncing; }
  syncing = (async () => {
    do {
      again = false;
      try {
        await syncNow();
        state.syncError = null;
        state.online = true;
      } catch (error) {
        state.syncError = error instanceof ApiError ? error.code : 'network';
        if (!(error instanceof ApiError)) state.online = false;
        again = false;
      }
    } while (again);
    syncing = null;
    await renderStatus();
  })();
  return syncing;
}

// -- the status banner ---------------------------------------------------------------------

async function renderStatus() {
  const banner = document.getElementById('status');
  const rejectedBox = document.getElementById('rejected');
  if (!banner || !state.me) return;
  const waiting = (await db.outbox()).length;
  const online = navigator.onLine && state.online !== false;
  let text;
  if (!online) {
    text = waiting === 1 ? t('offline_waiting_one') : waiting ? t('offline_waiting', { n: waiting }) : t('offline');
  } else if (waiting) {
    text = waiting === 1 ? t('waiting_one') : t('waiting', { n: waiting });
  } else {
    const last = await db.getMeta('last_pull_at');
    text = last ? `${t('online')} · ${t('last_sync', { time: when(last, language()) })}` : t('online');
  }
  // Rewritten only when it changes: it is a live region, and the minute timer calls this.
  if (banner.textContent !== text) banner.textContent = text;
  // Offline, what is shown is as old as the last pull: say how old. Outside the live region,
  // so its ticking is not read out every minute.
  const ageLine = document.getElementById('data-age');
  const lastPull = online ? null : await db.getMeta('last_pull_at');
  ageLine.hidden = !lastPull;
  ageLine.textContent = lastPull ? t('data_age', { age: age(lastPull, new Date(), language()) }) : '';
  banner.dataset.online = String(online);
  banner.dataset.waiting = String(waiting);
  document.body.classList.toggle('is-offline', !online);

  const rejected = (await db.outcomes()).filter((o) => o.status === 'rejected' && !o.seen);
  // Set when a restored server lost changes this device no longer kept (js/sync.js).
  const lost = await db.getMeta('lost_before');
  // Alike refusals as one line with a count (js/outcomes.js): built before the box is emptied,
  // so that two calls at once cannot both fill it.
  const lines = rejected.length ? await refusalLines(rejected) : [];
  rejectedBox.replaceChildren();
  rejectedBox.hidden = rejected.length === 0 && !lost;
  if (lost) {
    rejectedBox.append(h('p', { className: 'lost', id: 'lost-changes' }, t('lost_changes'), ' ',
      h('button', { type: 'button', className: 'link', onclick: async () => {
        await db.setMeta('lost_before', null);
        renderStatus();
      } }, t('dismiss'))));
  }
  if (lines.length) {
    // Dismissed here, the refusals also leave the view's rows (a roll call's): drawn again,
    // unless the person is filling in a form (render() then redraws only this box).
    const dismissAll = async (outcomes) => {
      for (const o of outcomes) await dismiss(o);
      await render();
      // The button pressed is gone: keep the keyboard's place at the content, not the page's top.
      if (rejectedBox.hidden) document.getElementById('main').focus();
    };
    rejectedBox.append(
      h('h2', {}, t('rejected_title')),
      h('ul', {}, lines.map((line) => h('li', { className: 'rejected', 'data-code': line.outcomes[0].code, 'data-count': line.outcomes.length },
        line.text, ' ',
        h('button', { type: 'button', className: 'link', 'aria-label': `${t('dismiss')}: ${line.text}`,
          onclick: () => dismissAll(line.outcomes) }, t('dismiss'))))),
      lines.length > 1 ? h('button', { type: 'button', className: 'link', id: 'dismiss-all',
        onclick: () => dismissAll(rejected) }, t('dismiss_all')) : null,
    );
  }
}

// -- rendering -------------------------------------------------------------------------------

function route() {
  const parts = (location.hash || '#/today').replace(/^#\/?/, '').split('/').filter(Boolean);
  return parts.length ? parts : ['today'];
}

let renderCount = 0;
async function render({ force = false } = {}) {
  const root = document.getElementById('app');
  if (!state.me) {
    root.replaceChildren(loginView());
    return;
  }
  if (state.dirty && !force) { await renderStatus(); return; }
  state.dirty = false;
  const mine = ++renderCount;
  const focusedId = document.activeElement && document.activeElement.id;
  const parts = route();
  const view = await renderView(parts, ctx);
  if (mine !== renderCount) return; // a newer render started meanwhile
  const shell = document.getElementById('shell');
  if (!shell) root.replaceChildren(shellView());
  const nav = document.getElementById('menu');
  nav.replaceChildren(...tabBar(navFor(state.me), parts[0]));
  const main = document.getElementById('main');
  main.replaceChildren(view);
  if (focusedId && document.getElementById(focusedId)) document.getElementById(focusedId).focus();
  await renderStatus();
}

function shellView() {
  return h('div', { id: 'shell' },
    h('a', { className: 'skip', href: '#main', onclick: (e) => { e.preventDefault(); document.getElementById('main').focus(); } }, t('skip')),
    h('header', { className: 'top' },
      h('p', { className: 'brand' }, t('app_name')),
      h('p', { id: 'status', role: 'status', 'aria-live': 'polite' }),
      h('p', { id: 'data-age', hidden: true })),
    h('nav', { 'aria-label': t('nav'), id: 'tabs' }, h('ul', { id: 'menu' })),
    h('section', { id: 'rejected', 'aria-live': 'polite', hidden: true }),
    h('main', { id: 'main', tabindex: '-1' }));
}

function loginView() {
  const error = h('p', { id: 'login-error', className: 'error', role: 'alert' });
  const username = h('input', { name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none' });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const button = h('button', { type: 'submit' }, t('log_in'));
  const form = h('form', { className: 'card', onsubmit: async (event) => {
    event.preventDefault();
    button.disabled = true;
    error.textContent = '';
    try {
      await logIn(username.value.trim(), password.value);
    } catch (e) {
      error.textContent = e instanceof OutboxWaiting ? t('signin_outbox_waiting') : e instanceof ApiError ? t('login_failed', { reason: errorText(e) }) : t('login_offline');
      button.disabled = false;
    }
  } },
  field(t('username'), username), field(t('password'), password), button, error);
  if (state.signinError) {
    // A provider's refusal comes back as a bare code (docs/identity.md): its words if the app
    // has them, else the code in a sentence.
    const said = errorText(state.signinError);
    error.textContent = state.signinError === 'outbox_waiting' ? t('signin_outbox_waiting')
      : said !== state.signinError ? said : t('signin_failed', { code: state.signinError });
  }
  // The providers the server offers (docs/identity.md); none offline or when none are set.
  const providers = h('ul', { id: 'providers', className: 'providers' });
  api('/auth/providers').then(async ({ providers: found }) => {
    const device = encodeURIComponent(`Reppu web app (${navigator.platform || 'browser'})`);
    const challenge = found.length ? await handoffChallenge() : '';
    providers.replaceChildren(...found.map((p) => h('li', {}, h('a', {
      className: 'button provider', 'data-provider': p.name,
      href: `/auth/oidc/${encodeURIComponent(p.name)}/start?device_name=${device}&handoff_challenge=${challenge}`,
    }, t('sign_in_with', { provider: p.title })))));
  }).catch(() => {});
  return h('main', { id: 'main', className: 'login' }, h('h1', {}, t('app_name')), h('h2', {}, t('login_title')), providers, form);
}

async function logIn(username, password) {
  const answer = await api('/auth/login', {
    method: 'POST',
    body: { username, password, device_name: `Reppu web app (${navigator.platform || 'browser'})` },
  });
  await signedIn(answer);
}

const VERIFIER_KEY = 'reppu.handoff_verifier';

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** A new random hand-off verifier, kept in this tab's sessionStorage across the provider's
 * redirect; its S256 challenge goes to /auth/oidc/<provider>/start (docs/identity.md). Only
 * this tab can then redeem the hand-off: a link with somebody else's ?handoff= cannot. */
async function newHandoffChallenge() {
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  sessionStorage.setItem(VERIFIER_KEY, verifier);
  return base64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
}

// One verifier per page load: every drawing of the login screen links with the same
// challenge, so the verifier kept is the one of whichever button is clicked.
let challengeOfThisPage = null;
function handoffChallenge() {
  if (!challengeOfThisPage) challengeOfThisPage = newHandoffChallenge();
  return challengeOfThisPage;
}

/** Back from a provider (docs/identity.md): the address carries a one-time hand-off code,
 * exchanged here for the device token, or the code of a refusal. Either leaves the address.
 * A hand-off is redeemed only by a tab that started a sign-in (it has the verifier) and is
 * not signed in already: a link with an attacker's hand-off signs nobody in (login CSRF). */
async function returnFromProvider() {
  const params = new URLSearchParams(location.search);
  const handoff = params.get('handoff');
  const refusal = params.get('signin_error');
  if (!handoff && !refusal) return false;
  history.replaceState(null, '', location.pathname + location.hash);
  const verifier = sessionStorage.getItem(VERIFIER_KEY);
  sessionStorage.removeItem(VERIFIER_KEY);
  if (refusal) { state.signinError = refusal; return false; }
  if (!verifier || await db.getMeta('token')) return false;
  try {
    const body = { handoff, handoff_verifier: verifier };
    await signedIn(await api('/auth/oidc/handoff', { method: 'POST', body }));
    return true;
  } catch (e) {
    state.signinError = e instanceof OutboxWaiting ? 'outbox_waiting' : e instanceof ApiError ? e.code : 'network';
    return false;
  }
}

/** Another person signs in while this device's outbox still holds changes. */
class OutboxWaiting extends Error {}

async function signedIn(answer) {
  state.signinError = null;
  // A new person on this device starts from an empty store, with a new client id; the
  // same person again (after a revoked or expired token) keeps it. Changes still waiting
  // to be sent are never thrown away: another person may not sign in over them.
  const before = await db.getMeta('me');
  const same = before && before.person && before.person.id === answer.person_id;
  if (!same) {
    if ((await db.outbox()).length) {
      try { await api('/auth/logout', { method: 'POST', token: answer.token }); } catch (_) { /* expires */ }
      throw new OutboxWaiting();
    }
    await db.wipe();
  }
  await db.setMeta('token', answer.token);
  // Who this is, and the first pull, side by side: each is a round trip on a slow network.
  meFetchedAt = Date.now();
  const [me] = await Promise.all([api('/me', { token: answer.token }), trySync()]);
  await db.setMeta('me', me);
  await start(me);
  render({ force: true });
}

async function logOut() {
  let answer = null;
  try { answer = await api('/auth/signout', { method: 'POST' }); } catch (_) { /* offline: forget anyway */ }
  if (state.stopLive) state.stopLive();
  await db.wipe();
  state.me = null;
  location.hash = '';
  // Signed in through a provider: end its session too (RP-initiated logout).
  if (answer && answer.end_session_url) { location.assign(answer.end_session_url); return; }
  render({ force: true });
}
ctx.logOut = logOut;

/** After PUT /me/language: keep the answer with /me and show the app in it at once. */
ctx.languageChosen = async (setting) => {
  state.me = { ...state.me, language: setting };
  await db.setMeta('me', state.me);
  await setLanguage(setting.language);
  // The shell (header, skip link, status) is built once; build it again in the new words.
  const shell = document.getElementById('shell');
  if (shell) shell.remove();
  render({ force: true });
};

async function refreshMe() {
  meFetchedAt = Date.now();
  try {
    const me = await api('/me');
    await db.setMeta('me', me);
    state.me = me;
    await setLanguage(languageOf(me));
  } catch (_) { /* offline: keep what we have */ }
}

// What GET /me says can change without any record changing (a school's rules: whether its
// pupils may start conversations, docs/absences.md), so no pull brings it. It is fetched
// again when the app comes back to the foreground and when a live poke makes it sync, at
// most once a minute, and at once when the server refuses a change as forbidden.
const ME_EVERY_MS = 60_000;
let meFetchedAt = 0;
async function refreshMeNow() {
  if (!state.me || !navigator.onLine) return;
  const before = JSON.stringify(state.me);
  await refreshMe();
  if (state.me && JSON.stringify(state.me) !== before) render();
}
function refreshMeSometimes() {
  if (Date.now() - meFetchedAt >= ME_EVERY_MS) refreshMeNow();
}

async function start(me) {
  state.me = me;
  await setLanguage(languageOf(me));
  const children = me.children || [];
  const kept = await db.getMeta('child');
  state.childId = children.some((c) => c.person.id === kept) ? kept : (children[0] && children[0].person.id);
  if (state.stopLive) state.stopLive();
  state.stopLive = followLive(
    () => { trySync(); refreshMeSometimes(); },
    (connected) => { state.live = connected; },
  );
}

// -- start-up ------------------------------------------------------------------------------

function registerWorker() {
  // After the first screen is drawn, so that its precache does not compete with the page's
  // own requests on a slow network.
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('/sw.js', { type: 'module', scope: '/' }).catch(() => {});
  }
}

async function boot() {
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.addEventListener('message', (event) => {
      if (event.data && event.data.type === 'synced') render();
      if (event.data && event.data.type === 'open') location.hash = event.data.hash;
    });
  }
  events.addEventListener('records', () => render());
  // Answers draw the view again (not only the banner): a list shows each change made here
  // as waiting, sent or refused (js/outcomes.js).
  events.addEventListener('outbox', (e) => {
    const detail = /** @type {CustomEvent} */ (e).detail;
    if (detail && detail.results && detail.results.some((r) => r.code === 'mutation.forbidden')) refreshMeNow();
    return detail && detail.results ? render() : renderStatus();
  });
  events.addEventListener('auth', async () => {
    // The token is gone (revoked, expired): log in again; the outbox stays until then.
    if (state.stopLive) state.stopLive();
    await db.setMeta('token', null);
    state.me = null;
    render({ force: true });
  });
  window.addEventListener('hashchange', () => {
    render({ force: true }).then(() => {
      const heading = /** @type {HTMLElement | null} */ (document.querySelector('#main h1, #main h2'));
      if (heading) { heading.setAttribute('tabindex', '-1'); heading.focus(); }
    });
  });
  window.addEventListener('online', () => { state.online = true; renderStatus(); trySync(); });
  window.addEventListener('offline', () => { state.online = false; renderStatus(); });
  // The banner's "updated 5 minutes ago" ages while the app stays open offline.
  setInterval(renderStatus, 60_000);
  document.addEventListener('visibilitychange', () => { if (!document.hidden) { trySync(); refreshMeSometimes(); } });
  window.addEventListener('focus', refreshMeSometimes);

  // Words before anything is drawn (preloaded by index.html); the person's own follow below.
  await setLanguage(expectedLanguage());
  if (await returnFromProvider()) { registerWorker(); return; }
  const me = (await db.getMeta('token')) ? await db.getMeta('me') : null;
  if (!me) {
    await setLanguage((navigator.language || 'fi').slice(0, 2));
    await render({ force: true });
    registerWorker();
    return;
  }
  await start(me);
  await render({ force: true }); // at once, from the device's store (works offline)
  registerWorker();
  if (navigator.onLine) {
    await Promise.all([refreshMe(), trySync()]);
    render();
  }
}

boot();
/** @type {any} */ (window).reppu = { state, trySync, db }; // for tests and curious developers
