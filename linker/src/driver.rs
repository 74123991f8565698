//! The unwind/rewind loop over futures.
//!
//! An export call is a [`CallCore`] polled with the store:
//!
//! ```text
//! poll ─► call the export (plain, synchronous wasmtime call)
//!           import called ─► its future polled once with this poll's waker
//!                              ready:   return the value, no unwind
//!                              pending: keep the future, start_unwind, return zeros
//!         export returned: state 1 ─► stop_unwind ─► Poll::Pending
//! poll ─► poll the kept import future ─► pending: Poll::Pending
//!                                    └► ready: start_rewind, call the export again
//!                                        (same arguments); the import, rewinding,
//!                                        calls stop_rewind and returns the value
//! ```
//!
//! Between two polls the instance is always in the normal state and its stack
//! lives only in the call's buffer region, so dropping a suspended call just
//! frees its region: the instance keeps working.
//!
//! The host functions learn which call drives them from a thread-local stack
//! of [`Frame`]s, one per wasm call the driver is making; each async import
//! checks that the innermost frame belongs to its own instance.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use wasmtime::{AsContextMut, Result, StoreContextMut, Trap, Val};

use crate::access;
use crate::buffer::CallId;
use crate::runtime::{Runtime, NORMAL, REWINDING, UNWINDING};
use crate::Error;

/// The future of an async import, its values type-erased.
pub(crate) type ImportFuture = Pin<Box<dyn Future<Output = Result<Vec<Val>>> + Send>>;

/// One wasm call made by the driver (or a barrier, where no driver is).
struct Frame {
    /// `Runtime::id` of the instance called; `None` for a barrier.
    runtime: Option<usize>,
    call: CallId,
    /// The call's waker, lent for the duration of the wasm call: an import
    /// takes it while it polls its future and gives it back (moving it
    /// costs nothing, cloning a waker is an atomic operation).
    waker: Option<Waker>,
    /// The import's values, while rewinding to it.
    resume: Option<Vec<Val>>,
    /// Set by the import that started an unwind.
    pending: Option<ImportFuture>,
}

thread_local! {
    static FRAMES: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
}

/// Pops the frame it pushed, also when unwinding from a panic.
struct FrameGuard {
    depth: usize,
}

impl FrameGuard {
    fn push(frame: Frame) -> FrameGuard {
        FRAMES.with_borrow_mut(|frames| {
            frames.push(frame);
            FrameGuard {
                depth: frames.len(),
            }
        })
    }

    fn pop(self) -> Option<Frame> {
        let frame = FRAMES.with_borrow_mut(|frames| {
            frames.truncate(self.depth);
            if frames.len() == self.depth {
                frames.pop()
            } else {
                None
            }
        });
        std::mem::forget(self);
        frame
    }
}

impl Drop for FrameGuard {
    fn drop(&mut self) {
        FRAMES.with_borrow_mut(|frames| frames.truncate(self.depth - 1));
    }
}

/// Runs `f` under a barrier: async imports called inside it see no driver.
pub(crate) fn barrier<R>(f: impl FnOnce() -> R) -> R {
    let guard = FrameGuard::push(Frame {
        runtime: None,
        call: 0,
        waker: None,
        resume: None,
        pending: None,
    });
    let r = f();
    guard.pop();
    r
}

/// What an async import learns from the innermost frame.
pub(crate) enum Driven {
    /// A driver is calling into this import's instance: the waker to poll
    /// the import's future with, to hand back with [`give_back`] (or
    /// [`set_pending`]) to frame number `frame`.
    Normal {
        call: CallId,
        waker: Waker,
        frame: usize,
    },
    /// ...and is rewinding to this import: here are its values.
    Rewinding { call: CallId, values: Vec<Val> },
    /// No driver calls into this instance right now.
    No,
}

/// Looks at the innermost frame on behalf of an import of `runtime`.
pub(crate) fn driven(runtime: &Runtime) -> Driven {
    FRAMES.with_borrow_mut(|frames| {
        let index = frames.len().wrapping_sub(1);
        match frames.last_mut() {
            Some(frame) if frame.runtime == Some(runtime.id()) => match frame.resume.take() {
                Some(values) => Driven::Rewinding {
                    call: frame.call,
                    values,
                },
                None => match frame.waker.take() {
                    Some(waker) => Driven::Normal {
                        call: frame.call,
                        waker,
                        frame: index,
                    },
                    None => Driven::No,
                },
            },
            _ => Driven::No,
        }
    })
}

