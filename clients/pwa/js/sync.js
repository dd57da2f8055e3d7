// @ts-check
// The sync protocol (docs/sync-protocol.md) over JSON, mirroring the Python reference client
// (clients/python/): pull with a cursor, each answer applied atomically in one IndexedDB
// transaction, checksums checked per partition (and repaired), partitions dropped, and a
// mutation outbox that survives reloads and is sent when the network returns.
//
// Runs in the page and in the service worker. The two take turns through a Web Lock, and
// the server applies each mutation id once, so a push made twice does no harm.

import { openDb, done, committed, getMeta, setMeta } from './db.js';
import { tally } from './checksum.js';

// The wire's types, generated from the server's OpenAPI document (clients/typescript/
// contract.d.ts). Only comments: the browser never loads them; `tsc` checks this module
// against them (clients/typescript/tsconfig.pwa.json), so a renamed field fails the tests.
/** @typedef {import('../../typescript/contract').PullRequest} PullRequest */
/** @typedef {import('../../typescript/contract').PullResponse} PullResponse */
/** @typedef {import('../../typescript/contract').PushRequest} PushRequest */
/** @typedef {import('../../typescript/contract').PushResponse} PushResponse */
/** @typedef {import('../../typescript/contract').MutationIn} MutationIn */
/** @typedef {import('../../typescript/contract').MutationResult} MutationResult */
/** @typedef {import('../../typescript/contract').Record} WireRecord */
/** @typedef {import('../../typescript/contract').ErrorBody} ErrorBody */
/**
 * An answered mutation as the ``outcomes`` store keeps it: the server's result, what was
 * sent (to send it again after a restore), when it was answered and whether the user saw it.
 * @typedef {MutationResult & {name?: string, args?: MutationIn['args'],
 *   occurred_at?: string, at: string, seen?: boolean}} Outcome
 */

export const SCHEMA_VERSION = 1;
export const MAX_PUSH_MUTATIONS = 500;
const PAGE_LIMIT = 500;

/** Tells the views that something changed: 'records', 'outbox', 'auth', 'network'. */
export const events = new EventTarget();
function emit(what, detail) { events.dispatchEvent(new CustomEvent(what, { detail })); }

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {ErrorBody | null} body
   */
  constructor(status, body) {
    super(`${status} ${body && body.code}: ${body && body.message}`);
    this.status = status;
    this.code = body && body.code;
    this.field = body && body.field;
    // The server's sentence (English): shown only for a code this app has no words for
    // (outcomes.js errorText).
    this.serverMessage = body && body.message;
  }
}

/**
 * A request to the API with the stored token; JSON in and out. The answer is the caller's
 * to type (``@type`` on the variable it goes into), as its path decides its shape.
 * @param {string} path
 * @param {{method?: string, body?: unknown, token?: string, signal?: AbortSignal}} [options]
 * @returns {Promise<any>}
 */
export async function api(path, { method = 'GET', body, token, signal } = {}) {
  const headers = { Accept: 'application/json' };
  const bearer = token || await getMeta('token');
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const answer = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal,
    cache: 'no-store',
  });
  const text = await answer.text();
  const parsed = text ? JSON.parse(text) : null;
  if (!answer.ok) {
    if (answer.status === 401 && path !== '/auth/login') emit('auth', { code: parsed && parsed.code });
    throw new ApiError(answer.status, parsed);
  }
  return parsed;
}

function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** The installation's client id, made once and kept with the store. */
export async function clientId() {
  let id = await getMeta('client_id');
  if (!id) { id = randomId(); await setMeta('client_id', id); }
  return id;
}

// -- applying a pull answer ----------------------------------------------------------------

async function dropHoldings(holdings, partition, candidates) {
  const keys = await done(holdings.index('partition').getAllKeys(IDBKeyRange.only(partition)));
  for (const key of keys) {
    candidates.add(`${key[1]}\u0000${key[2]}`);
    holdings.delete(key);
  }
}

async function collectOrphans(records, holdings, candidates) {
  for (const candidate of candidates) {
    const [type, id] = candidate.split('\u0000');
    const key = [type, Number(id)];
    const count = await done(holdings.index('record').count(IDBKeyRange.only(key)));
    if (count === 0) records.delete(key);
  }
  candidates.clear();
}

/**
 * Apply a whole answer in one transaction, cursor included (the protocol's order); a crash
 * part-way leaves the store as it was, and the same pull is simply made again. Returns the
 * partitions whose count or checksum did not match their summary.
 * @param {PullResponse} answer
 * @returns {Promise<string[]>}
 */
