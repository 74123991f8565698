// Differential driver for tests/tests/legacy_exceptions.rs, run by Node 20
// (V8 11.3, which runs legacy exception handling; wasmtime does not).
//
// Usage: node drive.mjs DIR
//   DIR/cases.json lists the cases; DIR/ID.orig.wasm is a case's original
//   module and DIR/ID.inst.wasm the instrumented one (default options: every
//   import may suspend).
//
// Per case, the original runs once and the instrumented module runs under
// three schedules (Never, Always, and the case's pattern), each in a fresh
// instance making the case's export calls in order. The driver speaks the
// asyncify ABI directly: an import that suspends logs its call, records its
// results, calls asyncify_start_unwind(0) and returns zeros; when the export
// returns in state 1 the driver calls stop_unwind and start_rewind(0) and
// calls the export again with the same arguments; the import, reached again in
// state 2, calls stop_rewind and returns the recorded results.
//
// The buffer: V8 11.3 has no multi-memory, so the buffer is the guest's own
// memory 0 (export `mem0`), all of it, header at 0. The driver snapshots the
// memory when an import suspends; when the unwind is over, every byte outside
// the frames just written ([0, cur)) must still be as in the snapshot, and
// when the rewind reaches the import again, every byte but the header must
// still be as the unwind left it: guest code that wrongly runs on the unwind
// or rewind path and stores to memory is a difference (and stays in the
// memory, for the final comparison). Then only the frames' bytes ([0, cur)
// after the unwind) are put back from the snapshot, so the guest never sees a
// frame and frames never clobber guest data. (A wrong store on the unwind path
// into the frames' own bytes is the one thing this cannot see.)
//
// Compared per schedule with the original: each call's results (numbers via
// Object.is, so any NaN equals any NaN: values crossing into JS lose NaN
// payloads; i64 as BigInt), traps (by message), exceptions escaping an export
// (tag, by the exported tags `tagN`, and payload), the import call log with
// arguments and results, the final memories byte for byte, and the exported
// globals. Protocol violations seen by the driver are always a difference.
//
// Output, one line each, written synchronously (the test kills a hung run):
//   start ID
//   diff ID TEXT                 (zero or more)
//   unusable ID TEXT             (V8 rejects the original: not a case)
//   case ID ok|fail N A P CALLS ESCAPED TRAPPED HANDLER_CALLS HANDLER_SUSPENDS
// N, A, P: unwinds under Never, Always and the pattern. CALLS: export calls;
// ESCAPED / TRAPPED: how many of the original's ended with an exception or a
// trap. HANDLER_CALLS: calls of the marker import made at the start of
// handlers that have a suspension point (`inject.i32` with an argument in
// [MARK, MARK + 0x10000)), in the original; HANDLER_SUSPENDS: how many of those
// suspended, summed over the schedules.
import { Buffer } from 'node:buffer';
import { readFileSync, writeSync } from 'node:fs';
import path from 'node:path';

const MARK = 0x48410000;
const MAX_UNWINDS = 100000;
const HEADER = 8;

function out(line) {
  writeSync(1, line.replace(/\n/g, ' ') + '\n');
}

// --- values ----------------------------------------------------------------

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);
const f64buf = new Float64Array(1);
const u64buf = new BigUint64Array(f64buf.buffer);

/** A value from the case file (`[type, text]`) as JS passes it to wasm. */
function fromSpec([ty, v]) {
  switch (ty) {
    case 'i32': return Number(v) | 0;
    case 'i64': return BigInt(v);
    case 'f32': u32buf[0] = Number(v); return f32buf[0];
    case 'f64': u64buf[0] = BigInt(v); return f64buf[0];
    default: return null;
  }
}

