// @ts-check
// Partition checksums as docs/sync-protocol.md defines them: a record's digest is the first
// 8 bytes, big-endian, of SHA-256 over the UTF-8 string "{type}:{id}:{v}"; a partition's
// checksum is the sum of its records' digests modulo 2^64, as 16 lower-case hex digits.

const MOD = 1n << 64n;
const encoder = new TextEncoder();
const known = new Map(); // "type:id:v" -> BigInt digest; digests never change

export async function recordDigest(type, id, v) {
  const text = `${type}:${id}:${v}`;
  let digest = known.get(text);
  if (digest === undefined) {
    const hash = await crypto.subtle.digest('SHA-256', encoder.encode(text));
    digest = new DataView(hash).getBigUint64(0, false);
    known.set(text, digest);
  }
  return digest;
}

/** The count and checksum of a list of {type, id, v}. */
export async function tally(records) {
  let sum = 0n;
  for (const r of records) sum = (sum + await recordDigest(r.type, r.id, r.v)) % MOD;
  return { count: records.length, checksum: sum.toString(16).padStart(16, '0') };
}
