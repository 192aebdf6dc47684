/**
 * `pd bench` (a sprint from config), `pd bench run` (one run or a sweep), `pd bench compare`, `pd bench report`,
 * `pd bench sheet`, `pd bench search`, `pd bench matrix`. Thin: each verb parses its flags, calls src/bench/ and prints (see ./bench/).
 */
import type { Command } from 'commander';
import { registerSprint } from './bench/sprint.js';
import { registerRun } from './bench/run.js';
import { registerResults } from './bench/results.js';
import { registerSearch } from './bench/search.js';
import { registerMatrix } from './bench/matrix.js';

export function register(program: Command): void {
  const bench = registerSprint(program);
  registerRun(bench);
  registerSearch(bench);
  registerMatrix(bench);
  registerResults(bench);
}
