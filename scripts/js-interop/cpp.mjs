// Differential check of the C++ programs in corpus/cpp (compiled by emscripten
// with -fwasm-exceptions, see corpus/cpp/README.md). Each program runs twice:
//   (a) the committed corpus/cpp/NAME.wasm under plain WebAssembly, every
//       import answering at once;
//   (b) NAME.async.wasm from BUILD_DIR (made by `asyncify instrument`, by
//       default with every import allowed to suspend) under the asyncify-wasm
//       runtime, EVERY import call answering with a Promise (setTimeout,
//       microtask or already resolved, in turn), so each one unwinds and
//       rewinds the stack;
// and after every export call the result (or the error that left the
// export), the program's trace (constructors, destructors, handlers: see
// corpus/cpp/common.h), the import calls it made and the shadow stack pointer
// must be the same; at the end the whole memory above the runtime's area must
// be the same.
//
// Usage: node cpp.mjs BUILD_DIR [NAME...]
//   NAME is a corpus/cpp/*.wasm file without .wasm (e.g. dtor_suspend-O2);
//   default: all of them. CPP_ASYNC_IMPORTS=env.log (a comma list) answers
//   only those imports with Promises, for modules instrumented with
//   `--imports LIST` (run.sh's ASYNCIFY_CPP_IMPORTS sets both). If BUILD_DIR/NAME.instrument.log exists (run.sh
//   writes the CLI's stderr there) its first line is shown when NAME.async.wasm
//   is missing.
import { readFile, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as Asyncify from 'asyncify-wasm';

const here = path.dirname(fileURLToPath(import.meta.url));
const corpus = path.resolve(here, '../../corpus/cpp');

// asyncify-wasm 1.2.1 (dist/asyncify.mjs) passes 16 to asyncify_start_unwind
// and asyncify_start_rewind, and `init` writes the header [24, 1024] there
// once. emscripten places the program's data at 1024 and above (GLOBAL_BASE)
// and its stack above the data, so 0..1024 is free: the plain run checks that
// the program never writes there.
const HEADER_ADDR = 16;
const BUF_START = 24;
const BUF_END = 1024;
const RUNTIME_AREA_END = 1024;
const CALL_TIMEOUT_MS = 20000;
const MAX_PROBLEMS = Number(process.env.CHECK_MAX_PROBLEMS ?? 5);
const TRACE_CAP = 1024; // corpus/cpp/common.h
// Which imports answer with a Promise in the instrumented run (null: all).
const ASYNC_IMPORTS = process.env.CPP_ASYNC_IMPORTS
  ? new Set(process.env.CPP_ASYNC_IMPORTS.split(',').map((s) => s.trim()).filter(Boolean))
  : null;

// The host's answer to env.wait: depends on the argument and on the number of
// import calls before it, so a repeated or skipped call changes every later
// value (and, through the programs' branches, where exceptions are thrown).
function mix(n, x) {
  let h = (n * 2654435761) >>> 0;
  h = (Math.imul(h ^ (x | 0), 0x9e3779b1) + 0x7f4a7c15) >>> 0;
  return (h % 997) + 1;
}

// Export calls per program (the optimisation level does not matter). The
// arguments are chosen so that each export runs both with and without an
// exception; the comments say which calls throw.
const programs = {
  unwind_frames: [
    ['run', 0, -1], ['run', 3, -1], // no exception
    ['run', 3, 0], ['run', 3, 2], ['run', 4, 4], ['run', 5, 1], // thrown at depth throw_at
    ['build', 0, 0], ['build', 1, 0], ['build', 0, 1], // second arg: second part fails
    ['cells', -1], ['cells', 0], ['cells', 3], ['cells', 5], // element fail_at fails
    ['run', 2, 2], ['run', 12, -1], ['run', 12, 6],
  ],
  catch_wait: [
    ['handle', 0], ['handle', 1], ['handle', 2], ['handle', 3], ['handle', 4], ['handle', 6],
    ['rethrow_outer', 4], ['rethrow_outer', 1], ['rethrow_outer', 2], ['rethrow_outer', 3],
    ['rethrow_outer', 5],
    ['translated', 4], ['translated', 3], ['translated', 7], ['translated', 1],
    ['nested_in_handler', 1, 1], ['nested_in_handler', 1, 2], ['nested_in_handler', 2, 3],
    ['nested_in_handler', 2, 0], ['nested_in_handler', 3, 1], ['nested_in_handler', 0, 1],
  ],
  raii_suspend: [
    ['run', 0, -1], ['run', 3, -1], ['run', 4, 2], ['run', 5, 0], ['run', 2, 5],
    ['scopes', 0], ['scopes', 4],
    ['grow', 5, -1], ['grow', 6, 3], ['grow', 0, -1], ['grow', 3, 0],
    ['run', 20, 17], ['grow', 40, -1], ['grow', 40, 33], ['scopes', 12],
  ],
  dtor_suspend: [
    ['run', 1], ['run', 2], ['run', 3], ['run', 6], ['run', 7], // x % 3 == 0 throws
    ['transact', 3, -1], ['transact', 3, 1], ['transact', 4, 0], ['transact', 0, -1],
    ['careful', 1], ['careful', 2], ['careful', 6], ['careful', 7], // x > 5 throws
    ['escape', 0], ['escape', 1], // escape(1) throws out of the module
    ['run', 9], ['transact', 10, 8], ['careful', 30],
  ],
  handlers_mix: [
    ['dispatch', 0, 5], ['dispatch', 1, 3], ['dispatch', 1, 4], ['dispatch', 2, 5],
    ['dispatch', 2, 7], ['dispatch', 4, 9],
    ['loop', 0], ['loop', 7],
    ['stages', 3, 100000], ['stages', 3, 0], ['stages', 5, 500],
    ['deferred', 5], ['deferred', 6], ['deferred', 7], ['loop', 30],
  ],
};

function programOf(name) {
  return name.replace(/-O[0-3sz]$/, '');
}

function show(v) {
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (v === undefined) return 'undefined';
  if (v && typeof v === 'object' && 'error' in v) return `error(${v.error})`;
  return JSON.stringify(v);
}

function describeError(e) {
  // A C++ exception that leaves the module: its tag is not exported, so all
  // the host can say is that it is a WebAssembly.Exception.
  if (e instanceof WebAssembly.Exception) return 'WebAssembly.Exception';
  if (e instanceof WebAssembly.RuntimeError) return `RuntimeError: ${e.message}`;
  return String(e?.message ?? e);
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
  return Promise.race([Promise.resolve(p), t]).finally(() => clearTimeout(timer));
}

// The import object for one run, built from the module's import list:
// env.wait and env.log are the program's; any other function import (the
// WASI ones emscripten may add, e.g. proc_exit for abort) records the call
// and throws.
function makeImports(module, asyncMode, log, stats) {
  const imports = {};
  let n = 0;
  for (const imp of WebAssembly.Module.imports(module)) {
    if (imp.kind !== 'function') throw new Error(`unexpected ${imp.kind} import ${imp.module}.${imp.name}`);
    const full = `${imp.module}.${imp.name}`;
    let fn;
    if (full === 'env.wait') fn = (x) => mix(n, x);
    else if (full === 'env.log') fn = () => undefined;
    else fn = null;
    imports[imp.module] ??= {};
    imports[imp.module][imp.name] = (...args) => {
      const shown = `${full}(${args.map(show).join(',')})`;
      if (!fn) {
        log.push(`${shown} threw`);
        throw new Error(`host import ${full} called`);
      }
      const value = fn(...args);
      n++;
      log.push(`${shown}=${show(value)}`);
      if (asyncMode && (!ASYNC_IMPORTS || ASYNC_IMPORTS.has(full))) {
        stats.promises++;
        return delayed(value, stats.promises);
      }
      return value;
    };
  }
  return imports;
}

function readTrace(memory, ptr) {
  const view = new Int32Array(memory.buffer, ptr, 1 + TRACE_CAP);
  const len = view[0];
  const items = Array.from(view.subarray(1, 1 + Math.min(len, TRACE_CAP)));
  view[0] = 0; // the next call starts a new trace
  return { len, items };
}

// Thrown by an afterCall hook to end a run early.
class StopRun extends Error {}

// Runs the calls; `call(name, args)` returns the export's result (awaited in
// async mode). Returns per-call records.
async function runCalls(exports, memory, calls, invoke, afterCall) {
  const records = [];
  const ptr = await invoke(exports.trace_ptr, []);
  readTrace(memory, ptr); // constructors run by _initialize, if any
  for (const [name, ...args] of calls) {
    const what = `${name}(${args.map(show).join(',')})`;
    const rec = { what };
    if (typeof exports[name] !== 'function') {
      rec.result = { error: `no export ${name}` };
    } else {
      try {
        rec.result = await invoke(exports[name], args, what);
      } catch (e) {
        rec.result = { error: describeError(e) };
      }
    }
    const t = readTrace(memory, ptr);
    rec.trace = t.items;
    rec.traceLen = t.len;
    rec.sp = await invoke(exports.stackSave, []);
    records.push(rec);
    try {
      afterCall?.(rec, what);
    } catch (e) {
      if (e instanceof StopRun) break;
      throw e;
    }
  }
  return records;
}

async function runPlain(module, calls) {
  const log = [];
  const stats = { promises: 0 };
  const instance = await WebAssembly.instantiate(module, makeImports(module, false, log, stats));
  const ex = instance.exports;
  const problems = [];
  const invoke = (f, args) => f(...args);
  if (ex._initialize) ex._initialize();
  const records = await runCalls(ex, ex.memory, calls, invoke, (rec) => {
    rec.logLen = log.length;
    const low = new Uint8Array(ex.memory.buffer, 0, RUNTIME_AREA_END);
    const w = low.findIndex((b) => b !== 0);
    if (w >= 0 && !problems.some((p) => p.startsWith('plain run wrote'))) {
      problems.push(`plain run wrote address ${w} (below ${RUNTIME_AREA_END}, the runtime's area) in ${rec.what}`);
    }
  });
  return { records, log, memory: new Uint8Array(ex.memory.buffer).slice(RUNTIME_AREA_END), problems };
}

async function runAsync(module, calls) {
  const log = [];
  const stats = { promises: 0 };
  const problems = [];
  const instance = await Asyncify.instantiate(module, makeImports(module, true, log, stats));
  const ex = instance.exports;
  for (const f of ['asyncify_get_state', 'asyncify_start_unwind', 'asyncify_stop_unwind',
    'asyncify_start_rewind', 'asyncify_stop_rewind']) {
    if (typeof ex[f] !== 'function') problems.push(`missing export ${f}`);
  }
  if (problems.length) return { records: [], log, memory: new Uint8Array(0), problems, promises: 0 };
  // The helpers (trace_ptr, stackSave) are called unwrapped: they never
  // suspend, and a wrapped call would refuse to run in a wrong state.
  const raw = Object.getOwnPropertyDescriptor(WebAssembly.Instance.prototype, 'exports').get.call(instance);
    const invoke = (f, args, what) => {
    if (f === ex.trace_ptr || f === ex.stackSave) return f === ex.trace_ptr ? raw.trace_ptr() : raw.stackSave();
    return withTimeout(f(...args), what);
  };
  if (ex._initialize) await invoke(ex._initialize, [], '_initialize');
  const records = await runCalls(ex, ex.memory, calls, invoke, (rec, what) => {
    rec.logLen = log.length;
    const state = ex.asyncify_get_state();
    if (state !== 0) {
      // Every later call would be refused by the runtime: stop here.
      problems.push(`state ${state} after ${what} (result ${show(rec.result)}); later calls not made`);
      throw new StopRun();
    }
    const [cur, end] = new Int32Array(ex.memory.buffer, HEADER_ADDR, 2);
    if (cur !== BUF_START || end !== BUF_END) {
      problems.push(`header [${cur}, ${end}] after ${what}, expected [${BUF_START}, ${BUF_END}]`);
    }
  });
  return {
    records, log, memory: new Uint8Array(ex.memory.buffer).slice(RUNTIME_AREA_END), problems,
    promises: stats.promises,
  };
}

const traceText = (t) => (t.length > 24 ? `${t.slice(0, 24).join(' ')} ...(${t.length})` : t.join(' '));

function firstDiff(a, b) {
  const len = Math.max(a.length, b.length);
  for (let i = 0; i < len; i++) if (a[i] !== b[i]) return i;
  return -1;
}

async function checkOne(dir, name) {
  const calls = programs[programOf(name)];
  if (!calls) return { ok: false, detail: `no calls for program ${programOf(name)} in cpp.mjs` };
  const orig = path.join(corpus, `${name}.wasm`);
  const inst = path.join(dir, `${name}.async.wasm`);
  if (!existsSync(orig)) return { ok: false, detail: `missing ${orig}` };
  if (!existsSync(inst)) {
    const logFile = path.join(dir, `${name}.instrument.log`);
    let why = '';
    if (existsSync(logFile)) {
      const first = (await readFile(logFile, 'utf8')).split('\n').find((l) => l.trim());
      if (first) why = `: ${first.trim()}`;
    }
    return { ok: false, detail: `not instrumented (no ${path.basename(inst)})${why}` };
  }
  const plain = await runPlain(await WebAssembly.compile(await readFile(orig)), calls);
  let asy;
  try {
    asy = await runAsync(await WebAssembly.compile(await readFile(inst)), calls);
  } catch (e) {
    return { ok: false, detail: `instrumented module failed: ${e.stack ?? e}` };
  }
  const problems = [...plain.problems];
  let logStart = 0;
  plain.records.forEach((p, i) => {
    const a = asy.records[i];
    const what = `call ${i} ${p.what}`;
    if (p.traceLen > TRACE_CAP) problems.push(`${what}: trace overflow in the plain run (bad test case)`);
    if (!a) return; // the instrumented run stopped early (reported below)
    if (show(p.result) !== show(a.result)) {
      problems.push(`${what}: expected ${show(p.result)}, got ${show(a.result)}`);
    }
    if (p.traceLen !== a.traceLen || firstDiff(p.trace, a.trace) >= 0) {
      const d = firstDiff(p.trace, a.trace);
      problems.push(`${what}: trace differs at entry ${d}: expected [${traceText(p.trace)}], got [${traceText(a.trace)}]`);
    }
    const pl = plain.log.slice(logStart, p.logLen);
    const al = asy.log.slice(i === 0 ? 0 : asy.records[i - 1].logLen, a.logLen);
    const d = firstDiff(pl, al);
    if (d >= 0) {
      problems.push(`${what}: import calls differ at #${d} (of ${pl.length} vs ${al.length}): ` +
        `expected ${pl[d] ?? '(none)'}, got ${al[d] ?? '(none)'}`);
    }
    logStart = p.logLen;
    if (p.sp !== a.sp) problems.push(`${what}: stack pointer ${a.sp} after the call, expected ${p.sp}`);
  });
  const m = plain.memory.findIndex((byte, i) => byte !== asy.memory[i]);
  if (asy.records.length === plain.records.length && (m >= 0 || plain.memory.length !== asy.memory.length)) {
    problems.push(`memory differs at address ${RUNTIME_AREA_END + Math.max(m, 0)}`);
  }
  problems.push(...asy.problems);
  if (asy.promises === 0) problems.push('no import returned a Promise: nothing was checked');
  const thrown = plain.records.filter((r) => r.trace.some((e) => e >= 3000 && e < 4000)).length;
  return {
    ok: problems.length === 0,
    detail: problems.length
      ? problems.slice(0, MAX_PROBLEMS).join('; ') +
        (problems.length > MAX_PROBLEMS ? `; (+${problems.length - MAX_PROBLEMS} more)` : '')
      : `${calls.length} calls (${thrown} with a handler entered), ${plain.log.length} import calls, ` +
        `${asy.promises} suspensions`,
  };
}

async function main() {
  const [dir, ...only] = process.argv.slice(2);
  if (!dir) {
    console.error('usage: node cpp.mjs BUILD_DIR [NAME...]');
    process.exit(2);
  }
  const names = only.length
    ? only
    : (await readdir(corpus)).filter((f) => f.endsWith('.wasm')).map((f) => f.slice(0, -5)).sort();
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
    console.log(`${r.ok ? 'PASS' : 'FAIL'} cpp/${name}: ${r.detail}`);
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

await main();
