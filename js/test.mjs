// Node tests of the npm package in js/pkg (build it with js/build.sh first;
// js/test.sh does both):
//   1. every module of the project's corpus, instrumented by the package with
//      several option sets, is byte for byte what the `asyncify` CLI writes
//      (or fails with the CLI's message), with the same warnings; `inspect`
//      returns what `asyncify inspect --json` prints;
//   2. modules instrumented by the package run under the asyncify-wasm runtime
//      with Promise-returning imports: scripts/js-interop/check.mjs (the
//      interop modules) and cpp.mjs (corpus/cpp) run on the package's output,
//      and one module is instrumented and run in this process, as a browser
//      page would;
//   3. errors (invalid bytes or text, bad options, modules the transform
//      refuses) are thrown as AsyncifyError with the CLI's message.
//
// Usage: node js/test.mjs ASYNCIFY_BIN [FILTER]
//   ASYNCIFY_BIN: the native CLI to compare with; FILTER: only cases whose
//   name contains it.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isDeepStrictEqual } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const interop = path.join(repo, 'scripts/js-interop');
const [bin, filter = ''] = process.argv.slice(2);
if (!bin) {
  console.error('usage: node js/test.mjs ASYNCIFY_BIN [FILTER]');
  process.exit(2);
}

// The package, through its ES module and CommonJS entries.
const pkg = await import(pathToFileURL(path.join(here, 'pkg/asyncify.node.mjs')).href);
const cjs = createRequire(import.meta.url)(path.join(here, 'pkg/asyncify.cjs'));
const Asyncify = await import(
  pathToFileURL(path.join(interop, 'node_modules/asyncify-wasm/dist/asyncify.mjs')).href
);
const wat2wasm = path.join(interop, 'node_modules/.bin/wat2wasm');

const work = path.join(repo, 'target/js-test');
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

