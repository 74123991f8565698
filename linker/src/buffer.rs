//! Where saved frames are written and read, and where they are kept while
//! their call is suspended.
//!
//! Each instrumented instance has one *area* in the memory its asyncify code
//! writes to. A call that suspends unwinds into the area: the header at its
//! start, frames from there up to its end. Once the unwind is done the
//! linker copies the frames out to host memory, where the guest cannot reach
//! them, and the area is free again; before the call rewinds, its frames are
//! copied back and the header written afresh. So a suspended call's saved
//! stack cannot be rewritten by the guest (by a nested call into the same
//! instance, or another instance sharing the memory), and all calls of an
//! instance share the one area: it needs room for the largest stack one call
//! saves, not for all suspended calls at once.
//!
//! The area is placed, in this order of preference:
//! - in the secondary memory the module exports as `asyncify_memory`
//!   (`asyncify instrument --secondary-memory`): the whole memory is the area;
//! - at a fixed place chosen by the embedder ([`Linker::fixed_buffer`]);
//! - otherwise in new pages that the linker grows at the end of the module's
//!   memory the first time a call suspends. The guest's allocator never hands
//!   these pages out as long as it gets memory through `memory.grow` (wasi-libc,
//!   Rust, dlmalloc do); allocators that claim every page up to `memory.size`
//!   (AssemblyScript's, Emscripten's `sbrk`) need one of the other placements.
//!
//! The header tells the module where the area ends. When the stack does not
//! fit, this project's transform writes nothing past that end but still
//! advances `cur` by the size of every frame; Binaryen writes past the end
//! (at the end of memory that is an out-of-bounds trap, not a corruption).
//! Either way the linker fails that call with [`Error::BufferOverflow`] (it
//! cannot be replayed: it had side effects) and raises the space later calls
//! get: to what the module reported it needed when it did, and at least
//! double, up to [`Linker::max_buffer_size`] and to what the memory can
//! really give (the area grows at once, so the promise in the error is kept).
//!
//! Nothing read back from the guest is trusted: the `cur` of the header is
//! checked against the area the linker handed out (never against the `end`
//! the guest may have rewritten), all arithmetic on it is checked, and the
//! header is written by the linker before every unwind and every rewind.
//!
//! [`Linker::fixed_buffer`]: crate::Linker::fixed_buffer
//! [`Linker::max_buffer_size`]: crate::Linker::max_buffer_size
//! [`Error::BufferOverflow`]: crate::Error::BufferOverflow

use std::ops::Range;

use wasmtime::{AsContext, AsContextMut, Memory};

use crate::Error;

/// Identifies one export call for the saved stack it holds.
pub(crate) type CallId = u64;

/// The embedder's choices for the asyncify buffer (and the nesting limit,
/// which travels with them), set on the [`Linker`](crate::Linker).
#[derive(Clone, Debug)]
pub(crate) struct BufferConfig {
    /// Free bytes a suspending call gets at least.
    pub initial: u64,
    /// Most free bytes a suspending call can get after overflows.
    pub max: u64,
    /// A fixed `[offset, offset + len)` in the module's memory.
    pub fixed: Option<(u64, u64)>,
    /// The export naming the memory the module was instrumented to use.
    pub memory: Option<String>,
    /// Most bytes of host stack that calls nested inside async imports use.
    pub nesting_stack: u64,
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            initial: 1 << 20,
            max: 64 << 20,
            fixed: None,
            memory: None,
            nesting_stack: 1 << 20,
        }
    }
}

/// How the area may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// New pages at the end of a shared memory; may move to a new end.
    EndOfMemory,
    /// The whole of a memory only asyncify uses (`asyncify_memory`).
    WholeMemory,
    /// A fixed range chosen by the embedder.
    Fixed(u64, u64),
}

/// How much of the asyncify buffer is in use, from [`Instance::buffer_usage`].
///
/// [`Instance::buffer_usage`]: crate::Instance::buffer_usage
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BufferUsage {
    /// Bytes of the area in the guest's memory (0 until a call first
    /// suspends).
    pub capacity: u64,
    /// Bytes of saved stacks held by suspended calls (kept in host memory,
    /// out of the guest's reach).
    pub in_use: u64,
    /// Suspended calls holding a saved stack.
    pub suspended: usize,
    /// Free bytes the next suspending call is promised at least.
    pub reserve: u64,
}

