// Types of asyncify-transform (js/ in the asyncify workspace).

/**
 * A list of names or patterns (`*` matches any run of characters): an array
 * of entries, taken as they are, or one string of comma or newline separated
 * entries, parsed as the `asyncify` command line parses a LIST.
 */
export type List = readonly string[] | string;

/** What to instrument and how; the Rust `Options` and the CLI flags, in camelCase. */
export interface Options {
  /** Only these imports may suspend, as `module.name` patterns (`--imports`). Default: all imports. */
  imports?: List;
  /** No import may suspend; only the `asyncify.*` runtime imports do (`--ignore-imports`). */
  ignoreImports?: boolean;
  /** Indirect calls (`call_indirect`, `call_ref`) never suspend (`--ignore-indirect`). */
  ignoreIndirect?: boolean;
  /** Instrument these functions even if analysis says they cannot suspend (`--add-list`). */
  addList?: List;
  /** These functions never suspend and do not make their callers suspend (`--remove-list`). */
  removeList?: List;
  /** Instrument exactly these functions (`--only-list`); not with `addList` or `removeList`. */
  onlyList?: List;
  /** Callers of `addList` functions are instrumented too (`--propagate-add-list`). */
  propagateAddList?: boolean;
  /** Uninstrumented code traps if the state changes under it (`--asserts`). */
  asserts?: boolean;
  /** Import the state globals as `env.__asyncify_state` / `env.__asyncify_data` (`--import-globals`). */
  importGlobals?: boolean;
  /** Export the state globals as `__asyncify_state` / `__asyncify_data` (`--export-globals`). */
  exportGlobals?: boolean;
  /**
   * Keep the unwind buffer in a new memory exported as `asyncify_memory`:
   * `true` for 1 page, or the size in 64 KiB pages (`--secondary-memory[=PAGES]`).
   */
  secondaryMemory?: boolean | number;
  /** With several memories: use the one exported under this name (`--memory`). */
  memory?: string;
  /** An unwind writes exactly the locals live at its point; larger output (`--exact-saves`). */
  exactSaves?: boolean;
  /** Binaryen pass arguments such as `asyncify-imports@env.sleep`, applied after the options above (`--pass-arg`). */
  passArgs?: readonly string[] | string;
  /** Called with each warning (patterns that matched nothing, custom sections dropped, ...). */
  onWarning?: (message: string) => void;
}

/** The options of `inspect`: those of `instrument` and two more. */
export interface InspectOptions extends Options {
  /** Explain why these functions are instrumented (names from the name section, or indices) (`--why`). */
  why?: readonly string[] | string;
  /** List every instrumented function (`--functions`). */
  functions?: boolean;
}

/** An import (with `module`) or an export. */
export interface InterfaceEntry {
  module?: string;
  name: string;
  /** In text-format syntax, e.g. `func (param i32) (result i32)`. */
  type: string;
}

/** One instrumented function, with `functions: true`. */
export interface InstrumentedFunction {
  index: number;
  name: string | null;
  points: number;
  saved_locals: number;
  frame_bytes: number;
  /** Locals an unwind writes at each suspension point, in order. */
  saved_per_point: number[];
  /** Locals live after each suspension point, in order. */
  live_per_point: number[];
}

/** What `inspect` returns: the JSON `asyncify inspect --json` prints. */
export interface InspectReport {
  input_bytes: number;
  output_bytes: number;
  growth: number;
  functions: number;
  instrumented: number;
  suspension_points: number;
  imports: InterfaceEntry[];
  exports: InterfaceEntry[];
  frames: {
    max_saved_locals: number;
    mean_saved_locals: number;
    max_live_locals: number;
    mean_live_locals: number;
    max_frame_bytes: number;
    mean_frame_bytes: number;
  };
  warnings: string[];
  /** With `why`: one entry per name. */
  why?: { function: string; instrumented: boolean; chain: string[] }[];
  /** With `functions: true`. */
  instrumented_functions?: InstrumentedFunction[];
}

/** A WebAssembly module: binary bytes, or text. */
export type ModuleSource = Uint8Array | ArrayBuffer | ArrayBufferView | string;

/**
 * Instruments a module so that it can unwind and rewind at the imports that
 * may suspend (Binaryen's asyncify ABI, as `asyncify-wasm` drives it). The
 * result is byte for byte what `asyncify instrument` writes.
 * @throws {AsyncifyError} for wrong options or a module the transform refuses.
 */
export function instrument(input: ModuleSource, options?: Options): Uint8Array;

/**
 * What the transform would do to a module: `asyncify inspect --json`.
 * @throws {AsyncifyError} as `instrument` does, and for an unknown `why` name.
 */
export function inspect(input: ModuleSource, options?: InspectOptions): InspectReport;

/**
 * Loads and compiles the .wasm. Required once in browsers before the first
 * call (default: `asyncify.wasm` next to the script, fetched); optional in Node.
 */
export function init(
  source?: string | URL | Response | PromiseLike<Response> | BufferSource | WebAssembly.Module,
): Promise<void>;

/** Compiles the .wasm synchronously (Node, workers, or small-module hosts). */
export function initSync(source?: BufferSource | WebAssembly.Module): void;

/** The error `instrument` and `inspect` throw. */
export class AsyncifyError extends Error {
  name: 'AsyncifyError';
  /**
   * `InvalidInput`, `InvalidText`, `AlreadyInstrumented`, `Unsupported`,
   * `RuntimeImportType`, `Options`, `ListFile`, `Limit` (an engine limit the output
   * would exceed), `InvalidOutput`, `Why`, or
   * `Internal` when the transform trapped.
   */
  kind: string;
}
