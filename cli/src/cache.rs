//! A cache of compiled modules for `asyncify run`, so that a second run of
//! the same module starts without compiling it again.
//!
//! An entry is a file named after the SHA-256 of the engine's configuration
//! and the module's bytes (after instrumentation), holding wasmtime's
//! serialized module behind a header with the SHA-256 of that artifact. Only
//! files this program wrote are deserialized: an entry whose header or
//! digest does not match (a truncated write, a disk error, anything else) is
//! a miss, removed and compiled again. Entries are written to a temporary
//! file and renamed, so concurrent runs never see half an entry.
//!
//! For `--instrument`, a small `.instrumented` file maps the input, the
//! options and this executable (size and modification time) to the entry of
//! the instrumented module, so that a second run skips the transform too.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use asyncify_transform::Options;
use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

/// The first bytes of every entry; a format change bumps the number.
const HEADER: &[u8; 16] = b"asyncify-cache-1";
/// Header, then the artifact's SHA-256.
const PREFIX_LEN: usize = HEADER.len() + 32;

/// Where compiled modules are kept, if anywhere.
pub struct Cache {
    dir: Option<PathBuf>,
}

impl Cache {
    /// A cache in `dir`, or in the default directory
    /// ([`default_dir`]); none at all when `disabled`.
    pub fn new(disabled: bool, dir: Option<PathBuf>) -> Cache {
        Cache {
            dir: if disabled {
                None
            } else {
                dir.or_else(default_dir)
            },
        }
    }

    /// `wasm` compiled by `engine`: from the cache if it holds it, else
    /// compiled (saying so on a terminal) and stored. `name` names the
    /// module on the progress line.
    pub fn module(&self, engine: &Engine, wasm: &[u8], name: &Path) -> wasmtime::Result<Module> {
        let entry = self
            .dir
            .as_ref()
            .map(|dir| dir.join(entry_name(engine, wasm)));
        if let Some(module) = entry.as_deref().and_then(|path| load(engine, path)) {
            return Ok(module);
        }
        let module = compile(engine, wasm, name)?;
        if let Some(path) = &entry {
            if let Err(error) = store(&module, path) {
                eprintln!(
                    "warning: cannot write the compiled-code cache entry `{}`: {error} (use \
                     --cache-dir DIR elsewhere, or --no-cache)",
                    path.display()
                );
            }
        }
        Ok(module)
    }
}

impl Cache {
    /// The compiled module for `input` instrumented with `options`, if an
    /// earlier run of this very executable stored it
    /// ([`remember_instrumented`](Self::remember_instrumented)): a hit skips
    /// the transform as well as the compilation.
    pub fn instrumented(&self, engine: &Engine, input: &[u8], options: &Options) -> Option<Module> {
        let alias = self.dir.as_ref()?.join(alias_name(input, options)?);
        let entry = fs::read_to_string(alias).ok()?;
        // Only a name this program writes: 64 hex digits and `.cwasm`.
        let valid = entry.len() == 70
            && entry.ends_with(".cwasm")
            && entry[..64].bytes().all(|b| b.is_ascii_hexdigit());
        if !valid {
            return None;
        }
        load(engine, &self.dir.as_ref()?.join(entry))
    }

    /// Records that `input` instrumented with `options` is `wasm`, whose
    /// compiled module [`module`](Self::module) stored. Failures are ignored:
    /// the next run instruments again.
    pub fn remember_instrumented(
        &self,
        engine: &Engine,
        input: &[u8],
        options: &Options,
        wasm: &[u8],
    ) {
        let (Some(dir), Some(alias)) = (&self.dir, alias_name(input, options)) else {
            return;
        };
        let _ = write_atomically(&dir.join(alias), &[entry_name(engine, wasm).as_bytes()]);
    }
}

/// The file name that maps `input` and `options` to the entry of the
/// instrumented module. It includes this executable's size and modification
/// time: the transform's output may change with any rebuild, and a stale
/// mapping must not survive one. `None` when the executable cannot be found.
fn alias_name(input: &[u8], options: &Options) -> Option<String> {
    let exe = fs::metadata(std::env::current_exe().ok()?).ok()?;
    let modified = exe
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    let mut sha = Sha256::new();
    sha.update(b"asyncify-instrumented-1");
    sha.update(exe.len().to_le_bytes());
    sha.update(modified.as_nanos().to_le_bytes());
    sha.update(format!("{options:?}"));
    sha.update((input.len() as u64).to_le_bytes());
    sha.update(input);
    Some(format!("{}.instrumented", hex(&sha.finalize())))
}

