// Instrumenting QuickJS and sqlite3 in Node with the package (js/pkg), against
// the native CLI and binaryen.js (npm `binaryen`, from scripts/js-interop), in
// one run; then the package's size against binaryen.js's. Prints markdown.
//
// Usage: node js/bench.mjs [--runs N] [MODULE.wasm...]
//   default modules: /work/shared/corpus/{quickjs,sqlite3}.wasm (or
//   $ASYNCIFY_CORPUS/...). Needs js/pkg (js/build.sh), target/release/asyncify
//   (cargo build --release -p asyncify-cli) and /usr/bin/time (GNU) for peak RSS.
//
// Every measurement is a child process: wall time from spawn to exit (the
// parent's clock) and peak RSS (GNU time's %M). Inside the Node children the
// time of each step is taken too: loading the tool (reading and compiling the
// .wasm, or importing binaryen.js), the first call, the next calls.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const binaryenJs = path.join(repo, 'scripts/js-interop/node_modules/binaryen/index.js');

// ---- children: one tool, one module, JSON on stdout ----------------------

if (process.argv[2] === '--child') {
  const [, , , tool, file, runs] = process.argv;
  const input = readFileSync(file);
  const t0 = performance.now();
  const result = { tool };
  if (tool === 'package') {
    const pkg = await import(pathToFileURL(path.join(here, 'pkg/asyncify.node.mjs')).href);
    await pkg.init();
    const t1 = performance.now();
    const first = pkg.instrument(input);
    const t2 = performance.now();
    const next = [];
    for (let i = 0; i < Number(runs); i++) {
      const s = performance.now();
      pkg.instrument(input);
      next.push(performance.now() - s);
    }
    Object.assign(result, { load: t1 - t0, first: t2 - t1, next: median(next), bytes: first.length, digest: digest(first) });
  } else {
    const { default: binaryen } = await import(pathToFileURL(binaryenJs).href);
    const t1 = performance.now();
    if (tool === 'binaryen-O0') {
      // What `wasm-opt --asyncify` does: no optimisation around the pass.
      binaryen.setOptimizeLevel(0);
      binaryen.setShrinkLevel(0);
    }
    const module = binaryen.readBinary(input);
    module.setFeatures(binaryen.Features.All);
    module.runPasses(['asyncify']);
    const out = module.emitBinary();
    module.dispose();
    Object.assign(result, { load: t1 - t0, first: performance.now() - t1, bytes: out.length });
  }
  process.stdout.write(JSON.stringify(result));
  process.exit(0);
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[(s.length - 1) >> 1] : NaN;
}

function digest(bytes) {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return `${bytes.length}:${h.toString(16)}`;
}

// ---- the parent ------------------------------------------------------------

const args = process.argv.slice(2);
let runs = 3;
const runsAt = args.indexOf('--runs');
if (runsAt >= 0) runs = Number(args.splice(runsAt, 2)[1]);
const corpus = process.env.ASYNCIFY_CORPUS ?? '/work/shared/corpus';
const modules = args.length ? args : ['quickjs.wasm', 'sqlite3.wasm'].map((m) => path.join(corpus, m));
const cli = path.join(repo, 'target/release/asyncify');
for (const [what, file] of [['the package (js/build.sh)', path.join(here, 'pkg/asyncify.wasm')],
  ['target/release/asyncify (cargo build --release -p asyncify-cli)', cli],
  ['binaryen.js (npm ci in scripts/js-interop)', binaryenJs], ['GNU time', '/usr/bin/time']]) {
  if (!existsSync(file)) {
    console.error(`bench.mjs: missing ${what}: ${file}`);
    process.exit(2);
  }
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'asyncify-js-bench-'));

