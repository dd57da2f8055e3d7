// Web Push on and off for this device: subscribe with the server's VAPID key, hand the
// subscription to the server (POST /push/subscriptions), or take it back.

import { api } from './sync.js';

function keyBytes(base64url) {
  const text = atob(base64url.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - base64url.length % 4) % 4));
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

export async function pushSubscription() {
  if (!('serviceWorker' in navigator) || !('PushManager' in self)) return null;
  const registration = await navigator.serviceWorker.ready;
  return registration.pushManager.getSubscription();
}

export async function turnPushOn() {
  if (!('PushManager' in self)) throw new Error('no Web Push in this browser');
  if ((await Notification.requestPermission()) !== 'granted') throw new Error('permission refused');
  const registration = await navigator.serviceWorker.ready;
  const { public_key: key } = await api('/push/vapid-public-key');
  const subscription = await registration.pushManager.subscribe({
    userVisibleOnly: true, applicationServerKey: keyBytes(key),
  });
  const json = subscription.toJSON();
  await api('/push/subscriptions', { method: 'POST', body: { endpoint: json.endpoint, keys: json.keys } });
  return subscription;
}

export async function turnPushOff() {
  const subscription = await pushSubscription();
  if (subscription) await subscription.unsubscribe();
  await api('/push/subscriptions', { method: 'DELETE' });
}