/// What the area is being used for right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Busy {
    Unwind,
    Rewind,
}

/// Spare allocations kept for saved stacks, so that suspending does not
/// allocate each time.
const SPARES: usize = 4;

/// The area and the saved stacks of one instance.
#[derive(Debug)]
pub(crate) struct Buffer {
    module: String,
    memory: Result<Memory, String>,
    placement: Placement,
    mem64: bool,
    area: Option<Range<u64>>,
    /// The frames of each suspended call, copied out of the guest's memory.
    saved: Vec<(CallId, Vec<u8>)>,
    /// The call unwinding into, or rewinding from, the area.
    busy: Option<(CallId, Busy)>,
    spare: Vec<Vec<u8>>,
    want: u64,
    max: u64,
}

impl Buffer {
    /// A buffer in `memory` (or the reason there is none).
    pub fn new(
        module: String,
        memory: Result<Memory, String>,
        placement: Placement,
        mem64: bool,
        config: &BufferConfig,
    ) -> Buffer {
        Buffer {
            module,
            memory,
            placement,
            mem64,
            area: None,
            saved: Vec::new(),
            busy: None,
            spare: Vec::new(),
            want: config.initial.max(64),
            max: config.max.max(config.initial),
        }
    }

    fn header_size(&self) -> u64 {
        if self.mem64 {
            16
        } else {
            8
        }
    }

    fn no_memory(&self, reason: impl Into<String>) -> Error {
        Error::NoBufferMemory {
            module: self.module.clone(),
            reason: reason.into(),
        }
    }

    fn protocol(&self, message: impl Into<String>) -> Error {
        Error::Protocol {
            module: self.module.clone(),
            message: message.into(),
        }
    }

    fn memory(&self) -> Result<Memory, Error> {
        match &self.memory {
            Ok(m) => Ok(*m),
            Err(reason) => Err(self.no_memory(reason.clone())),
        }
    }

    /// Makes the area hold at least `free` bytes after the header when it
    /// can (growing memory within its maximum), and returns it.
    fn ensure_area(
        &mut self,
        memory: &Memory,
        mut store: impl AsContextMut,
        free: u64,
    ) -> Result<Range<u64>, Error> {
        let hdr = self.header_size();
        let need = free.saturating_add(hdr);
        let size = memory.data_size(&store) as u64;
        let area = self.place(memory, &mut store, need, size)?;
        // A 32-bit header cannot say that the area ends at 4 GiB.
        let limit = if self.mem64 {
            u64::MAX
        } else {
            u64::from(u32::MAX)
        };
        let area = area.start.min(limit)..area.end.min(limit);
        self.area = Some(area.clone());
        Ok(area)
    }

    fn place(
        &mut self,
        memory: &Memory,
        mut store: impl AsContextMut,
        need: u64,
        size: u64,
    ) -> Result<Range<u64>, Error> {
        let hdr = self.header_size();
        match self.placement {
            Placement::Fixed(offset, len) => match offset.checked_add(len) {
                Some(end) if end <= size => self.area = Some(offset..end),
                _ => {
                    return Err(self.no_memory(format!(
                        "the fixed buffer [{offset:#x}, +{len:#x}) is outside the memory \
                         ({size:#x} bytes)"
                    )))
                }
            },
            Placement::WholeMemory => {
                if size < need {
                    grow_towards(memory, &mut store, need - size);
                }
                self.area = Some(0..memory.data_size(&store) as u64);
            }
            Placement::EndOfMemory => match self.area.clone() {
                Some(a) if a.end <= size && a.end - a.start >= need => {}
                Some(a) if a.end == size => {
                    if grow_towards(memory, &mut store, need - (a.end - a.start)) {
                        self.area = Some(a.start..memory.data_size(&store) as u64);
                    }
                }
                // The guest grew its memory after the area. Nothing is kept
                // there between calls, so a larger area can start at the new
                // end (the old pages stay unused).
                Some(_) => {
                    if grow(memory, &mut store, need) {
                        self.area = Some(size..memory.data_size(&store) as u64);
                    }
                }
                None => {
                    if !grow_towards(memory, &mut store, need) && !grow(memory, &mut store, hdr) {
                        return Err(self.no_memory(format!(
                            "its memory cannot grow (it has {} pages, maximum {}); \
                             instrument it with `--secondary-memory`, or give the linker \
                             a `fixed_buffer`",
                            size / memory.page_size(&store),
                            memory
                                .ty(&store)
                                .maximum()
                                .map_or("none".to_string(), |m| m.to_string()),
                        )));
                    }
                    self.area = Some(size..memory.data_size(&store) as u64);
                }
            },
        }
        Ok(self.area.clone().unwrap_or(0..0))
    }

