// Differential check: each module in modules/*.wat runs twice,
//   (a) the original .wasm under plain WebAssembly, imports answering at once;
//   (b) the instrumented .async.wasm under the asyncify-wasm runtime, the
//       async imports answering with Promises (setTimeout, microtask, or an
//       already-resolved Promise, in turn);
// and the results, the sequence of import calls and the module's memory
// (above the runtime's area) must be identical.
//
// Usage: node check.mjs BUILD_DIR [NAME...]
//   BUILD_DIR holds NAME.wasm (original) and NAME.async.wasm (instrumented).
import { readFile, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as Asyncify from 'asyncify-wasm';

const here = path.dirname(fileURLToPath(import.meta.url));

// The runtime's conventions (asyncify-wasm 1.2.1, dist/asyncify.mjs): the
// unwind/rewind header lives at address 16, and `init` writes [24, 1024]
// there, i.e. a 1000-byte buffer from 24 to 1024. It never rewrites it, so
// after every complete call the header must read [24, 1024] again.
const HEADER_ADDR = 16;
const BUF_START = 24;
const BUF_END = 1024;
// Our modules keep their own data at 2048 and above; memory below that is the
// runtime's and is not compared.
const MODULE_DATA_START = 2048;
const CALL_TIMEOUT_MS = 20000;
// How many findings to print per module (CHECK_MAX_PROBLEMS=50 to see more).
const MAX_PROBLEMS = Number(process.env.CHECK_MAX_PROBLEMS ?? 5);

// A small deterministic mixer so import results depend on the arguments and
// on how many calls came before: a repeated or skipped import call changes
// every later value.
function mix(n, ...args) {
  let h = (n * 2654435761) >>> 0;
  for (const a of args) h = (Math.imul(h ^ (a | 0), 0x9e3779b1) + 0x7f4a7c15) >>> 0;
  return (h % 997) + 1; // 1..997: never 0 (loops in the modules rely on it)
}

// Each case: imports (name -> { async, fn(n, ...args) }, n = index of this
// call among all import calls of the run), an optional imported memory, and
// the export calls to make, in order.
const cases = {
  loop_sum: {
    imports: {
      'env.next_value': { async: true, fn: (n, i) => mix(n, i) },
    },
    calls: [['sum', 0], ['sum', 1], ['sum', 5], ['sum', 300], ['sum_in_memory', 260]],
  },
  recursion: {
    imports: {
      'env.wait_for': { async: true, fn: (n, x) => mix(n, x) + x },
    },
    calls: [['run', 0], ['run', 1], ['run', 6], ['even', 7], ['even', 10], ['run', 3]],
  },
  stack_values: {
    imports: {
      'env.get': { async: true, fn: (n, x) => mix(n, x) },
    },
    calls: [
      ['left_operand', 9], ['call_args', 4], ['raw_stack', 11],
      ['select', 3], ['select', 8], ['under_block', 2000],
    ],
  },
  f64: {
    imports: {
      'env.measure': { async: true, fn: (n, x) => Math.sin(x + n) * 10 + 0.5 },
    },
    calls: [
      ['weighted', 1.25, 0], ['weighted', 1.25, 40], ['weighted', -0.375, 7],
      ['on_stack', 2.0], ['on_stack', 1e10], ['as_f32', 3.5],
    ],
  },
  indirect: {
    imports: {
      'env.fetch': { async: true, fn: (n, x) => mix(n, x) },
    },
    calls: [
      ['dispatch', 0, 10], ['dispatch', 1, 10], ['dispatch', 2, 10],
      ['dispatch', 3, 10], ['dispatch', 3, 11], ['dispatch', 3, 12], ['all', 20],
    ],
  },
  mixed: {
    imports: {
      'env.log': { async: false, fn: () => undefined },
      'env.combine': { async: false, fn: (n, a, b) => (Math.imul(a, 31) + b) | 0 },
      'env.sleep_value': { async: true, fn: (n, x) => mix(n, x) },
    },
    calls: [['run', 0], ['run', 4], ['steps'], ['run', 25], ['steps']],
  },
  sequence: {
    imports: {
      'env.tick': { async: true, fn: (n, x) => mix(n, x) },
    },
    calls: [
      ['bump', 1], ['bump', 2], ['bump', 3], ['total'], ['bump', 4], ['bump', 5],
      ['choose', 1, 7], ['choose', 0, 7], ['choose', 1, 0], ['total'],
    ],
  },
  imported_memory: {
    memory: { initial: 1 },
    imports: {
      'env.sleep': { async: true, fn: () => undefined },
      'env.value': { async: true, fn: (n, x) => mix(n, x) * 1000003 },
    },
    calls: [['fill', 0], ['fill', 3], ['fill', 120]],
  },
  exceptions: {
    imports: {
      'env.fetch': { async: true, fn: (n, x) => mix(n, x) },
    },
    calls: [
      ['legacy', 2], ['legacy', 3], ['delegated', 4], ['delegated', 5],
      ['legacy', 9],
    ],
  },
  catch_handlers: {
    imports: {
      'env.fetch': { async: true, fn: (n, x) => mix(n, x) },
    },
    calls: [
      ['payload_in_local', 2], ['payload_in_local', 3], ['payload_on_stack', 11],
      ['catch_all', 4], ['catch_all', 5], ['catch_all', 6], ['rethrow', 1],
      ['nested', 2], ['nested', 7], ['loop', 0], ['loop', 5], ['pair', 8],
      ['only_in_handler', 2], ['only_in_handler', 3], ['payload_in_local', 5],
    ],
  },
  handler_liveness: {
    imports: {
      'env.fetch': { async: true, fn: (n, x) => mix(n, x) },
    },
    calls: [
      ['run', 1], ['run', 2], ['in_catch', 3], ['in_catch', 4], ['in_loop', 5],
      ['delegated', 7], ['delegated', 8], ['nested', 9], ['nested', 10], ['run', 5],
    ],
  },
  landing_pads: {
    imports: {
      'env.fetch': { async: true, fn: (n, x) => mix(n, x) },
      'env.boom': {
        async: false,
        fn: (n, x) => {
          if (x & 1) throw new Error(`boom ${x}`);
        },
      },
    },
    calls: [
      ['caller', 2], ['caller', 3], ['caller', 5], ['nested_pads', 1], ['nested_pads', 2],
      ['beside_catch', 4, 0], ['beside_catch', 4, 1], ['beside_catch', 6, 2],
      ['escapes', 8], ['host_exception', 3, 0], ['host_exception', 4, 1], ['caller', 9],
    ],
  },
  tail_calls: {
    imports: {
      'env.fetch': { async: true, fn: (n, x) => mix(n, x) },
    },
    calls: [
      ['chain', 3], ['to_import', 4], ['in_try', 5], ['indirect', 6, 0],
      ['indirect', 7, 1], ['indirect', 8, 2], ['chain', 10],
    ],
  },
};

// Values compared with Object.is semantics (NaN equals NaN, 0 differs from -0).
function show(v) {
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (v === undefined) return 'undefined';
  if (v && typeof v === 'object' && 'error' in v) return `error(${v.error})`;
  return JSON.stringify(v);
}
const same = (a, b) => show(a) === show(b);

// How a call failed: a trap, a wasm exception escaping to JS, or a JS error
// (thrown by an import and passed through the module).
// A wasm exception of a tag the module exports shows the tag and payload.
function failure(e, exports = {}) {
  if (e instanceof WebAssembly.RuntimeError) return { error: `trap: ${e.message}` };
  if (e instanceof WebAssembly.Exception) {
    for (const [name, tag] of Object.entries(exports)) {
      if (!(tag instanceof WebAssembly.Tag) || !e.is(tag)) continue;
      const args = [];
      for (let i = 0; i < 8; i++) {
        try { args.push(show(e.getArg(tag, i))); } catch { break; }
      }
      return { error: `wasm exception ${name}(${args.join(',')})` };
    }
    return { error: 'wasm exception' };
  }
  return { error: `js: ${String(e.message ?? e)}` };
}

function delayed(value, k) {
  switch (k % 3) {
    case 0: return new Promise((resolve) => setTimeout(() => resolve(value), 0));
    case 1: return Promise.resolve().then(() => value);
    default: return Promise.resolve(value);
  }
}

function withTimeout(p, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), CALL_TIMEOUT_MS);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

