//! `asyncify run` with dynamic linking: a main module and its shared
//! libraries (side modules) in one memory and one table, through
//! [`asyncify_linker::dylink`].
//!
//! A run is dynamic when `--library NAME=FILE` is given, or when the main
//! module asks for it: a `dylink.0` section (a position-independent
//! executable), imports of the dynamic-linking ABI (`env.__memory_base`,
//! `env.__table_base`) or of the loader's functions (`env.dlopen`,
//! `env.dlsym`, `env.dlclose`, `env.dlerror`). The libraries the guest
//! opens by name come from `--library` first, then from the host files that
//! the `--dir` mappings make visible to the guest, resolved as WASI resolves
//! a path (so a guest cannot open a library outside its directories).

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::task::Poll;

use anyhow::{bail, Context as _};
use asyncify_abi::RuntimeFunction;
use wasmparser::{Parser, Payload, TypeRef};

use crate::files;

/// The loader functions a guest imports from `env`.
const LOADER_IMPORTS: [&str; 4] = ["dlopen", "dlsym", "dlclose", "dlerror"];
/// The dynamic-linking ABI's globals a position-independent module imports.
const BASE_IMPORTS: [&str; 2] = ["__memory_base", "__table_base"];

/// Whether the main module `wasm` is to be linked dynamically (see the
/// module documentation), given `--library` entries `libraries`.
pub fn is_dynamic(wasm: &[u8], libraries: &[String]) -> bool {
    if !libraries.is_empty() {
        return true;
    }
    for payload in Parser::new(0).parse_all(wasm) {
        let Ok(payload) = payload else {
            // The compiler reports what is wrong with the module.
            return false;
        };
        match payload {
            Payload::CustomSection(section) if matches!(section.name(), "dylink.0" | "dylink") => {
                return true;
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports().flatten() {
                    let wanted = match import.ty {
                        TypeRef::Func(_) => &LOADER_IMPORTS[..],
                        TypeRef::Global(_) => &BASE_IMPORTS[..],
                        _ => continue,
                    };
                    if import.module == "env" && wanted.contains(&import.name) {
                        return true;
                    }
                }
            }
            Payload::CodeSectionStart { .. } => return false,
            _ => {}
        }
    }
    false
}

/// Whether `wasm` exports the five asyncify runtime functions (it is
/// instrumented already).
pub fn has_runtime_exports(wasm: &[u8]) -> bool {
    let mut exported = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(Payload::ExportSection(reader)) => {
                for export in reader.into_iter().flatten() {
                    if export.kind == wasmparser::ExternalKind::Func {
                        exported.push(export.name.to_string());
                    }
                }
            }
            Ok(Payload::CodeSectionStart { .. }) | Err(_) => break,
            _ => {}
        }
    }
    RuntimeFunction::ALL
        .iter()
        .all(|f| exported.iter().any(|e| e == f.export_name()))
}

/// `--library NAME=FILE` entries, read: each library's name and bytes.
pub fn read_libraries(specs: &[String]) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut libraries = Vec::with_capacity(specs.len());
    for spec in specs {
        let Some((name, file)) = spec
            .split_once('=')
            .filter(|(n, f)| !n.is_empty() && !f.is_empty())
        else {
            bail!(
                "--library takes NAME=FILE (the name the guest opens, and the library's \
                 file), got `{spec}`"
            );
        };
        let wasm = files::read_module(Path::new(file))
            .with_context(|| format!("cannot read library `{name}` for --library {spec}"))?;
        libraries.push((name.to_string(), wasm));
    }
    Ok(libraries)
}

/// A `--dir HOST::GUEST` mapping, as the loader resolves library paths.
#[derive(Clone, Debug)]
pub struct DirMapping {
    /// The host directory, canonical (symbolic links resolved).
    host: PathBuf,
    /// The guest's name for it, as path components (`/lib` and `lib` are
    /// both `["lib"]`, `.` and `/` are `[]`).
    guest: Vec<String>,
}

/// The `--dir` mappings; a directory that cannot be opened is left out (the
/// WASI set-up reports it).
pub fn dir_mappings(dirs: &[String]) -> Vec<DirMapping> {
    dirs.iter()
        .filter_map(|dir| {
            let (host, guest) = dir.split_once("::").unwrap_or((dir, dir));
            Some(DirMapping {
                host: std::fs::canonicalize(host).ok()?,
                guest: components(guest)?,
            })
        })
        .collect()
}

/// The normal components of the guest path `path` (`.` dropped, `..` taking
/// one back), or `None` if `..` leaves the root.
fn components(path: &str) -> Option<Vec<String>> {
    let mut parts: Vec<String> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part.to_string()),
        }
    }
    Some(parts)
}

