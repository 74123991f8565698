//! Reading the input module and writing the output, where `-` means standard
//! input or output. An output file is replaced whole or not at all.

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

/// Writes `bytes` to standard output for `-`; otherwise replaces the file at
/// `path`, so that a failure leaves the old file (or no file) in place.
pub fn write_output(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if is_stdio(path) {
        let mut stdout = std::io::stdout().lock();
        return stdout
            .write_all(bytes)
            .and_then(|()| stdout.flush())
            .context("cannot write to standard output");
    }
    replace_file(path, bytes).with_context(|| format!("cannot write `{}`", path.display()))
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
        .with_context(|| format!("cannot create temporary file `{}`", temp.display()))?;
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
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write temporary file `{}`", temp.display()))?;
    drop(file);
    // Replacing a file keeps its permissions (an executable bit, say); a new
    // file gets the defaults.
    if let Ok(metadata) = fs::metadata(path) {
        let _ = fs::set_permissions(temp, metadata.permissions());
    }
    fs::rename(temp, path).with_context(|| {
        format!(
            "cannot rename temporary file `{}` to `{}`",
            temp.display(),
            path.display()
        )
    })
}