export async function applyAnswer(answer) {
  const db = await openDb();
  const tx = db.transaction(['records', 'holdings', 'partitions', 'meta'], 'readwrite');
  const finished = committed(tx);
  const records = tx.objectStore('records');
  const holdings = tx.objectStore('holdings');
  const partitions = tx.objectStore('partitions');
  const candidates = new Set();
  try {
    for (const p of answer.removed || []) {
      await dropHoldings(holdings, p, candidates);
      partitions.delete(p);
    }
    for (const p of answer.added || []) {
      await dropHoldings(holdings, p, candidates); // a fresh copy follows
      partitions.put({ name: p });
    }
    // Records no partition holds any more go before the fresh copies arrive, so a stale
    // version cannot outrank the one a fresh copy brings.
    await collectOrphans(records, holdings, candidates);
    for (const change of answer.changes || []) {
      if (change.op === 'upsert') {
        const record = change.record;
        const key = [record.type, record.id];
        const held = await done(records.get(key));
        // A record seen through two partitions is stored once, at its newest version.
        if (!held || record.v >= held.v) records.put(record);
        holdings.put({ partition: change.partition, type: record.type, id: record.id });
      } else if (change.op === 'delete') {
        holdings.delete([change.partition, change.type, change.id]);
        candidates.add(`${change.type}\u0000${change.id}`);
      }
    }
    await collectOrphans(records, holdings, candidates);
    if (answer.cursor) tx.objectStore('meta').put(answer.cursor, 'cursor');
    tx.commit();
  } catch (error) {
    try { tx.abort(); } catch (_) { /* already finished */ }
    throw error;
  }
  await finished;
  const mismatched = [];
  for (const summary of answer.summaries || []) {
    const mine = await partitionTally(summary.partition);
    if (mine.count !== summary.count || mine.checksum !== summary.checksum) {
      mismatched.push(summary.partition);
    }
  }
  return mismatched;
}

/** The count and checksum of the local copy of ``partition``. */
export async function partitionTally(partition) {
  const db = await openDb();
  const tx = db.transaction(['records', 'holdings']);
  const keys = await done(tx.objectStore('holdings').index('partition').getAllKeys(IDBKeyRange.only(partition)));
  const held = [];
  for (const key of keys) {
    const record = await done(tx.objectStore('records').get([key[1], key[2]]));
    if (record) held.push({ type: record.type, id: record.id, v: record.v });
  }
  return tally(held);
}

/** Forget every record and the cursor; the outbox stays (it is the user's work). */
export async function resetStore() {
  const db = await openDb();
  const tx = db.transaction(['records', 'holdings', 'partitions', 'meta'], 'readwrite');
  tx.objectStore('records').clear();
  tx.objectStore('holdings').clear();
  tx.objectStore('partitions').clear();
  tx.objectStore('meta').delete('cursor');
  return committed(tx);
}

// -- pull ----------------------------------------------------------------------------------

/**
 * One pull, applied; returns the answer and the partitions that failed their check.
 * @param {string[]} [repair]
 * @returns {Promise<{answer: PullResponse, mismatched: string[]}>}
 */
export async function pullOnce(repair = []) {
  /** @type {PullRequest} */
  const body = { schema_version: SCHEMA_VERSION, limit: PAGE_LIMIT };
  const cursor = await getMeta('cursor');
  if (cursor) body.cursor = cursor;
  if (repair.length) body.repair = repair;
  /** @type {PullResponse} */
  let answer;
  try {
    answer = await api('/sync/pull', { method: 'POST', body });
  } catch (error) {
    if (!(error instanceof ApiError) || error.code !== 'sync.bad_cursor' || !body.cursor) throw error;
    // The server no longer knows this cursor: start again from nothing. A database
    // restored from a backup has a new epoch and refuses every older cursor; it may have
    // lost mutations this device sent, so the kept ones are queued again (the server
    // answers those it still has as replays). ``syncNow`` sends them after the pull.
    await resetStore();
    await requeueSent();
    delete body.cursor;
    answer = await api('/sync/pull', { method: 'POST', body });
  }
  const mismatched = await applyAnswer(answer);
  return { answer, mismatched };
}

/** Pull until nothing more is waiting, repairing any partition whose check fails. */
export async function pullAll(maxPages = 1000) {
  let repair = [];
  let changes = 0;
  for (let page = 0; page < maxPages; page += 1) {
    const { answer, mismatched } = await pullOnce(repair);
    changes += (answer.changes || []).length;
    const again = mismatched.filter((p) => !repair.includes(p));
    repair = again;
    if (!answer.has_more && repair.length === 0) {
      await setMeta('last_pull_at', new Date().toISOString());
      if (changes) emit('records', { changes });
      return changes;
    }
  }
  throw new Error(`sync did not finish within ${maxPages} pages`);
}

// -- the outbox ----------------------------------------------------------------------------

async function outboxSize() {
  const db = await openDb();
  return done(db.transaction('outbox').objectStore('outbox').count());
}

