//! Where saved frames live, and how that area grows.
//!
//! Each instrumented instance has one *area* in the memory its asyncify code
//! writes to. A call that suspends unwinds into a *region* that starts at the
//! area's first free byte and may use everything up to the area's end; once
//! the unwind is done the region shrinks to what was written and belongs to
//! that call until it has rewound (or is cancelled). Several regions exist at
//! once only when calls nest (an import calling back into the instance), and
//! those finish in reverse order, so regions form a stack.
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
//! Every region's header tells the module where its region ends. When the
//! stack does not fit, this project's transform writes nothing past that end
//! but still advances `cur` by the size of every frame; Binaryen writes past
//! the end (at the end of memory that is an out-of-bounds trap, not a
//! corruption); older outputs trap before writing. In each case the linker
//! fails that call with [`Error::BufferOverflow`] (it cannot be replayed: it
//! had side effects) and raises the space later calls get: to what the module
//! reported it needed when it did, and at least double, up to
//! [`Linker::max_buffer_size`].
//!
//! [`Linker::fixed_buffer`]: crate::Linker::fixed_buffer
//! [`Linker::max_buffer_size`]: crate::Linker::max_buffer_size
//! [`Error::BufferOverflow`]: crate::Error::BufferOverflow

use std::ops::Range;

use wasmtime::{AsContext, AsContextMut, Memory};

use crate::Error;

/// Identifies one export call for the regions it holds.
pub(crate) type CallId = u64;

/// The embedder's choices for the asyncify buffer, set on the [`Linker`](crate::Linker).
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
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            initial: 1 << 20,
            max: 64 << 20,
            fixed: None,
            memory: None,
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
    /// Bytes of the area (0 until a call first suspends).
    pub capacity: u64,
    /// Bytes held by suspended calls.
    pub in_use: u64,
    /// Suspended calls holding a region.
    pub suspended: usize,
    /// Free bytes the next suspending call is promised at least.
    pub reserve: u64,
}

#[derive(Debug)]
struct Region {
    call: CallId,
    start: u64,
    end: u64,
}

/// The area and its regions for one instance.
#[derive(Debug)]
pub(crate) struct Buffer {
    module: String,
    memory: Result<Memory, String>,
    placement: Placement,
    mem64: bool,
    area: Option<Range<u64>>,
    held: Vec<Region>,
    /// The region being written by the unwind in progress.
    unwinding: Option<Region>,
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
            held: Vec::new(),
            unwinding: None,
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

    fn top(&self) -> u64 {
        match (&self.held.last(), &self.area) {
            (Some(r), _) => r.end,
            (None, Some(a)) => a.start,
            (None, None) => 0,
        }
    }

    fn no_memory(&self, reason: impl Into<String>) -> Error {
        Error::NoBufferMemory {
            module: self.module.clone(),
            reason: reason.into(),
        }
    }

