// A small synchronous dynamic loader in JavaScript (Node 18+), independent of
// the project's Rust loader: it runs every scenario of corpus/dylink with
// synchronous imports and is how expected/*.txt were made.
//
//   node corpus/dylink/sync_run.mjs MAIN.wasm [NAME.so=FILE.wasm ...]
//       runs MAIN's `run` export and prints what the guest printed
//       (libNAME.so defaults to libNAME.wasm beside this file)
//   node corpus/dylink/sync_run.mjs --check | --write
//       runs every scenario in every build variant, checks that they agree
//       with each other and with expected/ (or rewrites expected/)
//
// What it implements is the part of the tool-conventions dynamic linking ABI
// the fixtures use, the way the tests expect the Rust loader to behave:
// libraries are placed at aligned addresses after the main module and its
// 64 KiB stack; table index 0 stays empty (a null function pointer); a
// library's `needed` libraries load first and its group's GOT entries are
// resolved once the whole group is instantiated (library B may use data of
// library A that needs B); symbols are looked up in load order, main first;
// then each library's __wasm_call_ctors runs, dependencies first. A load
// that fails (a missing symbol, a constructor that traps) is forgotten, and
// dlopen returns 0. dlopen of a loaded library returns its handle again;
// dlerror reports an error once.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const STACK_SIZE = 65536;

function leb(bytes, at) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const byte = bytes[at++];
    value |= (byte & 0x7f) << shift;
    shift += 7;
    if (byte < 0x80) return [value >>> 0, at];
  }
}

/** The module and its dylink.0 fields (null for a module without one). */
function compile(file) {
  const module = new WebAssembly.Module(fs.readFileSync(file));
  const sections = WebAssembly.Module.customSections(module, 'dylink.0');
  if (!sections.length) return [module, null];
  const bytes = new Uint8Array(sections[0]);
  const info = { memSize: 0, memAlign: 0, tableSize: 0, needed: [] };
  let at = 0;
  while (at < bytes.length) {
    const kind = bytes[at++];
    let size;
    [size, at] = leb(bytes, at);
    const end = at + size;
    if (kind === 1) {
      [info.memSize, at] = leb(bytes, at);
      [info.memAlign, at] = leb(bytes, at);
      [info.tableSize, at] = leb(bytes, at);
    } else if (kind === 2) {
      let count;
      [count, at] = leb(bytes, at);
      for (let i = 0; i < count; i++) {
        let len;
        [len, at] = leb(bytes, at);
        info.needed.push(new TextDecoder().decode(bytes.slice(at, at + len)));
        at += len;
      }
    }
    at = end;
  }
  return [module, info];
}

/** Runs `mainFile`'s `run` export; returns { output, status } (status is the
 * number `run` returned, or `trap: MESSAGE`). */