/** Record a mutation locally (works offline); returns its id. ``pushOutbox`` sends it. */
export async function queue(name, args) {
  const [id] = await queueAll([{ name, args }]);
  return id;
}

/**
 * Record several mutations ([{name, args}]) in one transaction: all of them or, if the tab
 * dies part-way, none ("All present" at roll call must not leave half a class marked).
 * Returns their ids, numbered on from the last one, in order.
 * @param {{name: string, args: MutationIn['args']}[]} mutations
 * @returns {Promise<number[]>}
 */
export async function queueAll(mutations) {
  if (!mutations.length) return [];
  const db = await openDb();
  const tx = db.transaction(['outbox', 'meta'], 'readwrite');
  const finished = committed(tx);
  const meta = tx.objectStore('meta');
  let id = (await done(meta.get('last_mutation_id'))) || 0;
  const occurred_at = new Date().toISOString();
  const ids = [];
  for (const { name, args } of mutations) {
    id += 1;
    /** @type {MutationIn} */
    const mutation = { id, name, args, occurred_at };
    tx.objectStore('outbox').add(mutation);
    ids.push(id);
  }
  meta.put(id, 'last_mutation_id');
  await finished;
  emit('outbox', { queued: ids });
  return ids;
}

// How many answered mutations are kept (in ``outcomes``) to send again after a restore, as
// the reference client keeps its ``sent`` journal (docs/sync-protocol.md, "After a restore").
export const KEEP_SENT = 10_000;
const OUT_OF_ORDER = 'mutation.out_of_order';

/**
 * Drop answered mutations from the outbox, keeping their outcome for the user and, with
 * name, args and occurred_at, for sending again should the server lose it. A replay keeps
 * the "seen" of a rejection the user has already dismissed.
 */
/**
 * @param {MutationIn[]} sent
 * @param {MutationResult[]} results
 */
async function settle(sent, results) {
  const byId = new Map(sent.map((m) => [m.id, m]));
  const db = await openDb();
  const tx = db.transaction(['outbox', 'outcomes'], 'readwrite');
  const finished = committed(tx);
  const outcomes = tx.objectStore('outcomes');
  let highest = 0;
  for (const result of results) {
    if (result.code === OUT_OF_ORDER) continue; // not recorded: stays queued
    /** @type {Partial<MutationIn>} */
    const mutation = byId.get(result.id) || {};
    const before = await done(outcomes.get(result.id));
    tx.objectStore('outbox').delete(result.id);
    /** @type {Outcome} */
    const outcome = {
      ...result, name: mutation.name, args: mutation.args, occurred_at: mutation.occurred_at,
      at: new Date().toISOString(),
    };
    if (before && before.seen && before.status === result.status) outcome.seen = true;
    outcomes.put(outcome);
    highest = Math.max(highest, result.id);
  }
  if (highest > KEEP_SENT) outcomes.delete(IDBKeyRange.upperBound(highest - KEEP_SENT));
  await finished;
}

/**
 * Queue every kept answered mutation again, by its old id (the server may have lost it in
 * a restore; one it still has costs a replay). An outcome kept before occurred_at was kept
 * cannot be sent faithfully and is left alone. Returns how many were queued.
 */
export async function requeueSent() {
  const db = await openDb();
  const tx = db.transaction(['outbox', 'outcomes'], 'readwrite');
  const finished = committed(tx);
  const outbox = tx.objectStore('outbox');
  let moved = 0;
  /** @type {Outcome[]} */
  const kept = await done(tx.objectStore('outcomes').getAll());
  for (const o of kept) {
    if (!o.name || !o.args || !o.occurred_at) continue;
    if (await done(outbox.getKey(o.id)) !== undefined) continue; // already waiting
    outbox.add({ id: o.id, name: o.name, args: o.args, occurred_at: o.occurred_at });
    moved += 1;
  }
  await finished;
  if (moved) emit('outbox', { requeued: moved });
  return moved;
}

/**
 * Start a new installation's numbering under a new client id, the outbox from id 1 in its
 * order: for a server that lost mutations this device no longer keeps, which expects an id
 * that can never be sent. The outcomes go (their ids would be confused with the new ones);
 * ``lost_before`` (meta) tells the user that work from before then may need doing again.
 */
async function renumber() {
  const db = await openDb();
  const tx = db.transaction(['outbox', 'outcomes', 'meta'], 'readwrite');
  const finished = committed(tx);
  const outbox = tx.objectStore('outbox');
  /** @type {MutationIn[]} */
  const pending = await done(outbox.getAll());
  outbox.clear();
  pending.forEach((m, i) => outbox.add({ ...m, id: i + 1 }));
  tx.objectStore('outcomes').clear();
  const meta = tx.objectStore('meta');
  if (pending.length) meta.put(pending[0].id, 'lost_before');
  meta.put(pending.length, 'last_mutation_id');
  meta.put(randomId(), 'client_id');
  await finished;
}

