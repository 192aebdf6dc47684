/** Test helpers: SSE parsing and JSON shape comparison. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

export function fixture(name: string): unknown {
  return JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8'));
}

/** `data: ...` payloads of an SSE body (framing checked: every event is `data: X\n\n`). */
export function sseData(body: string): string[] {
  assert.ok(body.endsWith('\n\n'), 'SSE body ends with a blank line');
  const events = body.slice(0, -2).split('\n\n');
  return events.map((e) => {
    assert.ok(e.startsWith('data: '), `event is a data line: ${e.slice(0, 40)}`);
    return e.slice(6);
  });
}

const kind = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/** Same keys in the same order and same JSON types, recursively (arrays: element-wise on the shorter). */
export function assertSameShape(actual: unknown, expected: unknown, path = '$'): void {
  assert.equal(kind(actual), kind(expected), `${path}: type`);
  if (Array.isArray(expected) && Array.isArray(actual)) {
    for (let i = 0; i < Math.min(actual.length, expected.length); i++) assertSameShape(actual[i], expected[i], `${path}[${i}]`);
  } else if (expected && typeof expected === 'object') {
    const a = actual as Record<string, unknown>;
    const e = expected as Record<string, unknown>;
    assert.deepEqual(Object.keys(a), Object.keys(e), `${path}: keys`);
    for (const k of Object.keys(e)) assertSameShape(a[k], e[k], `${path}.${k}`);
  }
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; text: string; headers: Headers }> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await r.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* SSE or empty */
  }
  return { status: r.status, json, text, headers: r.headers };
}