let passed = 0;
let failed = 0;
async function test(name, body) {
  if (!name.includes(filter)) return;
  try {
    const detail = await body();
    passed++;
    if (detail) console.log(`PASS ${name}: ${detail}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e?.stack ?? e}`);
  }
}
function check(condition, message) {
  if (!condition) throw new Error(message);
}
// The CLI words some failures for its command line (it names the flag to
// use, the file, the source line): the package's message, up to its first
// `;` or parenthesis and without an "invalid options: " or "the input is "
// prefix, must be in
// the CLI's.
function sameFailure(stderr, message) {
  const core = message.replace(/^(invalid options: |the input is )/, '').split(/;| \(|\n/)[0].trim();
  return core.length > 10 && stderr.includes(core);
}

// ---- the corpus -----------------------------------------------------------

const files = (dir, ext) =>
  readdirSync(path.join(repo, dir))
    .filter((f) => f.endsWith(ext))
    .sort()
    .map((f) => path.join(repo, dir, f));

// The interop modules, compiled by wabt as run.sh compiles them.
const interopDir = path.join(work, 'interop');
mkdirSync(interopDir);
const interopNames = [];
const interopImports = {};
for (const wat of files('scripts/js-interop/modules', '.wat')) {
  const name = path.basename(wat, '.wat');
  const out = path.join(interopDir, `${name}.wasm`);
  execFileSync(wat2wasm, ['--enable-all', '--debug-names', wat, '-o', out]);
  interopNames.push(name);
  interopImports[name] = /^;; asyncify-imports: *(.*)$/m.exec(readFileSync(wat, 'utf8'))[1].trim();
}

const corpus = [
  ...files('corpus', '.wasm'),
  ...files('corpus', '.wat'),
  ...files('corpus/wasi', '.wasm'),
  ...files('corpus/wasi', '.wat'),
  ...files('corpus/cpp', '.wasm'),
  path.join(repo, 'corpus/bench/compute.wasm'),
  ...interopNames.map((n) => path.join(interopDir, `${n}.wasm`)),
  ...files('scripts/js-interop/modules', '.wat'),
];

// Option sets: the package's options and the same as CLI flags.
const optionSets = [
  { name: 'default', js: {}, cli: [] },
  {
    name: 'ignore-indirect+asserts+export-globals',
    js: { ignoreIndirect: true, asserts: true, exportGlobals: true },
    cli: ['--ignore-indirect', '--asserts', '--export-globals'],
  },
  {
    name: 'exact-saves+secondary-memory=2+import-globals',
    js: { exactSaves: true, secondaryMemory: 2, importGlobals: true },
    cli: ['--exact-saves', '--secondary-memory=2', '--import-globals'],
  },
  {
    name: 'imports+remove-list+pass-args',
    js: {
      imports: ['env.*', 'wasi_snapshot_preview1.fd_*'],
      removeList: 'main, nothing_matches_this',
      passArgs: ['asyncify-addlist@helper', 'asyncify-propagate-addlist'],
    },
    cli: [
      '--imports', 'env.*,wasi_snapshot_preview1.fd_*',
      '--remove-list', 'main, nothing_matches_this',
      '--pass-arg', 'asyncify-addlist@helper', '--pass-arg', 'asyncify-propagate-addlist',
    ],
  },
];

/** Runs the CLI; returns its exit status, stderr and output bytes. */
function cli(args, outFile) {
  const r = spawnSync(bin, args, { encoding: 'buffer', maxBuffer: 1 << 28 });
  const stderr = r.stderr.toString();
  let bytes = null;
  if (r.status === 0 && outFile) bytes = readFileSync(outFile);
  return { status: r.status, stderr, stdout: r.stdout, bytes };
}

/** The package's outcome: bytes and warnings, or the error. */
function ours(fn, input, options) {
  const warnings = [];
  try {
    return { value: fn(input, { ...options, onWarning: (w) => warnings.push(w) }), warnings };
  } catch (error) {
    return { error, warnings };
  }
}

const rel = (file) => path.relative(repo, file);
let identical = 0;
let bothRefused = 0;
let outNo = 0;

for (const file of corpus) {
  const input = readFileSync(file);
  const isText = file.endsWith('.wat');
  for (const set of optionSets) {
    await test(`instrument ${rel(file)} [${set.name}]`, () => {
      const out = path.join(work, `out-${outNo++}.wasm`);
      const native = cli(['instrument', file, '-o', out, ...set.cli], out);
      // Text through the string API, binary through Uint8Array.
      const mine = ours(pkg.instrument, isText ? input.toString('utf8') : new Uint8Array(input), set.js);
      if (native.status !== 0) {
        check(mine.error, `the CLI failed (${native.stderr.trim()}) but the package did not`);
        const expected = `error: cannot instrument \`${file}\`: ${mine.error.message}`;
        check(native.stderr.trim() === expected, `messages differ:\n  CLI: ${native.stderr.trim()}\n  package: ${mine.error.message}`);
        check(mine.error.name === 'AsyncifyError', `not an AsyncifyError: ${mine.error}`);
        bothRefused++;
        return;
      }
      check(!mine.error, `the package failed: ${mine.error?.message}`);
      check(mine.value instanceof Uint8Array, 'the result is not a Uint8Array');
      check(Buffer.compare(Buffer.from(mine.value), native.bytes) === 0,
        `outputs differ: ${mine.value.length} bytes against the CLI's ${native.bytes.length}`);
      const nativeWarnings = native.stderr.split('\n')
        .filter((l) => l.startsWith('warning: ')).map((l) => l.slice('warning: '.length));
      check(isDeepStrictEqual(nativeWarnings, mine.warnings),
        `warnings differ: CLI ${JSON.stringify(nativeWarnings)}, package ${JSON.stringify(mine.warnings)}`);
      identical++;
    });
  }
  await test(`inspect ${rel(file)}`, () => {
    const native = cli(['inspect', file, '--json', '--functions', '--why', '0', '--ignore-indirect']);
    const mine = ours(pkg.inspect, input, { functions: true, why: ['0'], ignoreIndirect: true });
    if (native.status !== 0) {
      check(mine.error && native.stderr.trim() === `error: cannot inspect \`${file}\`: ${mine.error.message}`,
        `outcomes differ: CLI ${native.stderr.trim()}, package ${mine.error?.message ?? 'succeeded'}`);
      return;
    }
    check(!mine.error, `the package failed: ${mine.error?.message}`);
    const expected = JSON.stringify(JSON.parse(native.stdout.toString()));
    const got = JSON.stringify(mine.value);
    let at = 0;
    while (at < expected.length && expected[at] === got[at]) at++;
    const from = Math.max(0, at - 100);
    check(expected === got,
      `reports differ at character ${at}:\n  CLI: …${expected.slice(from, at + 200)}\n  package: …${got.slice(from, at + 200)}`);
  });
}

// ---- running under asyncify-wasm -----------------------------------------

// The interop modules, instrumented by the package with their import lists,
// checked by check.mjs against their uninstrumented selves; the C++ programs
// with the default options, checked by cpp.mjs. Each PASS line is a case.
function runChecker(script, dir, names, env = {}) {
  const r = spawnSync('node', [path.join(interop, script), dir, ...names], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 300_000,
  });
  const lines = r.stdout.split('\n').filter((l) => /^(PASS|FAIL) /.test(l));
  for (const line of lines) {
    const ok = line.startsWith('PASS ');
    const name = line.slice(5).split(':')[0];
    if (!`run ${script} ${name}`.includes(filter)) continue;
    if (ok) passed++; else failed++;
    if (!ok) console.log(`FAIL run ${script} ${line.slice(5)}`);
  }
  if (lines.length !== names.length || (r.status !== 0 && !lines.some((l) => l.startsWith('FAIL')))) {
    failed++;
    console.log(`FAIL run ${script}: exit ${r.status}, ${lines.length} results for ${names.length} modules\n${r.stderr}`);
  }
  return lines.filter((l) => l.startsWith('PASS')).length;
}