/** A value as the driver records and compares it. */
function show(v) {
  if (v === undefined) return '';
  if (Array.isArray(v)) return '[' + v.map(show).join(', ') + ']';
  switch (typeof v) {
    case 'number':
      if (Number.isNaN(v)) return 'nan';
      if (Object.is(v, -0)) return '-0';
      return String(v);
    case 'bigint': return v + 'n';
    case 'function': return 'funcref';
    case 'object': return v === null ? 'null' : 'ref';
    default: return typeof v;
  }
}

function zero(ty) {
  switch (ty) {
    case 'i32': case 'f32': case 'f64': return 0;
    case 'i64': return 0n;
    default: return null;
  }
}

function pack(values) {
  if (values.length === 0) return undefined;
  if (values.length === 1) return values[0];
  return values;
}

// --- deterministic host results --------------------------------------------

function fnv1a(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

function mix32(x) {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d) >>> 0;
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * The results of import `m.n`: a function of its name, its arguments and the
 * number of import calls before it, so a repeated or skipped call changes
 * every later value. Integers are small (0..99) three times in four.
 */
function hostResults(m, n, args, callsSoFar, types) {
  let state = fnv1a(`${m}.${n}(${args.map(show).join(',')})#${callsSoFar}`);
  const next = () => (state = mix32((state + 0x9e3779b9) >>> 0));
  return types.map((ty) => {
    const h = next();
    const small = (h & 3) !== 0;
    switch (ty) {
      case 'i32': return small ? (h >>> 8) % 100 : next() | 0;
      case 'i64':
        return small
          ? BigInt((h >>> 8) % 100)
          : BigInt.asIntN(64, (BigInt(next()) << 32n) | BigInt(next()));
      case 'f32':
      case 'f64':
        return (h & 15) === 15 ? NaN : ((h >>> 8) % 2000) / 8 - 100;
      default: return null;
    }
  });
}

// --- one run ----------------------------------------------------------------

class DriverError extends Error {}

class Host {
  constructor(schedule) {
    this.schedule = schedule; // null: the original
    this.rt = null; // the instance's exports once instantiated (instrumented)
    this.log = [];
    this.errors = [];
    this.suspendable = 0;
    this.unwinds = 0;
    this.pending = null;
    this.saved = null; // memory when the pending import suspended
    this.unwound = null; // memory when that unwind was over
    this.framesEnd = 0; // cur after that unwind
    this.handlerCalls = 0;
    this.handlerSuspends = 0;
  }

  memory() {
    return new Uint8Array(this.rt.mem0.buffer);
  }

  violation(message) {
    this.errors.push(message);
    throw new DriverError(message);
  }

  call(m, n, results, args) {
    const rt = this.rt;
    if (rt) {
      const s = rt.asyncify_get_state();
      if (s === 2) return this.resume(m, n);
      if (s !== 0) this.violation(`import ${m}.${n} called in state ${s}`);
    }
    const values = hostResults(m, n, args, this.log.length, results);
    this.log.push(`${m}.${n}(${args.map(show).join(', ')}) -> [${values.map(show).join(', ')}]`);
    const marker = m === 'inject' && n === 'i32' && args[0] >= MARK && args[0] < MARK + 0x10000;
    if (marker) this.handlerCalls++;
    if (rt && this.schedule(this.suspendable++)) {
      if (marker) this.handlerSuspends++;
      this.pending = { m, n, values };
      const mem = this.memory();
      this.saved = mem.slice();
      const header = new DataView(mem.buffer);
      header.setUint32(0, HEADER, true);
      header.setUint32(4, mem.length, true);
      rt.asyncify_start_unwind(0);
      return pack(results.map(zero));
    }
    return pack(values);
  }

  resume(m, n) {
    const rt = this.rt;
    const cur = new DataView(rt.mem0.buffer).getUint32(0, true);
    if (cur !== HEADER) {
      this.violation(`the rewind reached ${m}.${n} with cur = ${cur}, not back at ${HEADER}`);
    }
    rt.asyncify_stop_rewind();
    const p = this.pending;
    this.pending = null;
    if (!p) this.violation(`the rewind reached ${m}.${n}, but no import call had suspended`);
    if (p.m !== m || p.n !== n) {
      this.violation(`the rewind reached ${m}.${n}, but the suspended call was ${p.m}.${p.n}`);
    }
    this.restore();
    return pack(p.values);
  }

  /**
   * The unwind is over with `cur` at `cur`: nothing outside the frames
   * ([0, cur)) may have changed since the import suspended.
   */
  unwindOver(cur) {
    if (!this.saved) return;
    const mem = this.memory();
    this.framesEnd = Math.min(cur, mem.length);
    this.unwound = mem.slice();
    this.expectSame(this.saved, this.framesEnd, 'the unwind');
  }

  /**
   * Reports the first byte at or past `from` that differs from `before`:
   * a store executed on the unwind or rewind path (`what`).
   */
  expectSame(before, from, what) {
    const mem = this.memory();
    if (mem.length !== before.length) {
      this.errors.push(`the memory changed size during ${what}`);
      return;
    }
    const len = mem.length - from;
    const now = Buffer.from(mem.buffer, mem.byteOffset + from, len);
    // A native comparison first: this runs at every suspension.
    if (now.equals(Buffer.from(before.buffer, before.byteOffset + from, len))) return;
    for (let i = from; i < mem.length; i++) {
      if (mem[i] !== before[i]) {
        this.errors.push(`guest memory changed during ${what}: byte ${i} was ${before[i]}, is ${mem[i]}`);
        return;
      }
    }
  }

  /**
   * The rewind reached the suspended import: only the header may have
   * changed since the unwind was over; then the frames' bytes get the
   * guest's data back.
   */
  restore() {
    if (this.saved) {
      const mem = this.memory();
      if (this.unwound) this.expectSame(this.unwound, HEADER, 'the rewind');
      if (mem.length === this.saved.length) mem.set(this.saved.subarray(0, this.framesEnd));
      else this.errors.push('the memory changed size while suspended');
    }
    this.saved = null;
    this.unwound = null;
    this.framesEnd = 0;
  }

  /** After a failed call: the guest's data back in the frames' bytes. */
  abandon() {
    if (this.saved) {
      const mem = this.memory();
      const end = this.unwound ? this.framesEnd : mem.length;
      if (mem.length === this.saved.length) mem.set(this.saved.subarray(0, end));
    }
    this.saved = null;
    this.unwound = null;
    this.framesEnd = 0;
  }

  /** After a failed call: back to the normal state (best effort). */
  reset() {
    const rt = this.rt;
    if (!rt) return;
    try {
      const s = rt.asyncify_get_state();
      if (s === 1) rt.asyncify_stop_unwind();
      if (s === 2) rt.asyncify_stop_rewind();
    } catch (e) {
      // A trap here leaves the state as it is; later calls will show it.
    }
    this.abandon();
    this.pending = null;
  }
}

function describe(e, exports, tags) {
  if (e instanceof WebAssembly.Exception) {
    for (let i = 0; exports && i < tags.length; i++) {
      const tag = exports[`tag${i}`];
      if (tag && e.is(tag)) {
        const payload = tags[i].map((_, k) => show(e.getArg(tag, k)));
        return `exception tag${i}(${payload.join(', ')})`;
      }
    }
    return 'exception with a tag the module does not export';
  }
  if (e instanceof DriverError) return `driver error: ${e.message}`;
  if (e instanceof WebAssembly.RuntimeError) return `trap: ${e.message}`;
  return `error ${e && e.name}: ${e && e.message}`;
}

function callExport(exports, host, c, name, args) {
  const f = exports[name];
  if (typeof f !== 'function') return { result: `no exported function ${name}`, unwinds: 0 };
  let unwinds = 0;
  const fail = (message) => {
    host.errors.push(`${name}: ${message}`);
    host.reset();
    return { result: `driver error: ${message}`, unwinds };
  };
  for (;;) {
    let r;
    try {
      r = f(...args);
    } catch (e) {
      host.reset();
      return { result: describe(e, exports, c.tags), unwinds };
    }
    const rt = host.rt;
    if (!rt) return { result: `ok ${show(r)}`, unwinds };
    const s = rt.asyncify_get_state();
    if (s === 0) {
      if (host.pending) return fail('returned normally while a suspended import was never resumed');
      return { result: `ok ${show(r)}`, unwinds };
    }
    if (s !== 1) {
      return fail(`returned in state ${s}${s === 2 ? ': the rewind never reached the import' : ''}`);
    }
    unwinds++;
    host.unwinds++;
    const header = new DataView(rt.mem0.buffer);
    const cur = header.getUint32(0, true);
    const end = header.getUint32(4, true);
    if (cur < HEADER || cur > end) {
      return fail(`after unwind #${unwinds}, cur = ${cur}, end = ${end}: the buffer (all of mem0) overflowed or the header is broken`);
    }
    host.unwindOver(cur);
    if (unwinds > MAX_UNWINDS) return fail(`still unwinding after ${MAX_UNWINDS} rounds`);
    try {
      rt.asyncify_stop_unwind();
      rt.asyncify_start_rewind(0);
    } catch (e) {
      host.reset();
      return { result: describe(e, exports, c.tags), unwinds };
    }
  }
}

function isRuntimeExport(name) {
  return name.startsWith('asyncify_') || name.startsWith('__asyncify_');
}

function run(module, c, schedule) {
  const host = new Host(schedule);
  const outcome = { start: null, calls: [], imports: host.log, memories: new Map(), globals: new Map(), errors: host.errors };
  const imports = {};
  for (const [m, n, , results] of c.imports) {
    imports[m] ??= {};
    imports[m][n] = (...args) => host.call(m, n, results, args);
  }
  let instance;
  try {
    instance = new WebAssembly.Instance(module, imports);
  } catch (e) {
    outcome.start = describe(e, null, c.tags);
    return outcome;
  }
  const exports = instance.exports;
  if (schedule) {
    if (!(exports.mem0 instanceof WebAssembly.Memory)) {
      host.errors.push('no memory exported as mem0 for the buffer');
      return outcome;
    }
    host.rt = exports;
  }
  for (const [name, args] of c.calls) {
    const r = callExport(exports, host, c, name, args.map(fromSpec));
    outcome.calls.push({ name, args, ...r });
  }
  for (const [name, value] of Object.entries(exports)) {
    if (isRuntimeExport(name)) continue;
    if (value instanceof WebAssembly.Memory) {
      outcome.memories.set(name, new Uint8Array(value.buffer).slice());
    } else if (value instanceof WebAssembly.Global) {
      let v;
      try {
        v = show(value.value);
      } catch (e) {
        v = 'unreadable';
      }
      outcome.globals.set(name, v);
    }
  }
  outcome.unwinds = host.unwinds;
  outcome.handlerCalls = host.handlerCalls;
  outcome.handlerSuspends = host.handlerSuspends;
  return outcome;
}

// --- comparing --------------------------------------------------------------

function memoryDiff(a, b) {
  if (a.length !== b.length) return `size ${a.length} in the original, ${b.length} instrumented`;
  let first = -1;
  let count = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) {
      if (first < 0) first = i;
      count++;
    }
  }
  if (first < 0) return null;
  const hex = (m) => Array.from(m.slice(first, first + 16), (x) => x.toString(16).padStart(2, '0')).join(' ');
  return `${count} bytes differ, first at 0x${first.toString(16)}: original ${hex(a)}, instrumented ${hex(b)}`;
}