    /// Starts a region for `call` at the first free byte, growing the area so
    /// that at least the promised space is free when possible, and writes its
    /// header. Returns the pointer to pass to `asyncify_start_unwind`.
    pub fn reserve(&mut self, mut store: impl AsContextMut, call: CallId) -> Result<u64, Error> {
        let memory = match &self.memory {
            Ok(m) => *m,
            Err(reason) => return Err(self.no_memory(reason.clone())),
        };
        let hdr = self.header_size();
        let need = self.want.max(2 * hdr);
        let size = memory.data_size(&store) as u64;
        match self.placement {
            Placement::Fixed(offset, len) => {
                if offset.checked_add(len).is_none_or(|end| end > size) {
                    return Err(self.no_memory(format!(
                        "the fixed buffer [{offset:#x}, +{len:#x}) is outside the memory ({size:#x} bytes)"
                    )));
                }
                self.area = Some(offset..offset + len);
            }
            Placement::WholeMemory => {
                self.area = Some(0..size);
                let top = self.top();
                if size - top < need {
                    // Only grows if the memory's maximum allows.
                    grow(&memory, &mut store, top + need - size);
                    self.area = Some(0..memory.data_size(&store) as u64);
                }
            }
            Placement::EndOfMemory => {
                let top = self.top();
                match self.area.clone() {
                    Some(a) if a.end - top >= need => {}
                    Some(a) if a.end == size => {
                        if grow(&memory, &mut store, top + need - a.end) {
                            self.area = Some(a.start..memory.data_size(&store) as u64);
                        }
                    }
                    // The guest grew its memory after the area: start a new
                    // area at the new end (the old pages are left unused).
                    Some(_) if self.held.is_empty() => {
                        if grow(&memory, &mut store, need) {
                            self.area = Some(size..memory.data_size(&store) as u64);
                        }
                    }
                    Some(_) => {}
                    None => {
                        if !grow(&memory, &mut store, need) && !grow(&memory, &mut store, hdr) {
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
                }
            }
        }
        let area = self.area.clone().unwrap_or(0..0);
        let start = self.top().max(area.start);
        if area.end < start + hdr {
            return Err(Error::BufferOverflow {
                size: 0,
                grown_to: None,
            });
        }
        self.write_header(&memory, &mut store, start, start + hdr, area.end)?;
        self.unwinding = Some(Region {
            call,
            start,
            end: area.end,
        });
        Ok(start)
    }

    /// Records the region written by `call`'s finished unwind. Fails (and
    /// resets the header) if the module wrote past the region's end.
    pub fn finish_unwind(
        &mut self,
        mut store: impl AsContextMut,
        call: CallId,
    ) -> Result<(), Error> {
        let Some(region) = self.unwinding.take_if(|r| r.call == call) else {
            return Err(Error::Protocol {
                module: self.module.clone(),
                message: "the instance is unwinding, but none of its imports started it".into(),
            });
        };
        let memory = self
            .memory
            .as_ref()
            .map_err(|e| self.no_memory(e.clone()))?;
        let (cur, end) = self.read_header(memory, &store, region.start)?;
        if cur > end || cur < region.start + self.header_size() {
            let size = region.end - region.start - self.header_size();
            // This project's transform (and Binaryen, which wrote it) leaves
            // `cur` advanced by the size of the whole stack.
            let needed = cur.checked_sub(region.start + self.header_size());
            self.reset_header(&mut store, region.start)?;
            return Err(Error::BufferOverflow {
                size,
                grown_to: self.grow_want(size, needed, &store),
            });
        }
        self.held.push(Region {
            call,
            start: region.start,
            end: cur,
        });
        Ok(())
    }

    /// After a trap while unwinding: resets the region's header so that
    /// `asyncify_stop_unwind` accepts it, and returns the overflow error to
    /// report (the space available, and what later calls get).
    pub fn abort_unwind(&mut self, mut store: impl AsContextMut) -> Result<Error, Error> {
        let Some(region) = self.unwinding.take() else {
            return Err(Error::Protocol {
                module: self.module.clone(),
                message: "the instance trapped while unwinding, but none of its imports started \
                          the unwind"
                    .into(),
            });
        };
        self.reset_header(&mut store, region.start)?;
        let size = region.end - region.start - self.header_size();
        let grown_to = self.grow_want(size, None, &store);
        Ok(Error::BufferOverflow { size, grown_to })
    }

    /// Resets the header of `call`'s region before a failed rewind is stopped.
    pub fn abort_rewind(
        &mut self,
        mut store: impl AsContextMut,
        call: CallId,
    ) -> Result<(), Error> {
        if let Some(start) = self.region_of(call) {
            self.reset_header(&mut store, start)?;
        }
        Ok(())
    }

    /// The pointer of the region `call` holds, to pass to `asyncify_start_rewind`.
    pub fn region_of(&self, call: CallId) -> Option<u64> {
        self.held.iter().find(|r| r.call == call).map(|r| r.start)
    }

    /// Frees whatever `call` holds.
    pub fn release(&mut self, call: CallId) {
        self.held.retain(|r| r.call != call);
        if self.unwinding.as_ref().is_some_and(|r| r.call == call) {
            self.unwinding = None;
        }
    }

    pub fn usage(&self) -> BufferUsage {
        BufferUsage {
            capacity: self.area.as_ref().map_or(0, |a| a.end - a.start),
            in_use: self.held.iter().map(|r| r.end - r.start).sum(),
            suspended: self.held.len(),
            reserve: self.want,
        }
    }

    /// Raises the promised space after an overflow of `size` bytes (the
    /// stack `needed` more, if known); returns the new promise, or `None` if
    /// the buffer cannot give more.
    fn grow_want(&mut self, size: u64, needed: Option<u64>, store: impl AsContext) -> Option<u64> {
        let growable = match (self.placement, &self.memory) {
            (Placement::Fixed(..), _) => false,
            (Placement::WholeMemory, Ok(m)) => {
                let ty = m.ty(&store);
                ty.maximum()
                    .is_none_or(|max| max * m.page_size(&store) > m.data_size(&store) as u64)
            }
            _ => true,
        };
        let doubled = size.max(self.want).saturating_mul(2);
        let fits = needed.map_or(0, |n| n.saturating_add(n / 2));
        let next = doubled.max(fits).min(self.max);
        if !growable || next <= size || needed.is_some_and(|n| n > next) {
            return None;
        }
        self.want = next;
        Some(next)
    }

    fn reset_header(&self, store: impl AsContextMut, start: u64) -> Result<(), Error> {
        let memory = self
            .memory
            .as_ref()
            .map_err(|e| self.no_memory(e.clone()))?;
        let end = self.area.as_ref().map_or(start, |a| a.end);
        self.write_header(memory, store, start, start + self.header_size(), end)
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
        memory
            .write(store, at as usize, &bytes[..n])
            .map_err(|_| self.no_memory(format!("the buffer header at {at:#x} is outside memory")))
    }

    fn read_header(
        &self,
        memory: &Memory,
        store: impl AsContext,
        at: u64,
    ) -> Result<(u64, u64), Error> {
        let mut bytes = [0u8; 16];
        let n = self.header_size() as usize;
        memory
            .read(store, at as usize, &mut bytes[..n])
            .map_err(|_| {
                self.no_memory(format!("the buffer header at {at:#x} is outside memory"))
            })?;
        Ok(if self.mem64 {
            (
                u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default()),
                u64::from_le_bytes(bytes[8..16].try_into().unwrap_or_default()),
            )
        } else {
            (
                u64::from(u32::from_le_bytes(
                    bytes[..4].try_into().unwrap_or_default(),
                )),
                u64::from(u32::from_le_bytes(
                    bytes[4..8].try_into().unwrap_or_default(),
                )),
            )
        })
    }
}

/// Grows `memory` by enough pages for `bytes` more; false if it cannot.
fn grow(memory: &Memory, mut store: impl AsContextMut, bytes: u64) -> bool {
    let page = memory.page_size(&store);
    let pages = bytes.div_ceil(page).max(1);
    memory.grow(&mut store, pages).is_ok()
}
