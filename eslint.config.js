// ESLint flat config: typescript-eslint's recommended rules with type information, plus pd's layering rule.
//
// src/ is split by capability and imports only point down:
//   cli → bench → cache → stack → proxy → config → util
// and the simulator (sim/) stands alone like the vLLM it imitates: it imports nothing of pd's, and only the CLI
// (`pd sim`) imports it. Each layer below lists the folders it may not import.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

const LAYERS = ['util', 'config', 'proxy', 'stack', 'cache', 'bench', 'cli'];

/** Import patterns a file in `layer` may not use: every higher layer, and sim/. */
function forbiddenFor(layer) {
  const above = LAYERS.slice(LAYERS.indexOf(layer) + 1);
  const folders = layer === 'cli' ? [] : [...above, 'sim'];
  return folders.map((f) => ({
    group: [`**/${f}/*`, `**/${f}/**`, `../${f}`, `../../${f}`],
    message: `src/${layer}/ may not import src/${f}/ (imports point down: ${LAYERS.slice().reverse().join(' → ')}; sim stands alone).`,
  }));
}

const layerRules = LAYERS.map((layer) => ({
  files: [`src/${layer}/**/*.ts`],
  rules: { 'no-restricted-imports': ['error', { patterns: forbiddenFor(layer) }] },
}));

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test/perf/proxy/*.py', 'test/bench/fixtures-report/**/*.html'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['*.js', 'test/*.mjs', 'src/*.mjs'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Unused names are mistakes, except the deliberate `_` ones.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // A promise nobody awaits hides failures; `void p` states that it is fire-and-forget on purpose.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
    },
  },
  ...layerRules,
  {
    files: ['src/sim/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: LAYERS.map((f) => ({
            group: [`**/${f}/*`, `**/${f}/**`, `../${f}`],
            message: `the simulator stands alone like the vLLM it imitates: src/sim/ may not import src/${f}/.`,
          })),
        },
      ],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // node:test runs the promise that test()/describe() return; awaiting them would serialise the file.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }] },
      ],
      // Tests read untyped JSON (HTTP bodies, state files, result files) and assert on its fields directly.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { globals: globals.node },
  },
);