// Builds the import object for one run. `log` receives every call that
// reaches our import functions (the runtime answers rewinds itself, so these
// are the module's real calls).
function makeImports(spec, asyncMode, log, stats) {
  const imports = {};
  let n = 0;
  for (const [full, imp] of Object.entries(spec.imports)) {
    const [mod, name] = full.split('.');
    imports[mod] ??= {};
    imports[mod][name] = (...args) => {
      const value = imp.fn(n++, ...args);
      log.push(`${full}(${args.map(show).join(',')})=${show(value)}`);
      if (asyncMode && imp.async) {
        stats.promises++;
        return delayed(value, stats.promises);
      }
      return value;
    };
  }
  let memory;
  if (spec.memory) {
    memory = new WebAssembly.Memory(spec.memory);
    imports.env ??= {};
    imports.env.memory = memory;
  }
  return { imports, memory };
}

async function runPlain(spec, bytes) {
  const log = [];
  const stats = { promises: 0 };
  const { imports, memory } = makeImports(spec, false, log, stats);
  const { instance } = await WebAssembly.instantiate(bytes, imports);
  const results = [];
  for (const [name, ...args] of spec.calls) {
    try {
      results.push(instance.exports[name](...args));
    } catch (e) {
      results.push(failure(e, instance.exports));
    }
  }
  const mem = memory ?? instance.exports.memory;
  return { results, log, memory: new Uint8Array(mem.buffer).slice(MODULE_DATA_START), problems: [] };
}

