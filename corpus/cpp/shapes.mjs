// Counts the exception-handling shapes in the corpus/cpp modules, to show
// that they contain what they are meant to test: legacy try / catch /
// catch_all / rethrow / delegate, and catch_all handlers that call something
// that may suspend (an import, an indirect call, or a function reaching one)
// and end in a rethrow.
//
// Usage (wabt comes from scripts/js-interop: npm ci there first):
//   node corpus/cpp/shapes.mjs [FILE.wasm...]   (default: corpus/cpp/*.wasm)
import { readFile, readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../../scripts/js-interop/package.json'));
const wabt = await require('wabt')();

function analyse(bytes) {
  const mod = wabt.readWasm(bytes, { readDebugNames: true, exceptions: true });
  mod.generateNames();
  mod.applyNames();
  const text = mod.toText({});
  mod.destroy();
  const lines = text.split('\n').map((l) => l.trim());

  // Functions: name -> { calls: Set, indirect: bool, body: [lines] }.
  const imports = new Set();
  const funcs = new Map();
  let cur = null;
  for (const l of lines) {
    let m = l.match(/^\(import "([^"]*)" "([^"]*)" \(func (\$\S+)/);
    if (m) { imports.add(m[3]); continue; }
    m = l.match(/^\(func (\$\S+)/);
    if (m) { cur = { calls: new Set(), indirect: false, body: [] }; funcs.set(m[1], cur); continue; }
    if (!cur) continue;
    cur.body.push(l);
    m = l.match(/^(?:return_)?call (\$\S+)/);
    if (m) cur.calls.add(m[1]);
    if (/^(?:return_)?call_indirect\b/.test(l)) cur.indirect = true;
  }
  // May a call to `name` suspend? (Every import may, as with the CLI's
  // default options; an indirect call may.)
  const memo = new Map();
  const maySuspend = (name, seen = new Set()) => {
    if (imports.has(name)) return true;
    if (memo.has(name)) return memo.get(name);
    if (seen.has(name)) return false;
    seen.add(name);
    const f = funcs.get(name);
    const r = !!f && (f.indirect || [...f.calls].some((c) => maySuspend(c, seen)));
    if (seen.size === 1) memo.set(name, r);
    return r;
  };

  const count = { try: 0, catch: 0, catch_all: 0, rethrow: 0, delegate: 0, throw: 0 };
  let suspendingCatchAll = 0; // may suspend and rethrow
  let directCatchAll = 0; // calls an import itself and rethrows
  const where = new Set();
  for (const [fname, f] of funcs) {
    // A stack of open blocks; a catch_all handler records its calls until
    // its `end`, including nested blocks.
    const stack = [];
    for (const l of f.body) {
      const op = l.split(/\s+/)[0];
      if (op in count) count[op]++;
      for (const h of stack) {
        if (!h.handler) continue;
        const m = l.match(/^call (\$\S+)/);
        if (m) {
          if (maySuspend(m[1])) h.suspends = true;
          if (imports.has(m[1])) h.direct = true;
        }
        if (/^call_indirect\b/.test(l)) h.suspends = true;
        if (op === 'rethrow') h.rethrows = true;
      }
      if (['block', 'loop', 'if', 'try'].includes(op)) stack.push({ op, handler: false });
      else if (op === 'catch_all') {
        const top = stack[stack.length - 1];
        top.handler = true;
        top.suspends = top.direct = top.rethrows = false;
      } else if (op === 'catch') {
        const top = stack[stack.length - 1];
        top.handler = false;
      } else if (op === 'end' || op === 'delegate') {
        const h = stack.pop();
        if (h?.handler && h.rethrows && h.suspends) {
          suspendingCatchAll++;
          if (h.direct) directCatchAll++;
          where.add(fname);
        }
      }
    }
  }
  return {
    count, suspendingCatchAll, directCatchAll, imports: [...imports], where: [...where],
  };
}

const files = process.argv.slice(2).length
  ? process.argv.slice(2)
  : (await readdir(here)).filter((f) => f.endsWith('.wasm')).sort().map((f) => path.join(here, f));
console.log('| module | try | catch | catch_all | rethrow | delegate | throw | catch_all that may suspend, then rethrow (import called directly in it) |');
console.log('|---|---|---|---|---|---|---|---|');
for (const file of files) {
  const r = analyse(await readFile(file));
  const c = r.count;
  console.log(`| ${path.basename(file)} | ${c.try} | ${c.catch} | ${c.catch_all} | ${c.rethrow} | ${c.delegate} | ${c.throw} | ${r.suspendingCatchAll} (${r.directCatchAll}) |`);
  if (process.env.SHAPES_VERBOSE) console.log(`    imports ${r.imports.join(' ')}; in ${r.where.join(' ')}`);
}