/// Gives the waker taken by [`driven`] back to its frame.
pub(crate) fn give_back(frame: usize, waker: Waker) {
    FRAMES.with_borrow_mut(|frames| {
        if let Some(frame) = frames.get_mut(frame) {
            frame.waker = Some(waker);
        }
    })
}

/// Hands the pending future of the import that started unwinding to the
/// driver, with the waker taken by [`driven`].
pub(crate) fn set_pending(frame: usize, future: ImportFuture, waker: Waker) {
    FRAMES.with_borrow_mut(|frames| {
        if let Some(frame) = frames.get_mut(frame) {
            frame.pending = Some(future);
            frame.waker = Some(waker);
        }
    })
}

fn next_call_id() -> CallId {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

enum Phase {
    Fresh,
    Suspended(ImportFuture),
    Done,
}

/// The state of one export call across polls.
pub(crate) struct CallCore<'r> {
    runtime: Option<&'r Runtime>,
    id: CallId,
    phase: Phase,
    /// Its bookkeeping on the instance is released (also set when a panic
    /// went through `poll`, by `Drop`).
    finished: bool,
    /// The waker of the last poll, kept so that polls with the same waker
    /// do not clone it again.
    waker: Option<Waker>,
}

impl<'r> CallCore<'r> {
    /// A call into an instance with `runtime` (`None`: not instrumented, the
    /// call is a plain synchronous call).
    pub fn new(runtime: Option<&'r Runtime>) -> CallCore<'r> {
        CallCore {
            runtime,
            id: next_call_id(),
            phase: Phase::Fresh,
            finished: false,
            waker: None,
        }
    }

    /// Advances the call. `invoke` makes the wasm call (the same one each
    /// time: same export, same arguments).
    pub fn poll<T: 'static, O>(
        &mut self,
        mut store: StoreContextMut<'_, T>,
        cx: &mut Context<'_>,
        mut invoke: impl FnMut(StoreContextMut<'_, T>) -> Result<O>,
    ) -> Poll<Result<O>> {
        let Some(rt) = self.runtime else {
            self.phase = Phase::Done;
            return Poll::Ready(invoke(store));
        };
        let resume = match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Fresh => {
                // No state check here: the linker leaves every instance in
                // the normal state between its calls, and the check after
                // each call catches a guest that does otherwise.
                rt.shared().active.push(self.id);
                None
            }
            Phase::Suspended(mut future) => {
                match access::publish(&mut store, || future.as_mut().poll(cx)) {
                    Poll::Pending => {
                        self.phase = Phase::Suspended(future);
                        return Poll::Pending;
                    }
                    Poll::Ready(Err(e)) => {
                        self.finish(rt);
                        return Poll::Ready(Err(e));
                    }
                    Poll::Ready(Ok(values)) => {
                        drop(future);
                        match self.start_rewind(rt, &mut store) {
                            Ok(()) => Some(values),
                            Err(e) => {
                                self.finish(rt);
                                return Poll::Ready(Err(e));
                            }
                        }
                    }
                }
            }
            Phase::Done => {
                return Poll::Ready(Err(rt
                    .protocol("an export call was polled after it completed")
                    .into()))
            }
        };

        let waker = match self.waker.take() {
            Some(waker) if waker.will_wake(cx.waker()) => waker,
            _ => cx.waker().clone(),
        };
        let guard = FrameGuard::push(Frame {
            runtime: Some(rt.id()),
            call: self.id,
            waker: Some(waker),
            resume,
            pending: None,
        });
        let out = invoke(store.as_context_mut());
        let frame = guard.pop();
        let (resume, pending) = match frame {
            Some(f) => {
                self.waker = f.waker;
                (f.resume, f.pending)
            }
            None => (None, None),
        };

        // An import that returned a pending future started the unwind
        // itself, and every frame between it and the export is
        // instrumented, so the state is known without asking the instance.
        let state = match (&out, &pending) {
            (Ok(_), Some(_)) => Ok(UNWINDING),
            _ => rt.state(&mut store),
        };
        let state = match state {
            Ok(state) => state,
            Err(e) => {
                self.finish(rt);
                return Poll::Ready(Err(e));
            }
        };
        let result = match (out, state) {
            (Ok(out), NORMAL) if resume.is_none() && pending.is_none() => Ok(out),
            (Ok(_), NORMAL) => Err(rt
                .protocol("a rewind ended without reaching the import that suspended")
                .into()),
            (Ok(_), UNWINDING) => match pending {
                Some(future) => match self.suspend(rt, &mut store) {
                    Ok(()) => {
                        self.phase = Phase::Suspended(future);
                        return Poll::Pending;
                    }
                    Err(e) => Err(e),
                },
                None => {
                    let _ = rt.stop_unwind(&mut store);
                    Err(rt
                        .protocol(
                            "the instance started unwinding by itself (asyncify.start_unwind); \
                             this linker only drives unwinds that its async imports start",
                        )
                        .into())
                }
            },
            (Err(trap), UNWINDING) => {
                Err(self.abort_unwind(rt, &mut store, trap, pending.is_some()))
            }
            (out, REWINDING) => {
                let e = match out {
                    Err(e) => e,
                    Ok(_) => rt
                        .protocol("a rewind returned without reaching the import that suspended")
                        .into(),
                };
                let _ = rt.shared().buffer.abort_rewind(&mut store, self.id);
                let _ = rt.stop_rewind(&mut store);
                Err(e)
            }
            (Err(e), _) => Err(e),
            (Ok(_), state) => Err(rt
                .protocol(format!("unknown asyncify state {state}"))
                .into()),
        };
        self.finish(rt);
        Poll::Ready(result)
    }

