/**
 * The house's import rules, written down once (docs/architecture.md explains them). Data flows one
 * way — command → settings → request → pipeline → images + metadata — and each room may import only
 * the rooms below it. test/architecture.test.ts runs this on every `npm test`.
 */
const BASE = ['^src/errors\\.ts$', '^src/version\\.ts$', '^src/input-file\\.ts$', '^src/round-half-even\\.ts$', '^src/fmaf\\.ts$', '^src/numpy-sum\\.ts$'];

/** Each room and the rooms it may import (besides itself and the base files). */
const ROOMS = {
  rng: ['schedulers'],
  schedulers: [],
  image: [],
  onnx: [],
  text: ['onnx'],
  models: ['onnx'],
  graphs: ['onnx', 'text'],
  pipeline: ['rng', 'schedulers', 'image', 'onnx', 'text', 'models', 'graphs'],
  settings: ['rng', 'schedulers', 'image', 'onnx', 'text', 'models', 'graphs', 'pipeline'],
  train: ['rng', 'schedulers', 'image', 'onnx', 'text', 'models', 'graphs', 'pipeline'],
  build: ['rng', 'schedulers', 'image', 'onnx', 'text', 'models', 'graphs', 'pipeline', 'settings'],
  commands: ['rng', 'schedulers', 'image', 'onnx', 'text', 'models', 'graphs', 'pipeline', 'settings', 'train', 'build'],
};

const roomRules = Object.entries(ROOMS).map(([room, allowed]) => ({
  name: `room-${room}`,
  comment: `src/${room}/ may import only ${allowed.length ? allowed.map((r) => `src/${r}/`).join(', ') : 'itself'} (and src/errors.ts, src/version.ts)`,
  severity: 'error',
  from: { path: `^src/${room}/` },
  to: { path: '^src/', pathNot: [`^src/${room}/`, ...allowed.map((r) => `^src/${r}/`), ...BASE] },
}));

module.exports = {
  forbidden: [
    { name: 'no-circular', comment: 'no import cycles', severity: 'error', from: { path: '^src/' }, to: { circular: true } },
    ...roomRules,
    {
      name: 'base-imports-nothing',
      comment: 'src/errors.ts, src/version.ts, src/input-file.ts, src/round-half-even.ts and src/fmaf.ts are the floor',
      severity: 'error',
      from: { path: BASE },
      to: { path: '^src/', pathNot: BASE },
    },
    {
      name: 'cli-only-on-top',
      comment: 'src/cli.ts is the top: nothing imports it',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^src/cli\\.ts$' },
    },
    {
      name: 'terminal-libraries-in-commands',
      comment: 'commander, chalk and cli-progress belong to the command layer',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/commands/', '^src/cli\\.ts$'] },
      to: { path: 'node_modules/(commander|chalk|cli-progress)/' },
    },
    {
      name: 'schedulers-are-pure',
      comment: 'samplers and schedules run without ONNX Runtime',
      severity: 'error',
      from: { path: '^src/(schedulers|rng)/' },
      to: { path: 'node_modules/' },
    },
  ],
  options: {
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|test|bench)/' },
  },
};
