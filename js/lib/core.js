// The platform-independent part of the glue. `assemble.mjs` puts one of the
// prelude.*.js files before it (they define `defaultBytesSync`,
// `defaultSource` and `loadUrl`) and an export statement after it, giving the
// browser ES module, the Node ES module and the Node CommonJS file.
//
// The .wasm (js/src, Rust) exports a small C ABI: the glue copies the input
// and the options (JSON) into its memory, calls `asyncify_instrument` or
// `asyncify_inspect`, and copies the result out of it.

/** The compiled .wasm, shared by every instance. */
let compiled = null;
/** The exports of the live instance, or null before the first call or after a trap. */
let live = null;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * An error of the transform: `message` is the one-paragraph message the
 * `asyncify` command line prints, `kind` the Rust `Error` variant
 * (`InvalidInput`, `InvalidText`, `AlreadyInstrumented`, `Unsupported`,
 * `RuntimeImportType`, `Options`, `ListFile`, `Limit`, `InvalidOutput`), `Why` for an
 * unknown `why` name, or `Internal` when the transform trapped.
 */
class AsyncifyError extends Error {
  constructor(message, kind) {
    super(message);
    this.name = 'AsyncifyError';
    this.kind = kind;
  }
}

function useModule(module) {
  compiled = module;
  live = null;
}

function isBufferSource(s) {
  return s instanceof ArrayBuffer || ArrayBuffer.isView(s);
}

/**
 * Compiles the .wasm. Needed once in browsers before `instrument` or
 * `inspect`; optional in Node, where the first call loads it synchronously.
 * `source`: a URL or path (default: asyncify.wasm next to this file), a
 * `Response` or a Promise of one, the bytes, or a compiled `WebAssembly.Module`.
 */
async function init(source) {
  if (source === undefined && compiled) return;
  let s = await (source === undefined ? defaultSource() : source);
  if (typeof s === 'string' || s instanceof URL) s = await loadUrl(s);
  if (typeof Response !== 'undefined' && s instanceof Response) {
    if (!s.ok) throw new Error(`asyncify: cannot load the .wasm from ${s.url}: HTTP ${s.status}`);
    const copy = typeof WebAssembly.compileStreaming === 'function' ? s.clone() : null;
    try {
      if (copy) {
        useModule(await WebAssembly.compileStreaming(s));
        return;
      }
    } catch {
      // A server that does not say `application/wasm`: compile the bytes.
      s = copy;
    }
    s = await s.arrayBuffer();
  }
  if (s instanceof WebAssembly.Module) useModule(s);
  else if (isBufferSource(s)) useModule(await WebAssembly.compile(s));
  else throw new TypeError('asyncify: init() takes a URL, a path, a Response, bytes or a WebAssembly.Module');
}

/**
 * Compiles the .wasm synchronously from its bytes or a compiled module
 * (default, in Node: asyncify.wasm next to this file). Browsers refuse to
 * compile large modules synchronously on the main thread: use `init()` there.
 */
function initSync(source) {
  const s = source === undefined ? defaultBytesSync() : source;
  if (s instanceof WebAssembly.Module) useModule(s);
  else if (isBufferSource(s)) useModule(new WebAssembly.Module(s));
  else if (source === undefined) throw new Error(notInitialised);
  else throw new TypeError('asyncify: initSync() takes bytes or a WebAssembly.Module');
}

const notInitialised =
  'asyncify: the .wasm is not loaded yet: call `await init()` before instrument() or inspect()';

function wasm() {
  if (live) return live;
  if (!compiled) {
    const bytes = defaultBytesSync();
    if (!bytes) throw new Error(notInitialised);
    compiled = new WebAssembly.Module(bytes);
  }
  live = new WebAssembly.Instance(compiled, {}).exports;
  return live;
}

function toBytes(input) {
  if (input instanceof Uint8Array) return input;
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  if (typeof input === 'string') return encoder.encode(input);
  throw new TypeError('asyncify: the module must be a Uint8Array, an ArrayBuffer or WebAssembly text (a string)');
}