/** Runs a command under GNU time: wall ms (parent clock), peak RSS in MB, stdout. */
function measure(cmd, cmdArgs) {
  const rss = path.join(tmp, 'rss');
  const start = performance.now();
  const r = spawnSync('/usr/bin/time', ['-o', rss, '-f', '%M', cmd, ...cmdArgs], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  const wall = performance.now() - start;
  if (r.status !== 0) throw new Error(`${cmd} ${cmdArgs.join(' ')} failed: ${r.stderr}`);
  const kb = Number(readFileSync(rss, 'utf8').trim().split('\n').pop());
  return { wall, rss: kb / 1024, stdout: r.stdout };
}

const ms = (x) => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(0)} ms`);
const mb = (x) => `${x.toFixed(0)} MB`;
const ratio = (a, b) => `${(a / b).toFixed(a / b >= 10 ? 0 : 1)}x`;
const kib = (n) => `${(n / 1024).toFixed(0)} KiB`;

const started = new Date();
const nodeBase = median(Array.from({ length: 3 }, () => measure(process.execPath, ['-e', '0']).rss));
const rows = [];
for (const file of modules) {
  const name = path.basename(file);
  const out = path.join(tmp, `${name}.cli.wasm`);
  const native = Array.from({ length: Math.max(runs, 3) }, () => measure(cli, ['instrument', file, '-o', out]));
  const cliBytes = readFileSync(out);
  const nat = { wall: median(native.map((m) => m.wall)), rss: median(native.map((m) => m.rss)) };
  const child = (tool, calls = 0) => {
    const m = measure(process.execPath, [fileURLToPath(import.meta.url), '--child', tool, file, String(calls)]);
    return { ...m, ...JSON.parse(m.stdout) };
  };
  // One call per process, as the CLI and binaryen.js make; then a process
  // that keeps calling, for the time of a call once V8 has tiered up.
  const pkg = child('package', 0);
  const warm = child('package', runs);
  pkg.next = warm.next;
  const identical = pkg.digest === digest(cliBytes) && warm.digest === pkg.digest;
  const bDefault = child('binaryen');
  const bO0 = child('binaryen-O0');
  rows.push({ name, input: statSync(file).size, nat, cliBytes: cliBytes.length, pkg, identical, bDefault, bO0 });
  console.error(`bench.mjs: ${name} done`);
}
rmSync(tmp, { recursive: true, force: true });

// Sizes: what a page downloads. The package: the .wasm and one entry point;
// binaryen.js: its one file (the wasm is inside, base64).
const pkgFiles = ['asyncify.wasm', 'asyncify.mjs'].map((f) => path.join(here, 'pkg', f));
const size = (files) => {
  const raw = files.reduce((n, f) => n + statSync(f).size, 0);
  const gz = files.reduce((n, f) => n + gzipSync(readFileSync(f), { level: 9 }).length, 0);
  return { raw, gz };
};
const ours = size(pkgFiles);
const theirs = size([binaryenJs]);
const binaryenVersion = JSON.parse(readFileSync(path.join(path.dirname(binaryenJs), 'package.json'), 'utf8')).version;

const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
console.log(`Measured by \`node js/bench.mjs${runs !== 3 ? ` --runs ${runs}` : ''}\` on ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC` +
  ` (Node ${process.versions.node}, binaryen.js ${binaryenVersion}, ${os.cpus().length} cores, load average at the end ${load}).` +
  ` Each cell is a child process: wall time from spawn to exit and peak RSS (GNU time);` +
  ` the CLI's are medians of ${Math.max(runs, 3)} runs. A Node process that does nothing peaks at ${mb(nodeBase)}.`);
console.log('');
console.log('| module | native CLI: process | package in Node: process | of which loading and compiling the .wasm | of which the call | a later call in the same process | binaryen.js, default levels (2, 1): process (of which the call) | binaryen.js, levels 0 as `wasm-opt --asyncify`: process (of which the call) | package ÷ CLI (process) | binaryen.js ÷ package (process; call) |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  const b = (x) => `${ms(x.wall)}, ${mb(x.rss)} (${ms(x.first)}), ${x.bytes.toLocaleString('en')} B`;
  const span = (lo, hi) => (lo === hi ? lo : `${lo} to ${hi}`);
  console.log(`| ${r.name} (${r.input.toLocaleString('en')} B) | ${ms(r.nat.wall)}, ${mb(r.nat.rss)}, ${r.cliBytes.toLocaleString('en')} B |` +
    ` ${ms(r.pkg.wall)}, ${mb(r.pkg.rss)}, ${r.pkg.bytes.toLocaleString('en')} B${r.identical ? ' (identical to the CLI\'s)' : ' (**differs from the CLI\'s**)'} |` +
    ` ${ms(r.pkg.load)} | ${ms(r.pkg.first)} | ${ms(r.pkg.next)} (median of ${runs}) | ${b(r.bDefault)} | ${b(r.bO0)} |` +
    ` ${ratio(r.pkg.wall, r.nat.wall)} |` +
    ` ${span(ratio(r.bO0.wall, r.pkg.wall), ratio(r.bDefault.wall, r.pkg.wall))}; ${span(ratio(r.bO0.first, r.pkg.first), ratio(r.bDefault.first, r.pkg.first))} |`);
}
console.log('');
console.log('| download | raw | gzip -9 |');
console.log('|---|---:|---:|');
console.log(`| this package: \`pkg/asyncify.wasm\` + \`pkg/asyncify.mjs\` | ${kib(ours.raw)} | ${kib(ours.gz)} |`);
console.log(`| binaryen.js ${binaryenVersion}: \`index.js\` (wasm inlined) | ${kib(theirs.raw)} | ${kib(theirs.gz)} |`);
console.log(`| ratio | ${ratio(theirs.raw, ours.raw)} smaller | ${ratio(theirs.gz, ours.gz)} smaller |`);
process.exit(rows.every((r) => r.identical) ? 0 : 1);
