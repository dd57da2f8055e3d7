// Reppu's service worker: keeps the app shell for offline starts (a new version of the
// app's files reaches the next start; change CACHE to replace them all at once), sends the
// outbox when the network returns (Background Sync), pulls when a Web Push arrives (and
// shows it), and renews the push subscription when the browser changes it. Data lives in IndexedDB
// (js/db.js), never in this cache: API answers are not cached here.

import { api, syncNow } from './js/sync.js';
import { getMeta } from './js/db.js';
import { languageOf, pushWords } from './js/i18n.js';

const CACHE = 'reppu-shell-v5'; // v5: a module per language's words, staff and forms loaded when opened
const SHELL = [
  '/',
  '/css/app.css',
  '/js/app.js',
  '/js/views.js',
  '/js/forms.js',
  '/js/children.js',
  '/js/conversations.js',
  '/js/outcomes.js',
  '/js/dom.js',
  '/js/format.js',
  '/js/db.js',
  '/js/sync.js',
  '/js/checksum.js',
  '/js/i18n.js',
  '/js/timetable.js',
  '/js/push.js',
  '/js/layout.js',
  '/js/staff.js',
  '/js/words/fi.js',
  '/js/words/sv.js',
  '/js/words/en.js',
  '/manifest.webmanifest',
  '/icons/icon.svg',
  '/icons/icon-192.png',
  '/icons/icon-512.png',
];

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll(SHELL.map((url) => new Request(url, { cache: 'reload' })));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  // The app's own files only; the API (and anything else the server has) is the network's,
  // as if there were no worker. Every page of the app is the one shell: views are chosen by
  // the URL's hash.
  const key = url.pathname === '/index.html' ? '/' : url.pathname;
  if (request.method !== 'GET' || url.origin !== self.location.origin || !SHELL.includes(key)) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const cached = await cache.match(key);
    // Stale while revalidate: the cached file at once (offline too), a fresh copy for the
    // next start when the network is there (an unchanged file costs a 304).
    const refresh = fetch(key, { cache: 'no-cache' }).then(async (answer) => {
      if (answer.ok) await cache.put(key, answer.clone());
      return answer;
    });
    if (cached) {
      event.waitUntil(refresh.catch(() => {}));
      return cached;
    }
    return refresh;
  })());
});

/** A notification's default words in the person's language (js/i18n.js pushWords). */
async function theirPushWords() {
  const me = await getMeta('me');
  return pushWords(me && me.person && languageOf(me));
}

async function tellPages(message) {
  for (const client of await self.clients.matchAll({ type: 'window' })) client.postMessage(message);
}

async function pullAndTell(reason) {
  try {
    await syncNow();
    await tellPages({ type: 'synced', reason });
  } catch (_) {
    // Offline or logged out: the next start or poke pulls.
  }
}

// A Web Push: the payload (docs/notifications.md) carries "pull": 1, a kind, maybe an id,
// and a title and body to show. A payload shortened after a 413 has ids only.
self.addEventListener('push', (event) => {
  let payload = {};
  try { payload = event.data ? event.data.json() : {}; } catch (_) { payload = {}; }
  event.waitUntil((async () => {
    const words = await theirPushWords();
    const tag = payload.kind ? `${payload.kind}:${payload.id ?? ''}` : 'reppu';
    await self.registration.showNotification(payload.title || words.title, {
      body: payload.body || words.body,
      tag,
      icon: '/icons/icon-192.png',
      data: { kind: payload.kind, id: payload.id },
    });
    await pullAndTell('push');
  })());
});

const ROUTE_OF_KIND = {
  message: '#/messages', bulletin: '#/bulletins', urgent: '#/bulletins', digest: '#/bulletins',
  lesson_change: '#/today', absence: '#/absences', form_due: '#/forms',
};

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const hash = ROUTE_OF_KIND[(event.notification.data || {}).kind] || '#/today';
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    if (windows.length) {
      await windows[0].focus();
      windows[0].postMessage({ type: 'open', hash });
    } else {
      await self.clients.openWindow(`/${hash}`);
    }
  })());
});

// Background Sync: the page asked for 'reppu-outbox' while offline; the browser calls this
// when the network is back, even if the page was closed.
self.addEventListener('sync', (event) => {
  if (event.tag === 'reppu-outbox') event.waitUntil(pullAndTell('background-sync'));
});

self.addEventListener('message', (event) => {
  if (event.data && event.data.type === 'sync') event.waitUntil(pullAndTell('page'));
});

// The push service replaced (or dropped) the subscription: subscribe again and tell the
// server, so the device keeps getting its pokes.
self.addEventListener('pushsubscriptionchange', (event) => {
  event.waitUntil((async () => {
    if (!(await getMeta('token'))) return;
    let subscription = event.newSubscription;
    if (!subscription) {
      const { public_key: key } = await api('/push/vapid-public-key');
      subscription = await self.registration.pushManager.subscribe({
        userVisibleOnly: true, applicationServerKey: key,
      });
    }
    const json = subscription.toJSON();
    await api('/push/subscriptions', {
      method: 'POST', body: { endpoint: json.endpoint, keys: json.keys },
    });
  })());
});