async function runAsync(spec, bytes) {
  const log = [];
  const stats = { promises: 0 };
  const problems = [];
  const { imports, memory } = makeImports(spec, true, log, stats);
  const { instance } = await Asyncify.instantiate(bytes, imports);
  const ex = instance.exports;
  for (const f of ['asyncify_get_state', 'asyncify_start_unwind', 'asyncify_stop_unwind',
    'asyncify_start_rewind', 'asyncify_stop_rewind']) {
    if (typeof ex[f] !== 'function') problems.push(`missing export ${f}`);
  }
  const mem = memory ?? ex.memory;
  const results = [];
  for (const [name, ...args] of spec.calls) {
    const what = `${name}(${args.map(show).join(',')})`;
    try {
      results.push(await withTimeout(ex[name](...args), what));
    } catch (e) {
      results.push(failure(e, ex));
    }
    // After a complete call the state is normal and `cur` is back where the
    // runtime put it: otherwise each call would leak buffer space.
    if (typeof ex.asyncify_get_state === 'function' && ex.asyncify_get_state() !== 0) {
      problems.push(`state ${ex.asyncify_get_state()} after ${what}`);
    }
    const [cur, end] = new Int32Array(mem.buffer, HEADER_ADDR, 2);
    if (cur !== BUF_START || end !== BUF_END) {
      problems.push(`header [${cur}, ${end}] after ${what}, expected [${BUF_START}, ${BUF_END}]`);
    }
  }
  return {
    results, log, memory: new Uint8Array(mem.buffer).slice(MODULE_DATA_START),
    problems, promises: stats.promises,
  };
}

function firstDiff(a, b) {
  const len = Math.max(a.length, b.length);
  for (let i = 0; i < len; i++) if (a[i] !== b[i]) return i;
  return -1;
}

async function checkOne(dir, name) {
  const spec = cases[name];
  if (!spec) return { ok: false, detail: 'no test case in check.mjs for this module' };
  const orig = path.join(dir, `${name}.wasm`);
  const inst = path.join(dir, `${name}.async.wasm`);
  if (!existsSync(orig)) return { ok: false, detail: `missing ${orig}` };
  if (!existsSync(inst)) return { ok: false, detail: `missing ${inst} (instrumentation failed?)` };

  const plain = await runPlain(spec, await readFile(orig));
  let async_;
  try {
    async_ = await runAsync(spec, await readFile(inst));
  } catch (e) {
    return { ok: false, detail: `instrumented module failed to instantiate: ${e.message ?? e}` };
  }
  const problems = [];
  plain.results.forEach((r, i) => {
    if (r && typeof r === 'object' && 'error' in r && r.error.startsWith('trap:')) {
      problems.push(`original module trapped in ${spec.calls[i][0]}: ${r.error} (bad test case)`);
    }
    if (!same(r, async_.results[i])) {
      problems.push(`call ${i} ${spec.calls[i][0]}(${spec.calls[i].slice(1).join(',')}): ` +
        `expected ${show(r)}, got ${show(async_.results[i])}`);
    }
  });
  const d = firstDiff(plain.log, async_.log);
  if (d >= 0) {
    problems.push(`import calls differ at #${d} (of ${plain.log.length} vs ${async_.log.length}): ` +
      `expected ${plain.log[d] ?? '(none)'}, got ${async_.log[d] ?? '(none)'}`);
  }
  const m = plain.memory.findIndex((byte, i) => byte !== async_.memory[i]);
  if (m >= 0 || plain.memory.length !== async_.memory.length) {
    problems.push(`memory differs at address ${MODULE_DATA_START + Math.max(m, 0)}`);
  }
  // The runtime-state findings come last: a wrong result is the better lead.
  problems.push(...async_.problems);
  if (async_.promises === 0) problems.push('no import returned a Promise: nothing was checked');
  return {
    ok: problems.length === 0,
    detail: problems.length
      ? problems.slice(0, MAX_PROBLEMS).join('; ') +
        (problems.length > MAX_PROBLEMS ? `; (+${problems.length - MAX_PROBLEMS} more)` : '')
      : `${spec.calls.length} calls, ${plain.log.length} import calls, ${async_.promises} suspensions`,
  };
}

async function main() {
  const [dir, ...only] = process.argv.slice(2);
  if (!dir) {
    console.error('usage: node check.mjs BUILD_DIR [NAME...]');
    process.exit(2);
  }
  const names = only.length
    ? only
    : (await readdir(path.join(here, 'modules')))
        .filter((f) => f.endsWith('.wat'))
        .map((f) => f.slice(0, -4))
        .sort();
  let passed = 0;
  let failed = 0;
  for (const name of names) {
    let r;
    try {
      r = await checkOne(dir, name);
    } catch (e) {
      r = { ok: false, detail: `checker error: ${e.stack ?? e}` };
    }
    if (r.ok) passed++; else failed++;
    console.log(`${r.ok ? 'PASS' : 'FAIL'} ${name}: ${r.detail}`);
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

await main();