    /// Prepares the area for `call`'s unwind, growing it so that at least
    /// the promised space is free when possible, and writes the header.
    /// Returns the pointer to pass to `asyncify_start_unwind`.
    pub fn reserve(&mut self, mut store: impl AsContextMut, call: CallId) -> Result<u64, Error> {
        if let Some((_, busy)) = self.busy {
            return Err(self.protocol(format!(
                "an import started an unwind while the instance was {}",
                match busy {
                    Busy::Unwind => "already unwinding",
                    Busy::Rewind => "rewinding",
                }
            )));
        }
        let memory = self.memory()?;
        let hdr = self.header_size();
        let area = self.ensure_area(&memory, &mut store, self.want)?;
        if area.end - area.start < hdr {
            return Err(Error::BufferOverflow {
                size: 0,
                grown_to: None,
            });
        }
        self.write_header(&memory, &mut store, area.start, area.start + hdr, area.end)?;
        self.busy = Some((call, Busy::Unwind));
        Ok(area.start)
    }

    /// Copies the frames written by `call`'s finished unwind out of the
    /// guest's memory. Fails (and resets the header) if the module wrote
    /// past the area, or reports a `cur` outside it.
    pub fn finish_unwind(
        &mut self,
        mut store: impl AsContextMut,
        call: CallId,
    ) -> Result<(), Error> {
        if self.busy != Some((call, Busy::Unwind)) {
            return Err(
                self.protocol("the instance is unwinding, but none of its imports started it")
            );
        }
        self.busy = None;
        let memory = self.memory()?;
        let area = self.area.clone().unwrap_or(0..0);
        let first = area.start + self.header_size();
        // Only `cur` is read: the `end` in the header is the guest's to
        // rewrite, the area's end is the linker's.
        let cur = self.read_cur(&memory, &store, area.start)?;
        if cur > area.end {
            let size = area.end - first;
            // This project's transform (and Binaryen, which wrote it) leaves
            // `cur` advanced by the size of the whole stack.
            let needed = cur - first;
            let grown_to = self.grow_want(&memory, &mut store, size, Some(needed));
            self.reset(&mut store);
            return Err(Error::BufferOverflow { size, grown_to });
        }
        let frames = match usize_range(first, cur) {
            Some(range) => memory.data(&store).get(range),
            None => None,
        };
        let Some(frames) = frames else {
            self.reset(&mut store);
            return Err(self.protocol(format!(
                "after unwinding, its buffer header says the saved stack ends at {cur:#x}, \
                 before the area for frames starts ({first:#x})"
            )));
        };
        // The suspended calls of an instance keep at most
        // `Linker::max_buffer_size` bytes in host memory, all together (as
        // they did when they shared the area), so nesting cannot multiply it.
        let held: u64 = self.saved.iter().map(|(_, f)| f.len() as u64).sum();
        let len = frames.len() as u64;
        if held.saturating_add(len) > self.max {
            let size = self.max.saturating_sub(held);
            self.reset(&mut store);
            return Err(Error::BufferOverflow {
                size,
                grown_to: None,
            });
        }
        let mut kept = self.spare.pop().unwrap_or_default();
        kept.clear();
        kept.extend_from_slice(frames);
        self.saved.push((call, kept));
        Ok(())
    }