/**
 * One pass over the outbox; its results, and whether its first id was out of order.
 * @returns {Promise<{results: MutationResult[], gap: boolean}>}
 */
async function pushPass() {
  const db = await openDb();
  /** @type {MutationIn[]} */
  const pending = await done(db.transaction('outbox').objectStore('outbox').getAll());
  const client_id = await clientId();
  const results = [];
  for (let start = 0; start < pending.length; start += MAX_PUSH_MUTATIONS) {
    const batch = pending.slice(start, start + MAX_PUSH_MUTATIONS);
    /** @type {PushRequest} */
    const body = { schema_version: SCHEMA_VERSION, client_id, mutations: batch };
    /** @type {PushResponse} */
    const answer = await api('/sync/push', { method: 'POST', body });
    await settle(batch, answer.results);
    results.push(...answer.results);
    // The lowest id waiting is out of order: the server lost mutations it had answered
    // (restored from a backup). Nothing after it can be applied; stop here.
    if (start === 0 && answer.results.length && answer.results[0].code === OUT_OF_ORDER) {
      return { results, gap: true };
    }
  }
  return { results, gap: false };
}

/**
 * Send every queued mutation, in batches the server takes; returns the results. If the
 * server answers the first one mutation.out_of_order it has lost what this device sent:
 * the kept ones are queued again and sent; if it still expects one no longer kept, the
 * outbox goes on under a new client id (``renumber``), as the reference client does.
 */
export async function pushOutbox() {
  const results = [];
  let requeued = false;
  for (let round = 0; round < 3; round += 1) {
    const { results: answered, gap } = await pushPass();
    results.push(...answered.filter((r) => r.code !== OUT_OF_ORDER));
    if (!gap) {
      if (answered.length) emit('outbox', { results });
      return results;
    }
    if (!requeued) {
      requeued = true;
      if (await requeueSent()) continue;
    }
    await renumber();
  }
  throw new Error('the server refused this device\'s outbox as out of order');
}

/** Push what waits, then pull: one at a time across the page and the service worker. */
export async function syncNow() {
  const run = async () => {
    if (!(await getMeta('token'))) return;
    await pushOutbox();
    await pullAll();
    // A refused cursor (a restored server) queued the kept mutations again: send them now,
    // and pull what they bring back.
    if ((await outboxSize()) > 0) {
      await pushOutbox();
      await pullAll();
    }
  };
  if (self.navigator && navigator.locks) return navigator.locks.request('reppu-sync', run);
  return run();
}

// -- the live stream -----------------------------------------------------------------------

const KEEP_ALIVE_LIMIT_MS = 25_000; // the server sends something at least every 15 s

/**
 * Follow GET /sync/live while the page is open, calling ``onPoke`` on each poke.
 * EventSource cannot send the Authorization header, so the stream is read with fetch.
 * Returns a function that stops it. Reconnects after a silence, an error or a drop.
 * @param {(event: string, data: string) => void} onPoke
 * @param {(connected: boolean) => void} [onState]
 * @returns {() => void}
 */
export function followLive(onPoke, onState = () => {}) {
  let stopped = false;
  let controller = null;
  let retryMs = 1000;

  async function connect() {
    while (!stopped) {
      const token = await getMeta('token');
      if (!token) return;
      controller = new AbortController();
      let watchdog = null;
      const feed = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => controller.abort(), KEEP_ALIVE_LIMIT_MS);
      };
      try {
        feed();
        const answer = await fetch('/sync/live', {
          headers: { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' },
          signal: controller.signal, cache: 'no-store',
        });
        if (answer.status === 401) { emit('auth', { code: 'auth.invalid_token' }); return; }
        if (!answer.ok || !answer.body) throw new Error(`live: ${answer.status}`);
        onState(true);
        retryMs = 1000;
        const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done: ended } = await reader.read();
          if (ended) break;
          feed();
          buffer += value;
          let cut;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            let event = 'message';
            const data = [];
            for (const line of block.split(/\r?\n/)) {
              if (line.startsWith('event:')) event = line.slice(6).trim();
              else if (line.startsWith('data:')) data.push(line.slice(5).trim());
            }
            if (event === 'poke' || event === 'ready') onPoke(event, data.join(' '));
            if (event === 'end') { emit('auth', { code: 'auth.invalid_token' }); return; }
          }
        }
      } catch (_) {
        // A drop, a silence or offline: try again shortly.
      } finally {
        clearTimeout(watchdog);
      }
      onState(false);
      if (stopped) return;
      await new Promise((r) => setTimeout(r, retryMs));
      retryMs = Math.min(retryMs * 2, 30_000);
    }
  }
  connect();
  return () => { stopped = true; if (controller) controller.abort(); };
}