/// The user's cache directory for this program: `$XDG_CACHE_HOME/asyncify`,
/// else `~/.cache/asyncify` (`~/Library/Caches/asyncify` on macOS,
/// `%LOCALAPPDATA%\asyncify` on Windows).
pub fn default_dir() -> Option<PathBuf> {
    let non_empty = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty());
    if cfg!(windows) {
        return non_empty("LOCALAPPDATA").map(|d| PathBuf::from(d).join("asyncify"));
    }
    if let Some(dir) = non_empty("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("asyncify"));
    }
    let home = PathBuf::from(non_empty("HOME")?);
    Some(if cfg!(target_os = "macos") {
        home.join("Library/Caches/asyncify")
    } else {
        home.join(".cache/asyncify")
    })
}

/// Feeds a `Hash` value into a SHA-256.
struct ShaHasher<'a>(&'a mut Sha256);

impl Hasher for ShaHasher<'_> {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        0
    }
}

/// The file name of the entry for `wasm` compiled by `engine`.
fn entry_name(engine: &Engine, wasm: &[u8]) -> String {
    let mut sha = Sha256::new();
    sha.update(HEADER);
    sha.update(env!("CARGO_PKG_VERSION"));
    engine
        .precompile_compatibility_hash()
        .hash(&mut ShaHasher(&mut sha));
    sha.update((wasm.len() as u64).to_le_bytes());
    sha.update(wasm);
    format!("{}.cwasm", hex(&sha.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The module in the entry at `path`, if there is a sound one; a damaged
/// entry is removed.
fn load(engine: &Engine, path: &Path) -> Option<Module> {
    let bytes = fs::read(path).ok()?;
    let artifact = bytes.get(PREFIX_LEN..).filter(|artifact| {
        bytes[..HEADER.len()] == *HEADER && {
            let digest = Sha256::digest(artifact);
            bytes[HEADER.len()..PREFIX_LEN] == digest[..]
        }
    });
    let module = artifact.and_then(|artifact| {
        // SAFETY: `artifact` is what `store` wrote from `Module::serialize`
        // (the digest above rules out damage since), in the user's own cache
        // directory; wasmtime itself rejects artifacts of another version or
        // configuration.
        unsafe { Module::deserialize(engine, artifact) }.ok()
    });
    if module.is_none() {
        let _ = fs::remove_file(path);
    }
    module
}

/// Compiles `wasm`, with a "compiling NAME…" line while it lasts when
/// standard error is a terminal.
fn compile(engine: &Engine, wasm: &[u8], name: &Path) -> wasmtime::Result<Module> {
    let terminal = std::io::stderr().is_terminal();
    let line = format!("compiling {}…", name.display());
    if terminal {
        eprint!("{line}");
        let _ = std::io::stderr().flush();
    }
    let module = Module::new(engine, wasm);
    if terminal {
        let width = line.chars().count();
        eprint!("\r{:width$}\r", "");
    }
    module
}

/// Writes `module`'s entry at `path`.
fn store(module: &Module, path: &Path) -> anyhow::Result<()> {
    let artifact = module.serialize().map_err(|e| anyhow::anyhow!("{e}"))?;
    let digest = Sha256::digest(&artifact);
    Ok(write_atomically(path, &[HEADER, &digest, &artifact])?)
}

/// Writes `parts` one after the other to a temporary file beside `path`,
/// creating the directory if needed, and renames it to `path`.
fn write_atomically(path: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut temp_name = path.as_os_str().to_owned();
    temp_name.push(format!(".tmp-{}", std::process::id()));
    let temp = PathBuf::from(temp_name);
    let result = (|| -> std::io::Result<()> {
        let mut file = fs::File::create(&temp)?;
        for part in parts {
            file.write_all(part)?;
        }
        drop(file);
        fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_reused_and_damaged_ones_are_misses() {
        let dir = std::env::temp_dir().join(format!("asyncify-cache-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let cache = Cache::new(false, Some(dir.clone()));
        let engine = Engine::default();
        let wasm =
            wat::parse_str("(module (func (export \"f\") (result i32) i32.const 7))").unwrap();
        cache.module(&engine, &wasm, Path::new("m.wat")).unwrap();
        let entries: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(entries.len(), 1);
        let entry = &entries[0];
        assert!(load(&engine, entry).is_some());

        // Flip one byte of the artifact: the entry is removed, then rebuilt.
        let mut bytes = fs::read(entry).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(entry, &bytes).unwrap();
        assert!(load(&engine, entry).is_none());
        assert!(!entry.exists());
        cache.module(&engine, &wasm, Path::new("m.wat")).unwrap();
        assert!(load(&engine, entry).is_some());

        // Truncated to less than the header.
        fs::write(entry, b"asyncify").unwrap();
        assert!(load(&engine, entry).is_none());
        let _ = fs::remove_dir_all(&dir);
    }
}