    /// The import finished: checks that this call may resume, then rewinds.
    fn start_rewind<T: 'static>(
        &mut self,
        rt: &Runtime,
        store: &mut StoreContextMut<'_, T>,
    ) -> Result<()> {
        let ptr = {
            let shared = rt.shared();
            if shared.active.last() != Some(&self.id) {
                return Err(Error::ResumeOrder {
                    module: rt.module.clone(),
                }
                .into());
            }
            shared
                .buffer
                .region_of(self.id)
                .ok_or_else(|| rt.protocol("a suspended call lost its buffer region"))?
        };
        rt.start_rewind(store, ptr)
    }

    /// The export returned while unwinding: keep the region, stop unwinding.
    fn suspend<T: 'static>(
        &mut self,
        rt: &Runtime,
        store: &mut StoreContextMut<'_, T>,
    ) -> Result<()> {
        let recorded = rt.shared().buffer.finish_unwind(&mut *store, self.id);
        let stopped = rt.stop_unwind(&mut *store);
        recorded?;
        stopped
    }

    /// The export trapped while unwinding: most likely the saved stack did
    /// not fit. Put the instance back to normal and say so.
    fn abort_unwind<T: 'static>(
        &mut self,
        rt: &Runtime,
        store: &mut StoreContextMut<'_, T>,
        trap: wasmtime::Error,
        started_by_import: bool,
    ) -> wasmtime::Error {
        let overflow = rt.shared().buffer.abort_unwind(&mut *store);
        let _ = rt.stop_unwind(&mut *store);
        let looks_like_overflow = matches!(
            trap.downcast_ref::<Trap>(),
            Some(Trap::UnreachableCodeReached | Trap::MemoryOutOfBounds)
        );
        match overflow {
            Ok(overflow) if started_by_import && looks_like_overflow => overflow.into(),
            _ => trap,
        }
    }

    fn finish(&mut self, rt: &Runtime) {
        self.phase = Phase::Done;
        self.finished = true;
        let mut shared = rt.shared();
        shared.active.retain(|&id| id != self.id);
        shared.buffer.release(self.id);
    }
}

impl Drop for CallCore<'_> {
    fn drop(&mut self) {
        if let (Some(rt), false) = (self.runtime, self.finished) {
            // Cancelled: the instance is in the normal state between polls,
            // so forgetting the saved stack is all there is to do.
            self.finish(rt);
        }
    }
}

/// A waker for calls that cannot wait.
pub(crate) fn noop_context() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

/// Runs `core` to completion if it never has to wait; otherwise cancels it
/// and returns `Err(None)`.
pub(crate) fn run_without_waiting<T: 'static, O>(
    core: &mut CallCore<'_>,
    store: StoreContextMut<'_, T>,
    invoke: impl FnMut(StoreContextMut<'_, T>) -> Result<O>,
) -> std::result::Result<Result<O>, ()> {
    match core.poll(store, &mut noop_context(), invoke) {
        Poll::Ready(r) => Ok(r),
        Poll::Pending => Err(()),
    }
}
