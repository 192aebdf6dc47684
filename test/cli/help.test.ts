import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Command } from 'commander';
import { buildProgram, VERBS } from '../../src/cli/program.js';
import { runPdInProcess } from './in-process.js';

/** The flags of every option line of a help text (`  -n, --lines <n>  description` → -n, --lines). */
function helpFlags(help: string): string[] {
  const flags: string[] = [];
  for (const line of help.split('\n')) {
    const term = /^ {2}(-[^ ].*?)(?: {2,}|$)/.exec(line)?.[1];
    if (term === undefined) continue;
    for (const part of term.split(', ')) flags.push(part.split(' ')[0]!);
  }
  return flags;
}

function commandsOf(cmd: Command, path: string[] = []): Array<{ path: string[]; cmd: Command }> {
  return cmd.commands.flatMap((c) => [{ path: [...path, c.name()], cmd: c }, ...commandsOf(c, [...path, c.name()])]);
}

test('every verb and sub-verb lists each option once in its help', async () => {
  const program = await buildProgram();
  const all = commandsOf(program);
  assert.ok(all.length >= Object.keys(VERBS).length, 'every verb is registered');
  for (const { path, cmd } of all) {
    const flags = helpFlags(cmd.helpInformation());
    assert.ok(flags.includes('--help') && flags.includes('--config'), `pd ${path.join(' ')} --help lists its options and the global ones`);
    const twice = flags.filter((f, i) => flags.indexOf(f) !== i);
    assert.deepEqual(twice, [], `pd ${path.join(' ')} --help lists ${twice.join(', ')} more than once`);
  }
});

test('the printed help of a sub-verb that re-declares its parent\'s options shows each once', async () => {
  const r = await runPdInProcess(['bench', 'run', '--help']);
  assert.equal(r.code, 0, r.stderr);
  const flags = helpFlags(r.stdout);
  assert.ok(flags.includes('--json') && flags.includes('--rate') && flags.includes('--config') && flags.includes('--verbose'));
  // `pd bench`'s own sprint flags do not apply to `pd bench run` and are not listed as if they did.
  assert.ok(!flags.includes('--no-sheet'), 'pd bench run --help lists the sprint\'s --no-sheet');
  assert.deepEqual(flags.filter((f, i) => flags.indexOf(f) !== i), []);
});
