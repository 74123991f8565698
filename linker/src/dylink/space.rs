//! Regions of the shared memory and table handed to modules.
//!
//! The loader owns only what it grew itself: memory regions come from pages
//! it added at the end of the memory (the rest of the last such page is
//! used for the next small region), table regions from slots it appended.
//! All arithmetic is checked: sizes and alignments come from untrusted
//! modules.

use wasmtime::{AsContextMut, Memory, Ref, Table};

/// Lowest address a region may start at: address 0 is `NULL`, and the
/// first kilobyte stays unused as in Emscripten's layout.
pub(crate) const LOW_RESERVE: u64 = 1024;

/// The largest alignment a module may ask for, as a power of two (64 KiB,
/// a page).
const MAX_ALIGN_LOG2: u32 = 16;

/// Memory the loader grew and has not handed out yet.
#[derive(Debug, Default)]
pub(crate) struct Space {
    cursor: u64,
    end: u64,
}

impl Space {
    /// A space over `[start, end)` of a memory the loader made itself.
    pub fn owned(start: u64, end: u64) -> Space {
        Space { cursor: start, end }
    }

    /// A region of `size` bytes aligned to `2^align_log2` in `memory`;
    /// returns its address.
    pub fn alloc(
        &mut self,
        memory: Memory,
        mut store: impl AsContextMut,
        size: u64,
        align_log2: u32,
    ) -> Result<u32, String> {
        if align_log2 > MAX_ALIGN_LOG2 {
            return Err(format!(
                "it asks for memory aligned to 2^{align_log2} bytes (at most 2^{MAX_ALIGN_LOG2})"
            ));
        }
        let align = 1u64 << align_log2;
        if let Some(start) = align_up(self.cursor.max(LOW_RESERVE), align) {
            if let Some(end) = start.checked_add(size).filter(|&e| e <= self.end) {
                self.cursor = end;
                return to_u32(start);
            }
        }
        let size_now = memory.data_size(&store) as u64;
        let start = align_up(size_now.max(LOW_RESERVE), align)
            .ok_or_else(|| "the memory is full".to_string())?;
        let end = start
            .checked_add(size)
            .ok_or_else(|| format!("{size} bytes do not fit in a 32-bit memory"))?;
        if end > size_now {
            let page = memory.page_size(&store);
            let pages = (end - size_now).div_ceil(page);
            memory.grow(&mut store, pages).map_err(|e| {
                format!("the memory cannot grow by {pages} pages for {size} bytes: {e}")
            })?;
        }
        self.cursor = end;
        self.end = memory.data_size(&store) as u64;
        to_u32(start)
    }
}

/// Appends `size` null slots to `table`, the first at a multiple of
/// `2^align_log2`; returns the index of the first.
pub(crate) fn alloc_table(
    table: Table,
    mut store: impl AsContextMut,
    size: u64,
    align_log2: u32,
) -> Result<u32, String> {
    if align_log2 > MAX_ALIGN_LOG2 {
        return Err(format!(
            "it asks for table slots aligned to 2^{align_log2} (at most 2^{MAX_ALIGN_LOG2})"
        ));
    }
    let now = table.size(&store);
    // Slot 0 stays null: a function pointer 0 is `NULL`.
    let base = align_up(now.max(1), 1u64 << align_log2).ok_or("the table is full")?;
    let grow = base
        .checked_sub(now)
        .and_then(|pad| pad.checked_add(size))
        .ok_or("the table is full")?;
    if grow > 0 {
        table
            .grow(&mut store, grow, Ref::Func(None))
            .map_err(|e| format!("the table cannot grow by {grow} slots: {e}"))?;
    }
    to_u32(base)
}

fn align_up(value: u64, align: u64) -> Option<u64> {
    value.checked_add(align - 1).map(|v| v & !(align - 1))
}

fn to_u32(value: u64) -> Result<u32, String> {
    u32::try_from(value).map_err(|_| format!("address {value:#x} is beyond 32 bits"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::{MemoryType, Store};

    #[test]
    fn regions_are_aligned_fresh_and_checked() {
        let mut store = Store::<()>::default();
        let memory = Memory::new(&mut store, MemoryType::new(1, Some(3))).unwrap();
        let mut space = Space::default();
        // The first region starts after the existing page.
        assert_eq!(space.alloc(memory, &mut store, 10, 4), Ok(0x10000));
        // The next small one shares that page, aligned.
        assert_eq!(space.alloc(memory, &mut store, 4, 3), Ok(0x10010));
        assert_eq!(memory.size(&store), 2);
        assert!(space.alloc(memory, &mut store, 1 << 20, 0).is_err());
        assert!(space.alloc(memory, &mut store, 1, 40).is_err());
        assert!(space.alloc(memory, &mut store, u64::MAX, 0).is_err());
    }
}