/** The options as JSON for the Rust side, which checks names and types. */
function encodeOptions(options) {
  if (options === undefined || options === null) return { json: new Uint8Array(0), onWarning: undefined };
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new AsyncifyError('invalid options: the options must be an object such as `{ imports: ["env.sleep"] }`', 'Options');
  }
  const { onWarning, ...rest } = options;
  if (onWarning !== undefined && typeof onWarning !== 'function') {
    throw new AsyncifyError('invalid options: option `onWarning` must be a function', 'Options');
  }
  const text = JSON.stringify(rest, (key, value) => {
    const t = typeof value;
    if (t === 'function' || t === 'symbol' || t === 'bigint') {
      throw new AsyncifyError(
        `invalid options: option \`${key}\` is a ${t}; options take booleans, numbers, strings and arrays of strings`,
        'Options',
      );
    }
    return value;
  });
  return { json: encoder.encode(text), onWarning };
}

function view(ex, ptr, len) {
  return new Uint8Array(ex.memory.buffer, ptr, len);
}

function put(ex, bytes) {
  const ptr = ex.asyncify_alloc(bytes.length);
  if (ptr === 0) throw new AsyncifyError(`asyncify: cannot allocate ${bytes.length} bytes in the transform's memory`, 'Internal');
  view(ex, ptr, bytes.length).set(bytes);
  return ptr;
}

/** Runs one export of the C ABI; returns the result bytes and warnings, or throws. */
function call(name, input, options) {
  const bytes = toBytes(input);
  const { json, onWarning } = encodeOptions(options);
  const ex = wasm();
  const inputPtr = put(ex, bytes);
  let optionsPtr = 0;
  try {
    optionsPtr = put(ex, json);
    let status;
    try {
      status = ex[name](inputPtr, bytes.length, optionsPtr, json.length);
    } catch (e) {
      if (!(e instanceof WebAssembly.RuntimeError)) throw e;
      // A panic (its message kept by the hook) or running out of memory: this
      // instance is done for, the next call gets a fresh one.
      live = null;
      const len = ex.asyncify_panic_len();
      const panic = len ? decoder.decode(view(ex, ex.asyncify_panic_ptr(), len)) : '';
      throw new AsyncifyError(
        `internal error: the transform stopped (${panic || `wasm trap: ${e.message}; out of memory?`}); ` +
          'please report this with the input module',
        'Internal',
      );
    }
    const result = view(ex, ex.asyncify_result_ptr(), ex.asyncify_result_len()).slice();
    const warningsText = decoder.decode(view(ex, ex.asyncify_warnings_ptr(), ex.asyncify_warnings_len()));
    ex.asyncify_result_free();
    if (status !== 0) {
      const failure = JSON.parse(decoder.decode(result));
      throw new AsyncifyError(failure.message, failure.kind);
    }
    if (onWarning && warningsText) for (const w of JSON.parse(warningsText)) onWarning(w);
    return result;
  } finally {
    if (live === ex) {
      ex.asyncify_free(inputPtr, bytes.length);
      if (optionsPtr) ex.asyncify_free(optionsPtr, json.length);
    }
  }
}

/**
 * Instruments `input` (a binary module, or WebAssembly text as a string) so
 * that it can unwind and rewind at its imports, keeping Binaryen's asyncify
 * ABI. Returns the new module; the same bytes `asyncify instrument` writes.
 * Throws an `AsyncifyError` when the options are wrong or the transform
 * refuses the module.
 */
function instrument(input, options) {
  return call('asyncify_instrument', input, options);
}

/**
 * What `asyncify inspect --json` prints for `input` with these options: its
 * imports and exports, how many functions would be instrumented, frame sizes,
 * the output size; with `why: [names]` the call chains, with
 * `functions: true` every instrumented function.
 */
function inspect(input, options) {
  return JSON.parse(decoder.decode(call('asyncify_inspect', input, options)));
}