export function runScenario(mainFile, libraryFiles) {
  let output = '';
  let memory, table, stackPointer, heap;
  const symbols = new Map(); // name -> { func } | { addr }
  const got = new Map(); // 'mem:NAME' | 'func:NAME' -> WebAssembly.Global
  const tableSlots = new Map(); // function -> table index
  const loaded = new Map(); // library name -> library
  const handles = [];
  let error = null;
  let errorBuffer = 0;

  const bytes = () => new Uint8Array(memory.buffer);
  const cString = (ptr) => {
    const mem = bytes();
    let end = ptr;
    while (mem[end]) end++;
    return new TextDecoder().decode(mem.slice(ptr, end));
  };
  const alloc = (size, align) => {
    heap = Math.ceil(heap / align) * align;
    const ptr = heap;
    heap += size;
    const missing = Math.ceil(heap / 65536) - memory.buffer.byteLength / 65536;
    if (missing > 0) memory.grow(missing);
    return ptr;
  };
  const slotOf = (func) => {
    if (!tableSlots.has(func)) {
      const index = table.grow(1);
      table.set(index, func);
      tableSlots.set(func, index);
    }
    return tableSlots.get(func);
  };
  const gotEntry = (kind, name) => {
    const key = `${kind}:${name}`;
    if (!got.has(key)) got.set(key, new WebAssembly.Global({ value: 'i32', mutable: true }, 0));
    return got.get(key);
  };
  const resolveGot = () => {
    const missing = [];
    for (const [key, global] of got) {
      const [kind, name] = key.split(/:(.*)/s);
      const symbol = symbols.get(name);
      if (!symbol) missing.push(name);
      else global.value = kind === 'mem' ? symbol.addr : slotOf(symbol.func);
    }
    return missing;
  };

  const host = {
    slow_double: (x) => 2 * x,
    print_str: (ptr, len) => {
      output += new TextDecoder().decode(bytes().slice(ptr, ptr + len));
    },
    print_i32: (x) => {
      output += String(x);
    },
    dlopen: (ptr) => {
      try {
        return load(cString(ptr)).handle;
      } catch (e) {
        error = e.message;
        return 0;
      }
    },
    dlsym: (handle, ptr) => {
      const name = cString(ptr);
      const library = handles[handle - 1];
      if (!library) {
        error = `dlsym: invalid handle ${handle}`;
        return 0;
      }
      const symbol = library.own.get(name);
      if (!symbol) {
        error = `${library.name}: undefined symbol: ${name}`;
        return 0;
      }
      return symbol.func ? slotOf(symbol.func) : symbol.addr;
    },
    dlclose: (handle) => {
      const library = handles[handle - 1];
      if (!library || library.refs === 0) {
        error = `dlclose: invalid handle ${handle}`;
        return -1;
      }
      library.refs--;
      return 0;
    },
    dlerror: () => {
      if (error === null) return 0;
      const text = new TextEncoder().encode(error).slice(0, 255);
      error = null;
      if (!errorBuffer) errorBuffer = alloc(256, 1);
      bytes().set(text, errorBuffer);
      bytes()[errorBuffer + text.length] = 0;
      return errorBuffer;
    },
    emscripten_notify_memory_growth: () => {},
  };

  const importsFor = (module, memoryBase, tableBase) => {
    const env = {
      memory,
      __indirect_function_table: table,
      __stack_pointer: stackPointer,
      __memory_base: new WebAssembly.Global({ value: 'i32' }, memoryBase),
      __table_base: new WebAssembly.Global({ value: 'i32' }, tableBase),
    };
    const imports = { env, 'GOT.mem': {}, 'GOT.func': {} };
    for (const { module: from, name, kind } of WebAssembly.Module.imports(module)) {
      if (from === 'GOT.mem' || from === 'GOT.func') {
        imports[from][name] = gotEntry(from.slice(4), name);
      } else if (from === 'env' && kind === 'function') {
        const func = host[name] ?? symbols.get(name)?.func;
        if (!func) throw new Error(`undefined symbol: ${name}`);
        env[name] = func;
      }
    }
    return imports;
  };
  const register = (instance, memoryBase) => {
    const own = new Map();
    for (const [name, value] of Object.entries(instance.exports)) {
      let symbol;
      if (typeof value === 'function') symbol = { func: value };
      else if (value instanceof WebAssembly.Global && !name.startsWith('__')) {
        symbol = { addr: memoryBase + value.value };
      } else continue;
      own.set(name, symbol);
      if (!symbols.has(name)) symbols.set(name, symbol);
    }
    return own;
  };
  const instantiate = (name, group) => {
    const known = group.find((library) => library.name === name) ?? loaded.get(name);
    if (known) return known;
    if (!libraryFiles[name]) throw new Error(`${name}: no such library`);
    const [module, info] = compile(libraryFiles[name]);
    if (!info) throw new Error(`${name}: not a side module (no dylink.0)`);
    for (const needed of info.needed) instantiate(needed, group);
    const memoryBase = alloc(info.memSize, 1 << info.memAlign);
    const tableBase = table.length;
    if (info.tableSize) table.grow(info.tableSize);
    const instance = new WebAssembly.Instance(module, importsFor(module, memoryBase, tableBase));
    const library = { name, instance, own: register(instance, memoryBase), refs: 0 };
    group.push(library);
    return library;
  };
  const load = (name) => {
    if (!loaded.has(name)) {
      const group = [];
      const gotBefore = new Set(got.keys());
      // Forgets a load that failed: its symbols and the GOT entries only it used.
      const forget = () => {
        for (const library of group) {
          for (const [symbol, value] of library.own) {
            if (symbols.get(symbol) === value) symbols.delete(symbol);
          }
        }
        for (const key of [...got.keys()]) if (!gotBefore.has(key)) got.delete(key);
      };
      try {
        instantiate(name, group);
      } catch (e) {
        forget();
        throw e;
      }
      const missing = resolveGot();
      if (missing.length) {
        forget();
        throw new Error(`${name}: undefined symbol: ${missing.join(', ')}`);
      }
      try {
        for (const library of group) library.instance.exports.__wasm_call_ctors?.();
      } catch (e) {
        forget();
        throw new Error(`the constructors of library ${name} failed: ${e.message}`);
      }
      for (const library of group) {
        handles.push(library);
        library.handle = handles.length;
        loaded.set(library.name, library);
      }
    }
    const library = loaded.get(name);
    library.refs++;
    return library;
  };

  const [module, info] = compile(mainFile);
  let main;
  if (info) {
    // A PIE main: the loader makes the memory (emscripten's main asks for
    // 16 pages and a maximum), the table (slot 0 left empty) and the stack.
    memory = new WebAssembly.Memory({ initial: 16, maximum: 32768 });
    table = new WebAssembly.Table({ initial: 1, element: 'anyfunc' });
    heap = 1024;
    stackPointer = new WebAssembly.Global({ value: 'i32', mutable: true }, alloc(STACK_SIZE, 16) + STACK_SIZE);
    const memoryBase = alloc(info.memSize, 1 << info.memAlign);
    const tableBase = table.length;
    table.grow(info.tableSize);
    const imports = importsFor(module, memoryBase, tableBase);
    // emscripten's main imports GOT.mem.__heap_base for its malloc, which
    // the fixtures never call: one megabyte after the main module's data.
    const heapBase = alloc(1 << 20, 16);
    symbols.set('__heap_base', { addr: heapBase });
    main = new WebAssembly.Instance(module, imports);
    register(main, memoryBase);
    const missing = resolveGot();
    if (missing.length) throw new Error(`main: undefined symbol: ${missing.join(', ')}`);
    main.exports.__wasm_call_ctors?.();
  } else {
    // A plain executable: it brings its memory, table and stack pointer.
    main = new WebAssembly.Instance(module, { env: { ...host } });
    memory = main.exports.memory;
    table = main.exports.__indirect_function_table;
    stackPointer = main.exports.__stack_pointer;
    heap = main.exports.__heap_base?.value ?? memory.buffer.byteLength;
    register(main, 0);
  }
  let status;
  try {
    status = main.exports.run();
  } catch (e) {
    if (!(e instanceof WebAssembly.RuntimeError)) throw e;
    status = `trap: ${e.message}`;
  }
  return { output, status };
}

