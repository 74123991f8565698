// Writes the three entry points of the package into PKG from the preludes and
// core.js, and the TypeScript declarations for each. Run by js/build.sh.
//
// Usage: node assemble.mjs JS_DIR PKG
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const [jsDir, pkg] = process.argv.slice(2);
const lib = (name) => readFileSync(path.join(jsDir, 'lib', name), 'utf8');
const core = lib('core.js');
const names = ['AsyncifyError', 'init', 'initSync', 'instrument', 'inspect'];
const esm = `\nexport { ${names.join(', ')} };\n`;
const cjs = `\nmodule.exports = { ${names.join(', ')} };\n`;

writeFileSync(path.join(pkg, 'asyncify.mjs'), lib('prelude.browser.js') + '\n' + core + esm);
writeFileSync(path.join(pkg, 'asyncify.node.mjs'), lib('prelude.node.mjs.js') + '\n' + core + esm);
writeFileSync(path.join(pkg, 'asyncify.cjs'), lib('prelude.node.cjs.js') + '\n' + core + cjs);
const types = lib('asyncify.d.ts');
for (const name of ['asyncify.d.ts', 'asyncify.d.mts', 'asyncify.d.cts']) {
  writeFileSync(path.join(pkg, name), types);
}
