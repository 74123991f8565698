//! The unwind/rewind loop over futures.
//!
//! An export call is a [`CallCore`] polled with the store:
//!
//! ```text
//! poll ─► call the export (plain, synchronous wasmtime call)
//!           import called ─► its future polled once with this poll's waker
//!                              ready:   return the value, no unwind
//!                              pending: keep the future, start_unwind, return zeros
//!         export returned: state 1 ─► copy the frames out, stop_unwind ─► Poll::Pending
//! poll ─► poll the kept import future ─► pending: Poll::Pending
//!                                    └► ready: copy the frames back, start_rewind,
//!                                        call the export again (same arguments); the
//!                                        import, rewinding, calls stop_rewind and
//!                                        returns the value
//! ```
//!
//! Between two polls the instance is always in the normal state and a
//! suspended call's stack lives only in host memory, so dropping a suspended
//! call just frees it: the instance keeps working. When anything fails in the
//! middle of the protocol, [`CallCore::recover`] puts the instance back in the
//! normal state, or marks it unusable.
//!
//! Nothing the guest returns is trusted: the state after each call is
//! checked, runtime functions may not call imports (checked in the imports,
//! through [`runtime::protocol_step`]), and calls nested inside imports are
//! bounded by the host stack they use ([`Nesting`]).
//!
//! The host functions learn which call drives them from a thread-local stack
//! of [`Frame`]s, one per wasm call the driver is making; each async import
//! checks that the innermost frame belongs to its own instance.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use asyncify_abi::State;
use wasmtime::{AsContextMut, Result, StoreContextMut, Trap, Val};

use crate::access;
use crate::buffer::CallId;
use crate::runtime::{self, Runtime};
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
    /// Set by the import that started an unwind: its future and its name.
    pending: Option<(ImportFuture, Arc<ImportName>)>,
    /// Budget the call has spent in yield checks (see [`charge`]), carried
    /// from and back to its [`CallCore`].
    spent: u64,
}

/// The name of an async import, for messages.
#[derive(Debug)]
pub(crate) struct ImportName {
    pub module: String,
    pub name: String,
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
        spent: 0,
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
    /// ...and is unwinding from import `first`, which started it: no import
    /// may be called now (the code that called `first` was not instrumented
    /// to unwind).
    Unwinding { first: Arc<ImportName> },
    /// No driver calls into this instance right now.
    No,
}

/// Looks at the innermost frame on behalf of an import of `runtime`.
pub(crate) fn driven(runtime: &Runtime) -> Driven {
    FRAMES.with_borrow_mut(|frames| {
        let index = frames.len().wrapping_sub(1);
        match frames.last_mut() {
            Some(frame) if frame.runtime == Some(runtime.id()) => {
                if let Some(values) = frame.resume.take() {
                    return Driven::Rewinding {
                        call: frame.call,
                        values,
                    };
                }
                if let Some((_, first)) = &frame.pending {
                    return Driven::Unwinding {
                        first: first.clone(),
                    };
                }
                match frame.waker.take() {
                    Some(waker) => Driven::Normal {
                        call: frame.call,
                        waker,
                        frame: index,
                    },
                    None => Driven::No,
                }
            }
            _ => Driven::No,
        }
    })
}