/** Every scenario: its main module builds, the library files its names map
 * to in each variant, and how its run ends. */
const SCENARIOS = [
  {
    name: 'callback',
    mains: ['callback_static', 'callback_main.pie', 'callback_main.exe', 'callback_main.emcc'],
    libraries: [{}, { 'libcallback.so': 'libcallback.emcc.wasm' }],
    status: 0,
  },
  { name: 'mutual', mains: ['mutual_main.pie', 'mutual_main.exe'], status: 0 },
  { name: 'twice', mains: ['twice_main.pie', 'twice_main.exe'], status: 0 },
  { name: 'missing', mains: ['missing_main.pie', 'missing_main.exe'], status: 0 },
  {
    name: 'ctor_trap',
    mains: ['ctor_trap_main.pie', 'ctor_trap_main.exe'],
    status: 0,
  },
  { name: 'cpp', mains: ['cpp_main.pie', 'cpp_main.exe'], status: 0 },
  { name: 'ctor_wait', mains: ['ctor_wait_main.pie', 'ctor_wait_main.exe'], status: 0 },
  { name: 'nested', mains: ['nested_main.pie', 'nested_main.exe'], status: 0 },
];

/** libNAME.so -> libNAME.wasm for every library beside this file, with
 * `overrides` on top. */
function libraryMap(overrides = {}) {
  const map = {};
  for (const file of fs.readdirSync(here)) {
    const m = /^lib([a-z_]+)\.wasm$/.exec(file);
    if (m) map[`lib${m[1]}.so`] = path.join(here, file);
  }
  for (const [name, file] of Object.entries(overrides)) map[name] = path.resolve(here, file);
  return map;
}

function checkAll(write) {
  let failures = 0;
  for (const scenario of SCENARIOS) {
    const expectedFile = path.join(here, 'expected', `${scenario.name}.txt`);
    let reference = null;
    for (const main of scenario.mains) {
      for (const overrides of scenario.libraries ?? [{}]) {
        const label = `${scenario.name}: ${main}.wasm ${JSON.stringify(overrides)}`;
        const { output, status } = runScenario(path.join(here, `${main}.wasm`), libraryMap(overrides));
        if (status !== scenario.status) {
          console.log(`${label}: run ended with ${status}, expected ${scenario.status}`);
          failures++;
        }
        if (reference === null) reference = output;
        if (output !== reference) {
          console.log(`${label}: output differs from ${scenario.mains[0]}`);
          failures++;
        }
      }
    }
    if (write) fs.writeFileSync(expectedFile, reference);
    else if (fs.readFileSync(expectedFile, 'utf8') !== reference) {
      console.log(`${scenario.name}: output differs from expected/${scenario.name}.txt`);
      failures++;
    }
  }
  console.log(failures ? `${failures} failures` : 'all scenarios agree');
  return failures === 0;
}

const args = process.argv.slice(2);
if (args[0] === '--check' || args[0] === '--write') {
  process.exit(checkAll(args[0] === '--write') ? 0 : 1);
} else if (args.length >= 1) {
  const overrides = Object.fromEntries(args.slice(1).map((arg) => arg.split('=')));
  const { output, status } = runScenario(args[0], libraryMap(overrides));
  process.stdout.write(output);
  console.error(`run -> ${status}`);
} else {
  console.error('usage: node sync_run.mjs MAIN.wasm [NAME.so=FILE.wasm ...] | --check | --write');
  process.exit(2);
}
