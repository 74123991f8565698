//! `instrument` on arbitrary bytes. Checks, for the default options and for
//! an option set chosen by the first input byte:
//! - it never panics: bytes that are not a module are an `Err`;
//! - it never returns `Error::InvalidOutput` (the input is validated first,
//!   so an output that fails validation is a bug in the transform);
//! - every `Ok` output validates with all of wasmparser's features.
//!
//! Input: byte 0 selects the options (see [`options`]) and, with its top bit,
//! puts the binary header `\0asm` + version 1 in front of the rest, so that
//! mutations reach the binary reader and not only the text parser. The rest
//! is the module: binary if it starts with `\0asm`, WebAssembly text if not.

#![no_main]

use std::borrow::Cow;

use asyncify_transform::{instrument, Error, Options};
use libfuzzer_sys::fuzz_target;
use wasmparser::{Validator, WasmFeatures};

/// `\0asm`, version 1.
const HEADER: &[u8] = b"\0asm\x01\0\0\0";

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let module: Cow<[u8]> = if selector & 0x80 != 0 {
        Cow::Owned([HEADER, rest].concat())
    } else {
        Cow::Borrowed(rest)
    };
    check(&module, &Options::default());
    let options = options(selector);
    if options != Options::default() {
        check(&module, &options);
    }
});

/// The option set for selector byte `s` (bit 7 is the header switch):
/// - bit 0: `asserts`; bit 1: `ignore_indirect`; bit 2: a 1-page secondary memory;
/// - bits 3-4: nothing / `ignore_imports` / an imports list / `import_globals`;
/// - bits 5-6: nothing / `export_globals` with a propagated add list /
///   an only list / a remove list with the memory named `memory`.
fn options(s: u8) -> Options {
    let bit = |n: u8| s & (1 << n) != 0;
    let mut options = Options {
        asserts: bit(0),
        ignore_indirect: bit(1),
        secondary_memory: bit(2).then_some(1),
        ..Options::default()
    };
    match (s >> 3) & 0b11 {
        0 => {}
        1 => options.ignore_imports = true,
        2 => options.imports = vec!["env.*".into(), "wasi_snapshot_preview1.fd_read".into()],
        _ => options.import_globals = true,
    }
    match (s >> 5) & 0b11 {
        0 => {}
        1 => {
            options.export_globals = true;
            options.add_list = vec!["*".into()];
            options.propagate_add_list = true;
        }
        2 => options.only_list = Some(vec!["*".into()]),
        _ => {
            options.remove_list = vec!["*main*".into()];
            options.memory = Some("memory".into());
        }
    }
    options
}

fn check(module: &[u8], options: &Options) {
    match instrument(module, options) {
        Ok(output) => {
            let mut validator = Validator::new_with_features(WasmFeatures::all());
            if let Err(e) = validator.validate_all(&output.wasm) {
                panic!(
                    "the output does not validate: {e}\n\
                     input: {} bytes, output: {} bytes, options: {options:?}",
                    module.len(),
                    output.wasm.len()
                );
            }
        }
        Err(e @ Error::InvalidOutput(_)) => panic!(
            "Error::InvalidOutput on a {}-byte input, options {options:?}: {e}",
            module.len()
        ),
        Err(_) => {}
    }
}