/// Adds `units` to the budget spent by the call the driver is making into
/// the instance of the innermost frame, and returns its new total; `None`
/// when no driver is making a call there (a barrier, or no frame).
pub(crate) fn charge(units: u64) -> Option<u64> {
    FRAMES.with_borrow_mut(|frames| {
        let frame = frames.last_mut().filter(|f| f.runtime.is_some())?;
        frame.spent = frame.spent.saturating_add(units);
        Some(frame.spent)
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
pub(crate) fn set_pending(
    frame: usize,
    future: ImportFuture,
    import: Arc<ImportName>,
    waker: Waker,
) {
    FRAMES.with_borrow_mut(|frames| {
        if let Some(frame) = frames.get_mut(frame) {
            frame.pending = Some((future, import));
            frame.waker = Some(waker);
        }
    })
}

fn next_call_id() -> CallId {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

thread_local! {
    /// Driver polls in progress on this thread, and the host stack address
    /// where the outermost one started.
    static NESTING: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// One driver poll in progress; keeps the nesting count.
struct Nesting;

impl Nesting {
    /// Enters a poll, unless the polls in progress on this thread (calls
    /// nested inside async imports) already use more than `limit` bytes of
    /// the host stack. The stack is measured, not the number of levels, so
    /// the limit holds whatever each level costs.
    fn enter(limit: u64) -> Result<Nesting, Error> {
        let marker = 0u8;
        let here = std::hint::black_box(&marker) as *const u8 as usize;
        let (depth, base) = NESTING.get();
        let base = if depth == 0 { here } else { base };
        let used = base.abs_diff(here) as u64;
        if used > limit {
            return Err(Error::TooDeep { used, limit });
        }
        NESTING.set((depth + 1, base));
        Ok(Nesting)
    }
}

impl Drop for Nesting {
    fn drop(&mut self) {
        let (depth, base) = NESTING.get();
        NESTING.set((depth.saturating_sub(1), base));
    }
}

enum Phase {
    Fresh,
    Suspended(ImportFuture),
    Done,
}

/// How a wasm call driven by [`CallCore::poll`] ended.
enum Outcome<O> {
    Finished(Result<O>),
    Suspended(ImportFuture),
    /// Failed, and the instance may not be in the normal state.
    Failed(wasmtime::Error),
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
    /// Budget spent in yield checks so far (see [`charge`]).
    spent: u64,
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
            spent: 0,
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
        if let Some(step) = runtime::protocol_step() {
            self.finish(rt);
            return Poll::Ready(Err(rt
                .protocol(format!(
                    "a call into it was made from inside `{step}`; the linker calls the runtime \
                     functions to drive the protocol, and they must not call back into it"
                ))
                .into()));
        }
        let _nesting = match Nesting::enter(rt.nesting_stack) {
            Ok(nesting) => nesting,
            Err(e) => {
                self.finish(rt);
                return Poll::Ready(Err(e.into()));
            }
        };
        let resume = match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Fresh => {
                // No state check here: the linker leaves every instance in
                // the normal state between its calls (or marks it broken),
                // and the check after each call catches a guest that does
                // otherwise.
                let mut shared = rt.shared();
                if let Some(reason) = &shared.broken {
                    let e = rt.unusable(reason);
                    drop(shared);
                    self.finish(rt);
                    return Poll::Ready(Err(e.into()));
                }
                shared.active.push(self.id);
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
                                self.recover(rt, &mut store);
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
            spent: self.spent,
        });
        let out = invoke(store.as_context_mut());
        let frame = guard.pop();
        let (resume, pending) = match frame {
            Some(f) => {
                self.waker = f.waker;
                self.spent = f.spent;
                (f.resume, f.pending)
            }
            None => (None, None),
        };
        match self.outcome(rt, &mut store, out, resume.is_some(), pending) {
            Outcome::Suspended(future) => {
                self.phase = Phase::Suspended(future);
                Poll::Pending
            }
            Outcome::Finished(result) => {
                self.finish(rt);
                Poll::Ready(result)
            }
            Outcome::Failed(e) => {
                self.recover(rt, &mut store);
                self.finish(rt);
                Poll::Ready(Err(e))
            }
        }
    }

    /// Decides how the wasm call ended, from its result, what happened in
    /// it, and the instance's state.
    fn outcome<T: 'static, O>(
        &mut self,
        rt: &Runtime,
        store: &mut StoreContextMut<'_, T>,
        out: Result<O>,
        resume_left: bool,
        pending: Option<(ImportFuture, Arc<ImportName>)>,
    ) -> Outcome<O> {
        // An import that returned a pending future started the unwind
        // itself, and every frame between it and the export is
        // instrumented, so the state is known without asking the instance.
        // (A guest that lies about it fails at the rewind.)
        let pending = match (out.is_ok(), pending) {
            (true, Some((future, _))) => {
                return match self.suspend(rt, store) {
                    Ok(()) => Outcome::Suspended(future),
                    Err(e) => Outcome::Failed(e),
                };
            }
            (_, pending) => pending,
        };
        let raw = match rt.state(&mut *store) {
            Ok(state) => state,
            Err(e) => return Outcome::Failed(out.err().unwrap_or(e)),
        };
        match (out, State::from_value(raw)) {
            (Ok(out), Some(State::Normal)) if !resume_left => Outcome::Finished(Ok(out)),
            (Ok(_), Some(State::Normal)) => Outcome::Failed(
                rt.protocol("a rewind ended without reaching the import that suspended")
                    .into(),
            ),
            (Err(e), Some(State::Normal)) => Outcome::Finished(Err(e)),
            (Ok(_), Some(State::Unwinding)) => Outcome::Failed(
                rt.protocol(
                    "the instance started unwinding by itself (asyncify.start_unwind); \
                     this linker only drives unwinds that its async imports start",
                )
                .into(),
            ),
            (Err(trap), Some(State::Unwinding)) => match pending {
                Some((_, import)) => Outcome::Failed(self.unwind_failure(rt, store, trap, &import)),
                None => Outcome::Failed(trap),
            },
            (Ok(_), Some(State::Rewinding)) if resume_left => Outcome::Failed(
                rt.protocol("a rewind returned without reaching the import that suspended")
                    .into(),
            ),
            (Ok(_), Some(State::Rewinding)) => Outcome::Failed(
                rt.protocol(
                    "the rewind reached the import, but the instance stayed in the rewinding \
                     state (its `asyncify_stop_rewind` did not reset it)",
                )
                .into(),
            ),
            (Err(e), _) => Outcome::Failed(e),
            (Ok(_), None) => {
                Outcome::Failed(rt.protocol(format!("unknown asyncify state {raw}")).into())
            }
        }
    }

    /// The export trapped while unwinding from `import`: the saved stack
    /// did not fit, or the code that called the import was not instrumented
    /// to unwind (asyncify asserts trap then), or some other trap.
    fn unwind_failure<T: 'static>(
        &mut self,
        rt: &Runtime,
        store: &mut StoreContextMut<'_, T>,
        trap: wasmtime::Error,
        import: &ImportName,
    ) -> wasmtime::Error {
        if trap.downcast_ref::<Error>().is_some() {
            // The linker's own error, from an import: it says it all.
            return trap;
        }
        let kind = trap.downcast_ref::<Trap>();
        let out_of_bounds = matches!(kind, Some(Trap::MemoryOutOfBounds));
        let overflow = rt
            .shared()
            .buffer
            .abort_unwind(&mut *store, self.id, out_of_bounds);
        match overflow {
            Some(overflow) => overflow.into(),
            None if matches!(kind, Some(Trap::UnreachableCodeReached)) => Error::CannotSuspend {
                module: import.module.clone(),
                name: import.name.clone(),
                reason: "the module was not instrumented to let it wait: the code that called \
                         it trapped while the instance unwound from it (asyncify asserts do \
                         that when a call that was not expected to suspend changes the state); \
                         instrument the module with this import among those that may suspend \
                         (`asyncify instrument --imports`, Binaryen's `asyncify-imports`)"
                    .into(),
            }
            .into(),
            None => trap,
        }
    }

    /// The import finished: checks that this call may resume, then rewinds.
    fn start_rewind<T: 'static>(
        &mut self,
        rt: &Runtime,
        store: &mut StoreContextMut<'_, T>,
    ) -> Result<()> {
        let ptr = {
            let mut shared = rt.shared();
            if let Some(reason) = &shared.broken {
                return Err(rt.unusable(reason).into());
            }
            if shared.active.last() != Some(&self.id) {
                return Err(Error::ResumeOrder {
                    module: rt.module.clone(),
                }
                .into());
            }
            shared.buffer.start_rewind(&mut *store, self.id)?
        };
        rt.start_rewind(store, ptr)
    }

    /// The export returned while unwinding: keep the saved stack, stop
    /// unwinding.
    fn suspend<T: 'static>(
        &mut self,
        rt: &Runtime,
        store: &mut StoreContextMut<'_, T>,
    ) -> Result<()> {
        rt.shared().buffer.finish_unwind(&mut *store, self.id)?;
        rt.stop_unwind(&mut *store)
    }

    /// After a failure in the middle of the protocol: puts the instance back
    /// in the normal state, or if its runtime functions do not let the linker
    /// do that, marks it unusable so that it never runs in a half state.
    fn recover<T: 'static>(&mut self, rt: &Runtime, store: &mut StoreContextMut<'_, T>) {
        rt.shared().buffer.reset(&mut *store);
        let mut settle = || -> Result<i32> {
            for _ in 0..3 {
                let raw = rt.state(&mut *store)?;
                match State::from_value(raw) {
                    Some(State::Unwinding) => rt.stop_unwind(&mut *store)?,
                    Some(State::Rewinding) => rt.stop_rewind(&mut *store)?,
                    _ => return Ok(raw),
                }
            }
            rt.state(&mut *store)
        };
        let mut settled = settle();
        if !matches!(settled, Ok(s) if s == State::Normal.value()) {
            // The stop functions check the header at the guest's data
            // pointer, which the guest may have left pointing anywhere:
            // point it at a valid header (by starting an unwind there) and
            // stop again.
            let header = rt.shared().buffer.valid_header(&mut *store);
            if let Some(ptr) = header {
                let _ = rt.start_unwind(&mut *store, ptr);
                let _ = rt.stop_unwind(&mut *store);
                settled = rt.state(&mut *store);
            }
        }
        let reason = match settled {
            Ok(s) if s == State::Normal.value() => return,
            Ok(state) => format!(
                "after a failed call it stays in asyncify state {state} (0 is normal) whatever \
                 the linker does to reset it"
            ),
            Err(e) => format!(
                "its asyncify runtime trapped while the linker was putting it back in the \
                 normal state after a failed call ({e})"
            ),
        };
        rt.shared().broken.get_or_insert(reason);
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
