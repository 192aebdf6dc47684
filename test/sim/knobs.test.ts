import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DEFAULT_KNOBS, KNOB_NAMES, knobInfos, knobsMarkdown, resolveKnobs, KnobError, timingKnobs } from '../../src/sim/knobs.js';

const DOC = fileURLToPath(new URL('../../docs/simulator.md', import.meta.url));
const MARKERS = /<!-- sim-knobs:start -->\n([\s\S]*?)<!-- sim-knobs:end -->/;

test('docs/simulator.md carries the knob table generated from the schema (UPDATE_SIM_DOCS=1 rewrites it)', () => {
  const doc = readFileSync(DOC, 'utf8');
  const m = MARKERS.exec(doc);
  assert.ok(m, 'docs/simulator.md has the sim-knobs markers');
  if (process.env.UPDATE_SIM_DOCS === '1' && m[1] !== knobsMarkdown()) {
    writeFileSync(DOC, doc.replace(MARKERS, `<!-- sim-knobs:start -->\n${knobsMarkdown()}<!-- sim-knobs:end -->`));
    return;
  }
  assert.equal(m[1], knobsMarkdown(), 'the knob table drifted from src/sim/knobs.ts: run UPDATE_SIM_DOCS=1 node test/run.mjs test/sim/knobs');
  for (const k of knobInfos()) assert.ok(m[1].includes(k.flag) && m[1].includes(k.env), k.name);
});

test('every knob has a flag, an env var, a JSON type, a default that parses, and a meaning', () => {
  assert.deepEqual(Object.keys(DEFAULT_KNOBS).sort(), [...KNOB_NAMES].sort());
  for (const k of knobInfos()) {
    assert.match(k.flag, /^--sim-[a-z0-9-]+$/);
    assert.match(k.env, /^PD_SIM_[A-Z0-9_]+$/);
    assert.ok(['number', 'integer', 'string', 'boolean'].includes(k.type), `${k.name}: ${k.type}`);
    assert.ok(k.doc.length > 10, k.name);
    assert.deepEqual(k.default, DEFAULT_KNOBS[k.name]);
  }
  assert.ok(timingKnobs().includes('itlMs'));
});

test('resolveKnobs: flags win over env, schema violations name their source', () => {
  const k = resolveKnobs(new Map([['itlMs', '4']]), { PD_SIM_ITL_MS: '8', PD_SIM_SEED: '3' }, false);
  assert.equal(k.itlMs, 4);
  assert.equal(k.seed, 3);
  assert.throws(() => resolveKnobs(new Map(), { PD_SIM_ERROR_RATE: '2' }, false), (e: Error) => e instanceof KnobError && /environment PD_SIM_ERROR_RATE: invalid value '2'/.test(e.message));
  assert.throws(() => resolveKnobs(new Map([['seed', '1.5']]), {}, false), /argument --sim-seed: invalid value '1\.5'/);
  assert.throws(() => resolveKnobs(new Map([['logRequests', 'maybe']]), {}, false), /--sim-log-requests: invalid value 'maybe' \(expected boolean\)/);
  const z = resolveKnobs(new Map([['itlMs', '2']]), { PD_SIM_PREFILL_BASE_MS: '5' }, true);
  assert.deepEqual([z.itlMs, z.prefillBaseMs, z.prefillMsPerToken, z.startupDelay], [2, 5, 0, 0]);
});
