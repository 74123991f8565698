//! Time-slicing: serving the yield checks that `asyncify instrument
//! --yield-checks` adds, so that a CPU-bound guest gives its executor thread
//! back and continues where it was, without fibers.
//!
//! The transform makes every loop header, and the entry of every function
//! that can recurse, charge an approximate instruction count to the
//! exported global `asyncify_budget`; when it goes below zero the guest
//! calls the import `asyncify.yield`, whose result is the next budget. The
//! linker serves that import with a future that is pending once (the call
//! unwinds, the executor runs other tasks, the call rewinds) and then
//! refills the budget by one slice.

use wasmtime::{AsContextMut, Extern, Val};

use crate::{driver, yield_now, AsyncCaller, Error, Linker};

use asyncify_abi::yield_checks::{BUDGET_EXPORT, IMPORT_MODULE, IMPORT_NAME};

/// How the linker serves the yield checks of modules instrumented with them
/// (`asyncify instrument --yield-checks`, the transform's
/// `Options::yield_checks`); see [`Linker::time_slicing`].
///
/// Budgets are in the units the checks charge: approximate wasm
/// instructions (each loop iteration charges the instructions of its body,
/// each call to a function that can recurse those of the function outside
/// its loops).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeSlicing {
    /// Budget of one slice: how much a call runs before it yields. The
    /// default, 1,000,000, is about a millisecond of compiled code.
    pub slice: u32,
    /// Whether a spent slice yields to the executor (the call is pending
    /// once, so other tasks on the thread run). `false` keeps running, which
    /// with [`max_budget`](Self::max_budget) still enforces a deadline.
    pub yield_to_executor: bool,
    /// The most one export call may spend in all (across its slices, not
    /// counting calls nested in its async imports, which have their own).
    /// A call that spends it fails with [`Error::OutOfBudget`] at the check
    /// where it ran out, and the instance stays usable. `None`: no limit.
    /// Spending is counted in whole slices (a check fires when one is
    /// spent), so the limit is exact to within a slice.
    pub max_budget: Option<u64>,
}

impl Default for TimeSlicing {
    fn default() -> TimeSlicing {
        TimeSlicing {
            slice: asyncify_abi::yield_checks::DEFAULT_BUDGET as u32,
            yield_to_executor: true,
            max_budget: None,
        }
    }
}

impl TimeSlicing {
    /// What the budget is refilled with at each check that fires: one slice,
    /// or when there is neither yielding nor a limit, as much as fits (the
    /// checks then almost never fire).
    fn refill(&self) -> u32 {
        let slice = if self.yield_to_executor || self.max_budget.is_some() {
            self.slice
        } else {
            i32::MAX as u32
        };
        // A limit below one slice is checked when it is spent.
        let limit = self.max_budget.map_or(u64::MAX, |m| m.max(1));
        (slice as u64).min(limit).clamp(1, i32::MAX as u64) as u32
    }

    /// Sets a new instance's budget to its first slice. A module without
    /// yield checks (no `asyncify_budget` export, or one the guest typed
    /// differently) is left alone.
    pub(crate) fn start_budget(&self, mut store: impl AsContextMut, instance: wasmtime::Instance) {
        if let Some(Extern::Global(budget)) = instance.get_export(&mut store, BUDGET_EXPORT) {
            // A guest's own global of another type or mutability refuses the
            // value; that is its business.
            let _ = budget.set(&mut store, Val::I32(self.refill() as i32));
        }
    }
}

impl<T: 'static> Linker<T> {
    /// Serves the yield checks of modules instrumented with them
    /// (`asyncify instrument --yield-checks`): defines the import
    /// `asyncify.yield` and gives each instance created afterwards a first
    /// slice of `config.slice`.
    ///
    /// When a call has spent its slice, the import's future is pending once
    /// (the call unwinds and its future returns `Pending` after waking
    /// itself, so the executor runs its other tasks first), then the call
    /// rewinds and goes on with a new slice. A call that exceeds
    /// [`TimeSlicing::max_budget`] fails with [`Error::OutOfBudget`].
    /// Where a call cannot wait (a start function, a synchronous host
    /// function calling back), the budget is refilled without yielding and
    /// without counting towards the limit.
    ///
    /// # Errors
    ///
    /// [`Error::DefinedTwice`] if `asyncify.yield` is defined already and
    /// shadowing is off.
    ///
    /// ```
    /// # fn main() -> wasmtime::Result<()> {
    /// use asyncify_linker::{Error, Linker, TimeSlicing};
    /// use asyncify_transform::Options;
    /// use wasmtime::{Engine, Module, Store};
    ///
    /// let wat = r#"(module
    ///     (memory (export "memory") 1)
    ///     (func (export "count") (param $n i32) (result i32) (local $i i32)
    ///         (loop $next
    ///             (local.set $i (i32.add (local.get $i) (i32.const 1)))
    ///             (br_if $next (i32.lt_u (local.get $i) (local.get $n))))
    ///         (local.get $i)))"#;
    /// let options = Options { yield_checks: true, ..Options::default() };
    /// let wasm = asyncify_transform::instrument(wat.as_bytes(), &options)?.wasm;
    ///
    /// let engine = Engine::default();
    /// let module = Module::new(&engine, &wasm)?;
    /// let mut linker = Linker::new(&engine);
    /// linker.time_slicing(TimeSlicing {
    ///     slice: 1_000,
    ///     max_budget: Some(1_000_000),
    ///     ..TimeSlicing::default()
    /// })?;
    /// let mut store = Store::new(&engine, ());
    /// let instance = linker.instantiate(&mut store, &module)?;
    /// let count = instance.get_typed_func::<i32, i32>(&mut store, "count")?;
    /// // Yields to the executor about every 1,000 instructions on the way.
    /// assert_eq!(futures::executor::block_on(count.call_async(&mut store, 10_000))?, 10_000);
    /// // Too long for the limit: fails, and the instance goes on working.
    /// let err = futures::executor::block_on(count.call_async(&mut store, 10_000_000)).unwrap_err();
    /// assert!(matches!(err.downcast_ref::<Error>(), Some(Error::OutOfBudget { .. })));
    /// assert_eq!(futures::executor::block_on(count.call_async(&mut store, 5))?, 5);
    /// # Ok(())
    /// # }
    /// ```
    pub fn time_slicing(&mut self, config: TimeSlicing) -> wasmtime::Result<&mut Self> {
        let refill = config.refill();
        self.func_wrap_async(IMPORT_MODULE, IMPORT_NAME, move |_: AsyncCaller<T>, ()| {
            // Runs inside the wasm call, so the driver's call is known here;
            // the future below runs later.
            let spent = driver::charge(u64::from(refill));
            let over = match (spent, config.max_budget) {
                (Some(spent), Some(limit)) if spent >= limit => {
                    Some(Error::OutOfBudget { spent, limit })
                }
                _ => None,
            };
            let wait = config.yield_to_executor && spent.is_some();
            async move {
                if let Some(over) = over {
                    return Err(over.into());
                }
                if wait {
                    yield_now().await;
                }
                Ok(refill as i32)
            }
        })?;
        self.time_slicing = Some(config);
        Ok(self)
    }
}
