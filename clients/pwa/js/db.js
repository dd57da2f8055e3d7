// @ts-check
// The device's store in IndexedDB: records held once, which partitions hold them, the
// partitions themselves, a few meta values (token, cursor, client id), the outbox of
// mutations not yet answered, and the outcome of each answered one.
//
// The same module runs in the page and in the service worker.

const DB_NAME = 'reppu';
const DB_VERSION = 1;

let opening = null;

/** The open database (one connection per context). */
export function openDb() {
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, DB_VERSION);
      request.onupgradeneeded = () => {
        const db = request.result;
        db.createObjectStore('records', { keyPath: ['type', 'id'] }).createIndex('type', 'type');
        const holdings = db.createObjectStore('holdings', { keyPath: ['partition', 'type', 'id'] });
        holdings.createIndex('partition', 'partition');
        holdings.createIndex('record', ['type', 'id']);
        db.createObjectStore('partitions', { keyPath: 'name' });
        db.createObjectStore('meta');
        db.createObjectStore('outbox', { keyPath: 'id' });
        db.createObjectStore('outcomes', { keyPath: 'id' });
      };
      request.onsuccess = () => {
        const db = request.result;
        // Another context upgrading (a new app version) must not be blocked by this one.
        db.onversionchange = () => { db.close(); opening = null; };
        resolve(db);
      };
      request.onerror = () => { opening = null; reject(request.error); };
    });
  }
  return opening;
}

/** A promise of an IDB request's result. Awaiting it keeps the transaction alive. */
export function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** A promise that the transaction committed. */
export function committed(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new DOMException('aborted', 'AbortError'));
  });
}

export async function getMeta(key) {
  const db = await openDb();
  return done(db.transaction('meta').objectStore('meta').get(key));
}

export async function setMeta(key, value) {
  const db = await openDb();
  const tx = db.transaction('meta', 'readwrite');
  if (value === undefined || value === null) tx.objectStore('meta').delete(key);
  else tx.objectStore('meta').put(value, key);
  return committed(tx);
}

/** Every record of ``type`` (plain objects as the server sent them). */
export async function recordsOf(type) {
  const db = await openDb();
  return done(db.transaction('records').objectStore('records').index('type').getAll(type));
}

export async function getRecord(type, id) {
  const db = await openDb();
  return done(db.transaction('records').objectStore('records').get([type, id]));
}

export async function heldPartitions() {
  const db = await openDb();
  return (await done(db.transaction('partitions').objectStore('partitions').getAllKeys())).sort();
}

export async function outbox() {
  const db = await openDb();
  return done(db.transaction('outbox').objectStore('outbox').getAll());
}

export async function outcomes() {
  const db = await openDb();
  return done(db.transaction('outcomes').objectStore('outcomes').getAll());
}

/** Forget everything: records, partitions, cursor, outbox, outcomes, token (log out). */
export async function wipe() {
  const db = await openDb();
  const names = ['records', 'holdings', 'partitions', 'meta', 'outbox', 'outcomes'];
  const tx = db.transaction(names, 'readwrite');
  for (const name of names) tx.objectStore(name).clear();
  return committed(tx);
}
