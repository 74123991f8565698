//! Reading a module's dynamic-linking metadata: the `dylink.0` custom
//! section (and the older `dylink` one), with wasmparser.

use wasmparser::{BinaryReader, Dylink0Subsection, KnownCustom, Parser, Payload, SymbolFlags};

use super::DylinkError;

/// Most entries a `needed`, export-info or import-info list may have: a
/// module is untrusted input, and each entry costs host memory.
const MAX_ENTRIES: usize = 1 << 16;

/// What a module's `dylink.0` section (or the older `dylink` one) says.
///
/// ```
/// use asyncify_linker::dylink::DylinkInfo;
///
/// // A side module built by a toolchain has the section; a plain module has none.
/// assert!(DylinkInfo::parse(&wat::parse_str("(module)").unwrap()).unwrap().is_none());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DylinkInfo {
    /// Bytes of memory the module's data needs, placed at its `__memory_base`.
    pub memory_size: u32,
    /// Alignment of that memory, as a power of two.
    pub memory_align: u32,
    /// Table slots the module's element segments need, from its `__table_base`.
    pub table_size: u32,
    /// Alignment of those slots, as a power of two.
    pub table_align: u32,
    /// Libraries to load before this one, in order.
    pub needed: Vec<String>,
    /// Imports (`module`, `name`) marked weak: left undefined, they resolve
    /// to 0 (data, function pointers) or to a function that traps.
    pub weak_imports: Vec<(String, String)>,
    /// Exports marked thread-local (relative to `__tls_base`, which this
    /// loader does not provide): they are not offered as symbols.
    pub tls_exports: Vec<String>,
    /// Exports marked absolute (not relative to `__memory_base`).
    pub absolute_exports: Vec<String>,
    /// Whether this came from the older `dylink` section.
    pub legacy: bool,
}

impl DylinkInfo {
    /// Reads the dynamic-linking section of `wasm`: `Ok(None)` when it has
    /// none (a plain module).
    ///
    /// # Errors
    ///
    /// [`DylinkError::Malformed`] (naming the library `<module>`) when the
    /// module or the section cannot be read, or a list in it is longer than
    /// 65536 entries.
    pub fn parse(wasm: &[u8]) -> Result<Option<DylinkInfo>, DylinkError> {
        let malformed = |e: wasmparser::BinaryReaderError| DylinkError::Malformed {
            library: "<module>".into(),
            message: e.to_string(),
        };
        for payload in Parser::new(0).parse_all(wasm) {
            let payload = payload.map_err(malformed)?;
            let Payload::CustomSection(section) = payload else {
                continue;
            };
            match section.as_known() {
                KnownCustom::Dylink0(reader) => {
                    let mut info = DylinkInfo::default();
                    for sub in reader {
                        info.add(sub.map_err(malformed)?)?;
                    }
                    return Ok(Some(info));
                }
                _ if section.name() == "dylink" => {
                    let reader = BinaryReader::new(section.data(), section.data_offset());
                    return legacy(reader).map(Some).map_err(malformed);
                }
                _ => {}
            }
        }
        Ok(None)
    }

    fn add(&mut self, sub: Dylink0Subsection<'_>) -> Result<(), DylinkError> {
        let too_many = |what: &str| DylinkError::Malformed {
            library: "<module>".into(),
            message: format!("its `dylink.0` {what} list has more than {MAX_ENTRIES} entries"),
        };
        match sub {
            Dylink0Subsection::MemInfo(m) => {
                self.memory_size = m.memory_size;
                self.memory_align = m.memory_alignment;
                self.table_size = m.table_size;
                self.table_align = m.table_alignment;
            }
            Dylink0Subsection::Needed(names) => {
                if names.len() > MAX_ENTRIES {
                    return Err(too_many("needed"));
                }
                self.needed.extend(names.iter().map(|n| n.to_string()));
            }
            Dylink0Subsection::ExportInfo(exports) => {
                if exports.len() > MAX_ENTRIES {
                    return Err(too_many("export-info"));
                }
                for e in exports {
                    if e.flags.contains(SymbolFlags::TLS) {
                        self.tls_exports.push(e.name.to_string());
                    }
                    if e.flags.contains(SymbolFlags::ABSOLUTE) {
                        self.absolute_exports.push(e.name.to_string());
                    }
                }
            }
            Dylink0Subsection::ImportInfo(imports) => {
                if imports.len() > MAX_ENTRIES {
                    return Err(too_many("import-info"));
                }
                for i in imports {
                    if i.flags.contains(SymbolFlags::BINDING_WEAK) {
                        self.weak_imports
                            .push((i.module.to_string(), i.field.to_string()));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether symbol `name` is imported weak (matched by the import's name
    /// whatever its module, so that it covers the `GOT.mem`/`GOT.func`
    /// entries of the same symbol, as loaders do).
    pub fn is_weak(&self, name: &str) -> bool {
        self.weak_imports.iter().any(|(_, n)| n == name)
    }
}

/// The older `dylink` section: the four sizes, then the needed libraries.
fn legacy(mut r: BinaryReader<'_>) -> wasmparser::Result<DylinkInfo> {
    let mut info = DylinkInfo {
        memory_size: r.read_var_u32()?,
        memory_align: r.read_var_u32()?,
        table_size: r.read_var_u32()?,
        table_align: r.read_var_u32()?,
        legacy: true,
        ..DylinkInfo::default()
    };
    let count = r.read_var_u32()?;
    for _ in 0..count.min(MAX_ENTRIES as u32) {
        info.needed.push(r.read_unlimited_string()?.to_string());
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn custom(name: &str, payload: &[u8]) -> Vec<u8> {
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        let mut body = vec![name.len() as u8];
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(payload);
        module.push(0);
        module.push(body.len() as u8);
        module.extend(body);
        module
    }

    #[test]
    fn reads_dylink0() {
        // mem-info: 20 bytes aligned 2^3, 2 slots aligned 2^0; needed: "libb.so";
        // import-info: env.maybe weak.
        let mut p = vec![1, 4, 20, 3, 2, 0];
        p.extend([2, 9, 1, 7]);
        p.extend(b"libb.so");
        p.extend([4, 12, 1, 3]);
        p.extend(b"env");
        p.extend([5]);
        p.extend(b"maybe");
        p.push(1);
        let info = DylinkInfo::parse(&custom("dylink.0", &p)).unwrap().unwrap();
        assert_eq!((info.memory_size, info.memory_align), (20, 3));
        assert_eq!((info.table_size, info.table_align), (2, 0));
        assert_eq!(info.needed, ["libb.so"]);
        assert!(info.is_weak("maybe"));
        assert!(!info.legacy);
    }

    #[test]
    fn reads_legacy_dylink() {
        let mut p = vec![16, 2, 1, 0, 1, 3];
        p.extend(b"a.s");
        let info = DylinkInfo::parse(&custom("dylink", &p)).unwrap().unwrap();
        assert_eq!(info.memory_size, 16);
        assert_eq!(info.needed, ["a.s"]);
        assert!(info.legacy);
    }

    #[test]
    fn truncated_section_is_an_error() {
        assert!(matches!(
            DylinkInfo::parse(&custom("dylink", &[16, 2])),
            Err(DylinkError::Malformed { .. })
        ));
    }
}
