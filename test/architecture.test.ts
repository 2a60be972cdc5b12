import { createRequire } from 'node:module';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cruise, type ICruiseOptions, type IReporterOutput } from 'dependency-cruiser';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';
import { ROOT } from './helpers/cli.js';

/**
 * The import rules of docs/architecture.md, checked by dependency-cruiser on the TypeScript sources
 * (type-only imports included): no cycles, each room importing only the rooms below it, terminal
 * libraries only in the command layer, samplers free of ONNX Runtime.
 */
test('no import cycle and no import from a lower room to a higher one', async () => {
  process.chdir(ROOT);
  const config = createRequire(import.meta.url)(`${ROOT}.dependency-cruiser.cjs`) as { forbidden: unknown[]; options: ICruiseOptions };
  const result: IReporterOutput = await cruise(['src'], { ...config.options, validate: true, ruleSet: { forbidden: config.forbidden } } as ICruiseOptions, undefined, {
    tsConfig: extractTSConfig(`${ROOT}tsconfig.json`),
  });
  const output = result.output as Exclude<IReporterOutput['output'], string>;
  const violations = output.summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}${v.cycle ? ` (cycle ${v.cycle.map((c) => c.name).join(' -> ')})` : ''}`);
  assert.equal(violations, []);
  assert.ok(output.summary.totalCruised > 100, `cruised only ${output.summary.totalCruised} modules`);
});

test.run();