    /// After a trap while `call` was unwinding: resets the header so that
    /// `asyncify_stop_unwind` accepts it, and returns the overflow error to
    /// report if the stack did not fit: `cur` past the area, or (Binaryen
    /// writes past the end) `out_of_bounds`.
    pub fn abort_unwind(
        &mut self,
        mut store: impl AsContextMut,
        call: CallId,
        out_of_bounds: bool,
    ) -> Option<Error> {
        if self.busy != Some((call, Busy::Unwind)) {
            return None;
        }
        self.busy = None;
        let memory = self.memory().ok()?;
        let area = self.area.clone()?;
        let first = area.start + self.header_size();
        let size = area.end - first;
        let cur = self.read_cur(&memory, &store, area.start).ok();
        let overflow = match cur {
            Some(cur) if cur > area.end => {
                Some(self.grow_want(&memory, &mut store, size, Some(cur - first)))
            }
            _ if out_of_bounds => Some(self.grow_want(&memory, &mut store, size, None)),
            _ => None,
        };
        self.reset(&mut store);
        overflow.map(|grown_to| Error::BufferOverflow { size, grown_to })
    }

    /// Copies `call`'s saved frames back into the area and writes the
    /// header; returns the pointer to pass to `asyncify_start_rewind`.
    pub fn start_rewind(
        &mut self,
        mut store: impl AsContextMut,
        call: CallId,
    ) -> Result<u64, Error> {
        if self.busy.is_some() {
            return Err(self.protocol("a rewind was to start while the area was in use"));
        }
        let Some(index) = self.saved.iter().rposition(|(c, _)| *c == call) else {
            return Err(self.protocol("a suspended call lost its saved stack"));
        };
        let memory = self.memory()?;
        let len = self.saved[index].1.len() as u64;
        let area = self.ensure_area(&memory, &mut store, len)?;
        let first = area.start + self.header_size();
        let (_, frames) = self.saved.remove(index);
        let target = first
            .checked_add(len)
            .filter(|&end| end <= area.end)
            .and_then(|end| usize_range(first, end));
        let copied = target.and_then(|range| {
            let slot = memory.data_mut(&mut store).get_mut(range)?;
            slot.copy_from_slice(&frames);
            Some(())
        });
        self.recycle(frames);
        if copied.is_none() {
            return Err(self.no_memory(format!(
                "a suspended call's saved stack ({len} bytes) no longer fits its area \
                 [{:#x}, {:#x})",
                area.start, area.end
            )));
        }
        self.write_header(&memory, &mut store, area.start, first + len, area.end)?;
        self.busy = Some((call, Busy::Rewind));
        Ok(area.start)
    }

    /// The rewind of `call` reached its import: the area is free again.
    pub fn finish_rewind(&mut self, call: CallId) {
        if self.busy == Some((call, Busy::Rewind)) {
            self.busy = None;
        }
    }

    /// Forgets whatever `call` holds.
    pub fn release(&mut self, call: CallId) {
        if let Some(index) = self.saved.iter().rposition(|(c, _)| *c == call) {
            let (_, frames) = self.saved.remove(index);
            self.recycle(frames);
        }
        if self.busy.is_some_and(|(c, _)| c == call) {
            self.busy = None;
        }
    }

    /// After a failure: the area is free, and its header valid (so that the
    /// stop functions, which check it, accept it).
    pub fn reset(&mut self, store: impl AsContextMut) {
        self.busy = None;
        if let (Ok(memory), Some(area)) = (&self.memory, &self.area) {
            let cur = area.start + self.header_size();
            if cur <= area.end {
                let _ = self.write_header(memory, store, area.start, cur, area.end);
            }
        }
    }

    /// A valid header (nothing saved) at the start of the area, creating
    /// the area if there is none yet; its address, for the linker to point
    /// the guest's data pointer at when the guest left it invalid.
    pub fn valid_header(&mut self, mut store: impl AsContextMut) -> Option<u64> {
        let memory = self.memory().ok()?;
        let area = match self.area.clone() {
            Some(area) => area,
            None => self.ensure_area(&memory, &mut store, 0).ok()?,
        };
        self.busy = None;
        let cur = area.start.checked_add(self.header_size())?;
        if cur > area.end {
            return None;
        }
        self.write_header(&memory, store, area.start, cur, area.end)
            .ok()?;
        Some(area.start)
    }