if ('run check.mjs'.includes(filter) || interopNames.some((n) => `run check.mjs ${n}`.includes(filter))) {
  for (const name of interopNames) {
    const input = readFileSync(path.join(interopDir, `${name}.wasm`));
    writeFileSync(path.join(interopDir, `${name}.async.wasm`), pkg.instrument(input, { imports: interopImports[name] }));
  }
  const n = runChecker('check.mjs', interopDir, interopNames);
  console.log(`check.mjs: ${n} of ${interopNames.length} interop modules run alike under asyncify-wasm`);
}

const cppDir = path.join(work, 'cpp');
mkdirSync(cppDir);
const cppNames = files('corpus/cpp', '.wasm').map((f) => path.basename(f, '.wasm'));
if ('run cpp.mjs'.includes(filter) || cppNames.some((n) => `run cpp.mjs ${n}`.includes(filter))) {
  for (const name of cppNames) {
    const input = readFileSync(path.join(repo, 'corpus/cpp', `${name}.wasm`));
    // Through the CommonJS entry, for once.
    writeFileSync(path.join(cppDir, `${name}.async.wasm`), cjs.instrument(input));
  }
  const n = runChecker('cpp.mjs', cppDir, cppNames, { CPP_ASYNC_IMPORTS: '' });
  console.log(`cpp.mjs: ${n} of ${cppNames.length} C++ programs run alike under asyncify-wasm`);
}

// Instrument at run time and instantiate with Promise-returning imports, as a
// page would (there with `await init()` first).
await test('run time: instrument then Asyncify.instantiate', async () => {
  const wat = `(module
    (import "env" "fetch" (func $fetch (param i32) (result i32)))
    (memory (export "memory") 1)
    (func $sum (export "sum") (param $n i32) (result i32) (local $acc i32)
      (block $done (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $acc (i32.add (local.get $acc) (call $fetch (local.get $n))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
      (local.get $acc)))`;
  await pkg.init();
  const bytes = pkg.instrument(wat, { imports: 'env.fetch' });
  let calls = 0;
  const { instance } = await Asyncify.instantiate(bytes, {
    env: {
      fetch: (x) => new Promise((resolve) => setTimeout(() => { calls++; resolve(x * 10); }, 1)),
    },
  });
  const result = await instance.exports.sum(5);
  check(result === 150 && calls === 5, `sum(5) = ${result} after ${calls} calls, expected 150 after 5`);
  return `${calls} suspensions`;
});

// The browser entry: nothing loads before init(); init() takes the bytes (a
// page would let it fetch asyncify.wasm, or pass a URL or a Response).
await test('browser entry: init(bytes) then instrument', async () => {
  const web = await import(pathToFileURL(path.join(here, 'pkg/asyncify.mjs')).href);
  let error;
  try {
    web.instrument('(module)');
  } catch (e) {
    error = e;
  }
  check(/call `await init\(\)`/.test(error?.message), `before init: ${error}`);
  await web.init(readFileSync(path.join(here, 'pkg/asyncify.wasm')));
  const demoWasm = readFileSync(path.join(repo, 'corpus/demo.wasm'));
  check(Buffer.from(web.instrument(demoWasm)).equals(Buffer.from(pkg.instrument(demoWasm))), 'outputs differ');
  await web.init(new WebAssembly.Module(readFileSync(path.join(here, 'pkg/asyncify.wasm'))));
  check(web.inspect(demoWasm).functions > 0, 'inspect after init(Module)');
});

// ---- errors ---------------------------------------------------------------

