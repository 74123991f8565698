//! Reading the input module and writing the output, where `-` means standard
//! input or output. A regular output file is replaced whole or not at all;
//! a symbolic link is written through to its target; a device or a FIFO is
//! written directly.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Whether `path` is `-`, standard input or output.
fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// How to name an input in a message: `` `path` `` or `standard input`.
pub fn describe(path: &Path) -> String {
    if is_stdio(path) {
        "standard input".to_owned()
    } else {
        format!("`{}`", path.display())
    }
}

/// Reads the whole input file, or standard input for `-`.
pub fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    if is_stdio(path) {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .context("cannot read standard input")?;
        return Ok(bytes);
    }
    fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))
}

/// The four bytes every wasm binary starts with.
const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// Reads a module and returns it as a wasm binary: a binary as it is, text
/// (`.wat`) parsed, with parse errors naming the file and showing the line.
/// A file named `*.wasm` that is neither a binary nor text is reported as
/// "not a wasm binary (bad magic)".
pub fn read_module(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = read_input(path)?;
    to_binary(path, bytes)
}

/// `bytes`, read from `path`, as a wasm binary (see [`read_module`]).
pub fn to_binary(path: &Path, bytes: Vec<u8>) -> anyhow::Result<Vec<u8>> {
    if bytes.starts_with(WASM_MAGIC) {
        return Ok(bytes);
    }
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let named_text = matches!(extension.as_deref(), Some("wat" | "wast"));
    if !named_text && !wat::Detect::from_bytes(&bytes).is_wasm() {
        anyhow::bail!(
            "{} is not a wasm binary ({})",
            describe(path),
            bad_magic(&bytes)
        );
    }
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "{} is not valid WebAssembly text: it is not UTF-8 (invalid byte at offset {})",
            describe(path),
            e.valid_up_to()
        )
    })?;
    // A name for messages; standard input has none.
    let name = (!is_stdio(path)).then_some(path);
    wat::Parser::new()
        .parse_str(name, text)
        .map_err(|e| anyhow::anyhow!("{} is not valid WebAssembly text: {e}", describe(path)))
}

/// What a file that is not a wasm binary starts with, for a message.
fn bad_magic(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "it is empty".to_owned();
    }
    let start: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!(
        "bad magic: it starts with {}, a wasm binary with 00 61 73 6d",
        start.join(" ")
    )
}

/// Writes `bytes` to standard output for `-`. Otherwise a regular file (or
/// a path that does not exist yet) is replaced whole, so that a failure
/// leaves the old file (or no file) in place; a symbolic link is written
/// through, replacing its target and keeping the link; and anything else (a
/// device such as `/dev/null`, a FIFO) is opened and written directly, never
/// replaced by a regular file.
pub fn write_output(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if is_stdio(path) {
        let mut stdout = std::io::stdout().lock();
        return stdout
            .write_all(bytes)
            .and_then(|()| stdout.flush())
            .context("cannot write to standard output");
    }
    write_file(path, bytes).with_context(|| format!("cannot write `{}`", path.display()))
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let target = follow_links(path)?;
    let result = write_target(&target, bytes);
    if target == path {
        result
    } else {
        result.with_context(|| format!("it links to `{}`", target.display()))
    }
}

fn write_target(target: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    match fs::metadata(target) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => replace_file(target, bytes),
        Err(e) => Err(e.into()),
        Ok(m) if m.is_file() => replace_file(target, bytes),
        Ok(m) if m.is_dir() => anyhow::bail!("`{}` is a directory", target.display()),
        // A device or a FIFO: renaming over it would replace it (a FIFO's
        // reader would get nothing). No truncation: a device has nothing to
        // truncate, and a FIFO only holds what its reader has not read yet.
        Ok(_) => OpenOptions::new()
            .write(true)
            .open(target)
            .and_then(|mut file| file.write_all(bytes).and_then(|()| file.flush()))
            .map_err(Into::into),
    }
}

/// The path that `path` names once symbolic links are followed (the last
/// component only; a link's target may not exist yet, in which case it is
/// created). Directories on the way are left to the operating system.
fn follow_links(path: &Path) -> anyhow::Result<PathBuf> {
    // As many links as Linux follows before giving up with ELOOP.
    const MAX_LINKS: usize = 40;
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = fs::read_link(&current).with_context(|| {
                    format!("cannot read symbolic link `{}`", current.display())
                })?;
                // A relative target is relative to the link's directory.
                current = match current.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            _ => return Ok(current),
        }
    }
    anyhow::bail!(
        "more than {MAX_LINKS} symbolic links to follow from `{}` (a loop?)",
        path.display()
    )
}

/// Writes a temporary file next to `path` and renames it over `path`: rename
/// within a directory is atomic, so readers see the old file or the new one.
fn replace_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut temp_name = path.as_os_str().to_owned();
    temp_name.push(format!(".tmp-{}", std::process::id()));
    let temp = PathBuf::from(temp_name);

    // `create_new`: never truncate a file that is not ours.
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .context("cannot create a file in its directory")?;
    let result = fill_and_rename(file, bytes, &temp, path);
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

fn fill_and_rename(
    mut file: fs::File,
    bytes: &[u8],
    temp: &Path,
    path: &Path,
) -> anyhow::Result<()> {
    // Messages name the output, not the temporary file the user never sees.
    file.write_all(bytes).and_then(|()| file.sync_all())?;
    drop(file);
    // Replacing a file keeps its permissions (an executable bit, say); a new
    // file gets the defaults.
    if let Ok(metadata) = fs::metadata(path) {
        let _ = fs::set_permissions(temp, metadata.permissions());
    }
    fs::rename(temp, path).context("cannot replace it")
}