function compare(o, r) {
  const d = [];
  for (const e of o.errors) d.push(`driver error in the original run: ${e}`);
  for (const e of r.errors) d.push(`driver error: ${e}`);
  if (o.start !== r.start) d.push(`instantiation: original ${o.start ?? 'ok'}, instrumented ${r.start ?? 'ok'}`);
  if (o.calls.length !== r.calls.length) {
    d.push(`number of export calls: original ${o.calls.length}, instrumented ${r.calls.length}`);
  }
  for (let i = 0; i < Math.min(o.calls.length, r.calls.length); i++) {
    const a = o.calls[i];
    const b = r.calls[i];
    if (a.result !== b.result) {
      const args = a.args.map(([t, v]) => `${t}:${v}`).join(', ');
      d.push(`call #${i} ${a.name}(${args}): original ${a.result}, instrumented ${b.result} (after ${b.unwinds} unwinds)`);
    }
  }
  const n = Math.max(o.imports.length, r.imports.length);
  for (let i = 0; i < n; i++) {
    if (o.imports[i] !== r.imports[i]) {
      d.push(`import log (${o.imports.length} calls original, ${r.imports.length} instrumented) first differs at call #${i}: original ${o.imports[i] ?? '(none)'}, instrumented ${r.imports[i] ?? '(none)'}`);
      break;
    }
  }
  for (const [name, a] of o.memories) {
    const b = r.memories.get(name);
    if (!b) d.push(`memory ${name} missing from the instrumented module`);
    else {
      const why = memoryDiff(a, b);
      if (why) d.push(`memory ${name}: ${why}`);
    }
  }
  for (const name of r.memories.keys()) {
    if (!o.memories.has(name)) d.push(`memory ${name} only in the instrumented module`);
  }
  for (const [name, a] of o.globals) {
    const b = r.globals.get(name);
    if (b === undefined) d.push(`global ${name} missing from the instrumented module`);
    else if (a !== b) d.push(`global ${name}: original ${a}, instrumented ${b}`);
  }
  for (const name of r.globals.keys()) {
    if (!o.globals.has(name)) d.push(`global ${name} only in the instrumented module`);
  }
  return d;
}