/** The package and the CLI fail alike on `input` (a file written to `work`). */
function failsAlike(name, input, jsOptions, cliFlags, kind) {
  return test(`error: ${name}`, () => {
    const file = path.join(work, `error-${name.replace(/\W+/g, '_')}.${typeof input === 'string' ? 'wat' : 'wasm'}`);
    writeFileSync(file, input);
    const native = cli(['instrument', file, '-o', path.join(work, 'never.wasm'), ...cliFlags]);
    check(native.status === 1, `the CLI exited with ${native.status}`);
    let error;
    try {
      pkg.instrument(input, jsOptions);
    } catch (e) {
      error = e;
    }
    check(error instanceof pkg.AsyncifyError, `expected an AsyncifyError, got ${error}`);
    check(error.kind === kind, `kind ${error.kind}, expected ${kind}`);
    const stderr = native.stderr.trim();
    check(stderr === `error: cannot instrument \`${file}\`: ${error.message}` || stderr === `error: ${error.message}`
      || sameFailure(stderr, error.message),
      `messages differ:\n  CLI: ${stderr}\n  package: ${error.message}`);
    return error.message;
  });
}

const demo = readFileSync(path.join(repo, 'corpus/demo.wat'), 'utf8');
await failsAlike('invalid bytes', new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0x01, 0x05, 0x01]), {}, [], 'InvalidInput');
await failsAlike('wrong version', new Uint8Array([0, 0x61, 0x73, 0x6d, 2, 0, 0, 0]), {}, [], 'InvalidInput');
await failsAlike('invalid text', '(module (func (result i32) i32.const))', {}, [], 'InvalidText');
await failsAlike('already instrumented', pkg.instrument(demo), {}, [], 'AlreadyInstrumented');
await failsAlike('non-nullable reference result', `(module
    (import "env" "f" (func $f))
    (memory 1)
    (elem declare func $g)
    (func $g (export "g") (result (ref func)) (call $f) (ref.func $g)))`, {}, [], 'Unsupported');
await failsAlike('no memory for the buffer', '(module (import "env" "f" (func $f)) (func (export "g") (call $f)))',
  {}, [], 'Options');
await failsAlike('secondary memory of 0 pages', demo, { secondaryMemory: 0 }, ['--secondary-memory=0'], 'Options');
await failsAlike('secondary memory over 65,536 pages', demo, { secondaryMemory: 65537 }, ['--secondary-memory=65537'], 'Options');
await failsAlike('only list with add list', demo, { onlyList: ['a'], addList: 'b' },
  ['--only-list', 'a', '--add-list', 'b'], 'Options');
await failsAlike('unknown pass argument', demo, { passArgs: 'asyncify-sleep' }, ['--pass-arg', 'asyncify-sleep'], 'Options');

for (const [name, options, expected] of [
  ['unknown option', { import: ['env.sleep'] }, 'invalid options: unknown option `import`; expected one of `imports`'],
  ['option of the wrong type', { asserts: 'yes' }, 'invalid options: option `asserts` must be true or false'],
  ['a function as an option', { imports: () => [] }, 'invalid options: option `imports` is a function'],
  ['options not an object', 'env.sleep', 'invalid options: the options must be an object'],
  ['an @file list', { addList: '@list.txt' }, 'invalid options: option `addList`: `@file` lists cannot be read here'],
  ['why in instrument', { why: 'main' }, 'invalid options: unknown option `why` (it is an option of inspect)'],
]) {
  await test(`error: ${name}`, () => {
    let error;
    try {
      pkg.instrument(demo, options);
    } catch (e) {
      error = e;
    }
    check(error instanceof pkg.AsyncifyError && error.kind === 'Options', `expected an Options AsyncifyError, got ${error}`);
    check(error.message.startsWith(expected), `message: ${error.message}`);
  });
}
await test('error: inspect with an unknown why name', () => {
  const file = path.join(repo, 'corpus/demo.wasm');
  const native = cli(['inspect', file, '--json', '--why', 'no_such_function']);
  let error;
  try {
    pkg.inspect(readFileSync(file), { why: 'no_such_function' });
  } catch (e) {
    error = e;
  }
  check(error?.kind === 'Why' && sameFailure(native.stderr.trim(), error.message),
    `CLI: ${native.stderr.trim()}; package: ${error?.message}`);
});
await test('error: not bytes', () => {
  let error;
  try {
    pkg.instrument(42);
  } catch (e) {
    error = e;
  }
  check(error instanceof TypeError, `expected a TypeError, got ${error}`);
});
await test('after errors the package still works', () => {
  check(Buffer.from(cjs.instrument(demo)).equals(Buffer.from(pkg.instrument(demo))), 'ESM and CJS outputs differ');
});

console.log(`corpus: ${corpus.length} modules x ${optionSets.length} option sets: ` +
  `${identical} outputs identical to the CLI's, ${bothRefused} refused by both with the same message`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
