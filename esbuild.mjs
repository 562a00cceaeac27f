// Bundles the extension (extension/src/extension.ts → out/extension.js, `vscode` external) and,
// with --tests, the unit tests (extension/test/unit/*.test.ts → out/test/*.test.js for node --test).
import { readdirSync } from 'node:fs';
import * as esbuild from 'esbuild';

const tests = process.argv.includes('--tests');
const watch = process.argv.includes('--watch');
const production = !watch && !tests;

const common = { bundle: true, platform: 'node', target: 'node20', format: 'cjs', logLevel: 'warning' };

const options = tests
  ? {
      ...common,
      entryPoints: readdirSync('extension/test/unit')
        .filter((f) => f.endsWith('.test.ts'))
        .map((f) => `extension/test/unit/${f}`),
      outdir: 'out/test',
      sourcemap: 'inline',
      // The unit tests cover the modules that do not import vscode; fail loudly if one does.
      external: [],
    }
  : {
      ...common,
      entryPoints: ['extension/src/extension.ts'],
      outfile: 'out/extension.js',
      external: ['vscode'],
      minify: production,
      sourcemap: production ? false : 'linked',
      metafile: true,
    };

if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
  console.log('esbuild: watching');
} else {
  const result = await esbuild.build(options);
  if (result.metafile) {
    const out = result.metafile.outputs['out/extension.js'];
    console.log(`esbuild: out/extension.js ${(out.bytes / 1024).toFixed(0)} KiB`);
  } else {
    console.log(`esbuild: ${options.entryPoints.length} test bundles in out/test/`);
  }
}