/// The host file the guest path `path` names through `dirs` (the mapping
/// with the longest guest prefix), refusing a path that leaves it, also
/// through a symbolic link.
pub fn resolve(dirs: &[DirMapping], path: &str) -> Result<PathBuf, String> {
    let outside = || {
        format!(
            "`{path}` is not inside a directory given with --dir (libraries load from \
             --library NAME=FILE or from the guest's directories)"
        )
    };
    let parts = components(path).ok_or_else(outside)?;
    let mapping = dirs
        .iter()
        .filter(|d| parts.starts_with(&d.guest))
        .max_by_key(|d| d.guest.len())
        .ok_or_else(outside)?;
    let rest = &parts[mapping.guest.len()..];
    if rest.is_empty() {
        return Err(format!("`{path}` is a directory, not a library"));
    }
    let mut file = mapping.host.clone();
    for part in rest {
        // A component holding a separator or a prefix of the host's own
        // syntax (`C:`) is not a plain name.
        let mut parsed = Path::new(part).components();
        if !matches!(
            (parsed.next(), parsed.next()),
            (Some(Component::Normal(_)), None)
        ) {
            return Err(format!("`{path}` is not a valid library path"));
        }
        file.push(part);
    }
    let canonical = std::fs::canonicalize(&file)
        .map_err(|e| format!("cannot open `{path}` ({}): {e}", file.display()))?;
    if !canonical.starts_with(&mapping.host) {
        return Err(outside());
    }
    Ok(canonical)
}

/// The library loader `asyncify run` gives the dynamic linker: a guest path
/// resolved through `dirs` and read. With `suspend`, its future is pending
/// once before it reads (as `--async-wasi` makes every WASI call wait), so
/// that the guest's `dlopen` suspends.
pub fn loader(
    dirs: Vec<DirMapping>,
    suspend: bool,
) -> impl Fn(String) -> futures::future::BoxFuture<'static, wasmtime::Result<Vec<u8>>>
       + Send
       + Sync
       + 'static {
    let dirs = Arc::new(dirs);
    move |name: String| {
        let dirs = dirs.clone();
        let mut waited = !suspend;
        Box::pin(std::future::poll_fn(move |cx| {
            if !waited {
                waited = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let file = resolve(&dirs, &name).map_err(wasmtime::Error::msg)?;
            let wasm = std::fs::read(&file).map_err(|e| {
                wasmtime::format_err!("cannot read `{name}` ({}): {e}", file.display())
            })?;
            if !wasm.starts_with(b"\0asm") {
                return Poll::Ready(Err(wasmtime::format_err!(
                    "`{name}` ({}) is not a WebAssembly module",
                    file.display()
                )));
            }
            Poll::Ready(Ok(wasm))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(root: &Path, guest: &str) -> DirMapping {
        DirMapping {
            host: std::fs::canonicalize(root).unwrap(),
            guest: components(guest).unwrap(),
        }
    }

    #[test]
    fn guest_paths_resolve_inside_their_directory_only() {
        let root = std::env::temp_dir().join(format!("asyncify-dylink-{}", std::process::id()));
        let lib = root.join("lib");
        std::fs::create_dir_all(lib.join("sub")).unwrap();
        std::fs::write(lib.join("liba.so"), b"a").unwrap();
        std::fs::write(root.join("secret.so"), b"s").unwrap();
        let dirs = [mapping(&lib, "/lib"), mapping(&root, "/data")];

        let found = resolve(&dirs, "/lib/liba.so").unwrap();
        assert_eq!(found, std::fs::canonicalize(lib.join("liba.so")).unwrap());
        assert_eq!(resolve(&dirs, "lib/./sub/../liba.so").unwrap(), found);
        // The longest mapping wins; `..` may not leave the guest's root.
        assert_eq!(
            resolve(&dirs, "/data/secret.so").unwrap(),
            std::fs::canonicalize(root.join("secret.so")).unwrap()
        );
        assert!(resolve(&dirs, "/lib/../../secret.so")
            .unwrap_err()
            .contains("not inside a directory"));
        assert!(resolve(&dirs, "/lib/../secret.so")
            .unwrap_err()
            .contains("not inside a directory"));
        assert!(resolve(&dirs, "/other/liba.so")
            .unwrap_err()
            .contains("not inside a directory"));
        assert!(resolve(&dirs, "/lib/missing.so")
            .unwrap_err()
            .contains("cannot open"));
        assert!(resolve(&dirs, "/lib").unwrap_err().contains("directory"));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(root.join("secret.so"), lib.join("link.so")).unwrap();
            assert!(resolve(&dirs[..1], "/lib/link.so")
                .unwrap_err()
                .contains("not inside a directory"));
        }
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn dynamic_runs_are_recognised_by_section_or_imports() {
        let plain = wat::parse_str("(module (func (export \"_start\")))").unwrap();
        assert!(!is_dynamic(&plain, &[]));
        assert!(is_dynamic(&plain, &["x=y".to_string()]));
        let opener = wat::parse_str(
            "(module (import \"env\" \"dlopen\" (func (param i32 i32) (result i32))))",
        )
        .unwrap();
        assert!(is_dynamic(&opener, &[]));
        let pie =
            wat::parse_str("(module (import \"env\" \"__memory_base\" (global i32)))").unwrap();
        assert!(is_dynamic(&pie, &[]));
        let other = wat::parse_str(
            "(module (import \"env\" \"dlopen\" (global i32)) (import \"x\" \"dlsym\" (func)))",
        )
        .unwrap();
        assert!(!is_dynamic(&other, &[]));
    }
}