    pub fn usage(&self) -> BufferUsage {
        BufferUsage {
            capacity: self.area.as_ref().map_or(0, |a| a.end - a.start),
            in_use: self.saved.iter().map(|(_, f)| f.len() as u64).sum(),
            suspended: self.saved.len(),
            reserve: self.want,
        }
    }

    fn recycle(&mut self, frames: Vec<u8>) {
        if self.spare.len() < SPARES {
            self.spare.push(frames);
        }
    }

    /// Raises the promised space after an overflow of `size` bytes (the
    /// stack `needed` more, if known), growing the area now so that the
    /// promise holds; returns the new promise, or `None` if the buffer
    /// cannot give more than `size`.
    fn grow_want(
        &mut self,
        memory: &Memory,
        mut store: impl AsContextMut,
        size: u64,
        needed: Option<u64>,
    ) -> Option<u64> {
        let doubled = size.max(self.want).saturating_mul(2);
        let fits = needed.map_or(0, |n| n.saturating_add(n / 2));
        let next = doubled.max(fits).min(self.max);
        if next <= size || needed.is_some_and(|n| n > next) {
            return None;
        }
        let area = self.ensure_area(memory, &mut store, next).ok()?;
        let got = (area.end - area.start)
            .saturating_sub(self.header_size())
            .min(next);
        if got <= size {
            return None;
        }
        self.want = got;
        Some(got)
    }

    fn write_header(
        &self,
        memory: &Memory,
        store: impl AsContextMut,
        at: u64,
        cur: u64,
        end: u64,
    ) -> Result<(), Error> {
        let mut bytes = [0u8; 16];
        let n = if self.mem64 {
            bytes[..8].copy_from_slice(&cur.to_le_bytes());
            bytes[8..].copy_from_slice(&end.to_le_bytes());
            16
        } else {
            bytes[..4].copy_from_slice(&(cur as u32).to_le_bytes());
            bytes[4..8].copy_from_slice(&(end as u32).to_le_bytes());
            8
        };
        let at = usize::try_from(at).unwrap_or(usize::MAX);
        memory
            .write(store, at, &bytes[..n])
            .map_err(|_| self.no_memory(format!("the buffer header at {at:#x} is outside memory")))
    }

    /// The `cur` field of the header at `at`.
    fn read_cur(&self, memory: &Memory, store: impl AsContext, at: u64) -> Result<u64, Error> {
        let mut bytes = [0u8; 8];
        let n = if self.mem64 { 8 } else { 4 };
        let at = usize::try_from(at).unwrap_or(usize::MAX);
        memory.read(store, at, &mut bytes[..n]).map_err(|_| {
            self.no_memory(format!("the buffer header at {at:#x} is outside memory"))
        })?;
        Ok(u64::from_le_bytes(bytes))
    }
}

/// `start..end` as indices into host memory, if `start <= end`.
fn usize_range(start: u64, end: u64) -> Option<Range<usize>> {
    if start > end {
        return None;
    }
    Some(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
}

/// Grows `memory` by enough pages for `bytes` more; false if it cannot.
fn grow(memory: &Memory, mut store: impl AsContextMut, bytes: u64) -> bool {
    let page = memory.page_size(&store);
    let pages = bytes.div_ceil(page).max(1);
    memory.grow(&mut store, pages).is_ok()
}

/// Grows `memory` by enough pages for `bytes` more, or if its maximum does
/// not allow that, by as many pages as it allows; false if it grew by none.
fn grow_towards(memory: &Memory, mut store: impl AsContextMut, bytes: u64) -> bool {
    if grow(memory, &mut store, bytes) {
        return true;
    }
    let ty = memory.ty(&store);
    let page = memory.page_size(&store);
    let absolute = if ty.is_64() {
        1 << 48
    } else {
        (1u64 << 32) / page
    };
    let max = ty.maximum().unwrap_or(absolute).min(absolute);
    let left = max.saturating_sub(memory.size(&store));
    left > 0 && memory.grow(&mut store, left).is_ok()
}
