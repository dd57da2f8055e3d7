// The Node `web-push` package sending one storm bulletin's pushes, for scripts/bench.
//
// Usage: node webpush_send.js PLAN.json RESULT.json
// PLAN: {"subscriptions": [{"endpoint", "keys": {"p256dh", "auth"}}], "payload_b64": "...",
//        "ttl": 43200, "urgency": "high", "topic": "...", "concurrency": 1,
//        "vapid": {"subject", "publicKey", "privateKey"}}
// RESULT: {"ok", "refused": {"<status>": n}, "seconds", "first_error"}
//
// Each push is `webpush.sendNotification(subscription, payload, options)`, as the package's
// README shows it: the payload encrypted (aes128gcm) and a VAPID JWT signed on every call. With
// "concurrency" 1 it is the plain loop most users write (one push after another); above 1, that
// many pushes are in flight at once.
//
// web-push speaks only https (it calls https.request with the endpoint's host and port). The
// push-service emulator is plain HTTP on loopback, as it is for Reppu's sender and pywebpush,
// so https.request is pointed at http.request: web-push does all its own work, and no side
// pays for TLS.
'use strict';

const fs = require('fs');
const http = require('http');
const https = require('https');

https.request = http.request;

const webpush = require('web-push');

async function main() {
  const [planPath, resultPath] = process.argv.slice(2);
  const plan = JSON.parse(fs.readFileSync(planPath, 'utf8'));
  const payload = Buffer.from(plan.payload_b64, 'base64');
  const options = {
    TTL: plan.ttl,
    urgency: plan.urgency,
    topic: plan.topic,
    contentEncoding: 'aes128gcm',
    vapidDetails: plan.vapid,
    timeout: 10000,
  };
  const subs = plan.subscriptions;
  const refused = {};
  let ok = 0;
  let firstError = '';
  let next = 0;

  async function lane() {
    while (next < subs.length) {
      const sub = subs[next];
      next += 1;
      try {
        await webpush.sendNotification(sub, payload, options);
        ok += 1;
      } catch (err) {
        const status = String(err.statusCode || 'error');
        refused[status] = (refused[status] || 0) + 1;
        if (!firstError) {
          firstError = `${err.message} ${err.body || ''}`.slice(0, 200);
        }
      }
    }
  }

  const started = process.hrtime.bigint();
  const lanes = [];
  for (let i = 0; i < Math.max(1, plan.concurrency); i += 1) {
    lanes.push(lane());
  }
  await Promise.all(lanes);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  fs.writeFileSync(
    resultPath,
    JSON.stringify({ ok, refused, seconds, first_error: firstError }),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