// --- main -------------------------------------------------------------------

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node drive.mjs DIR');
  process.exit(2);
}
const spec = JSON.parse(readFileSync(path.join(dir, 'cases.json'), 'utf8'));
for (const c of spec.cases) {
  out(`start ${c.id}`);
  let original;
  let instrumented;
  try {
    original = new WebAssembly.Module(readFileSync(path.join(dir, `${c.id}.orig.wasm`)));
  } catch (e) {
    out(`unusable ${c.id} V8 rejects the original: ${e.message}`);
    continue;
  }
  try {
    instrumented = new WebAssembly.Module(readFileSync(path.join(dir, `${c.id}.inst.wasm`)));
  } catch (e) {
    out(`diff ${c.id} V8 rejects the instrumented module: ${e.message}`);
    out(`case ${c.id} fail 0 0 0 0 0 0 0 0`);
    continue;
  }
  const o = run(original, c, null);
  const pattern = c.pattern;
  const schedules = [
    ['Never', () => false],
    ['Always', () => true],
    [`Pattern(${pattern})`, (k) => pattern[k % pattern.length] === 'S'],
  ];
  let failed = false;
  const unwinds = [];
  let handlerSuspends = 0;
  for (const [name, schedule] of schedules) {
    const r = run(instrumented, c, schedule);
    unwinds.push(r.unwinds ?? 0);
    handlerSuspends += r.handlerSuspends ?? 0;
    for (const line of compare(o, r)) {
      out(`diff ${c.id} ${name}: ${line}`);
      failed = true;
    }
  }
  const escaped = o.calls.filter((x) => x.result.startsWith('exception')).length;
  const trapped = o.calls.filter((x) => x.result.startsWith('trap')).length;
  out(`case ${c.id} ${failed ? 'fail' : 'ok'} ${unwinds.join(' ')} ${o.calls.length} ${escaped} ${trapped} ${o.handlerCalls ?? 0} ${handlerSuspends}`);
}
