//! Lending the store to import futures while the driver polls them.
//!
//! An async import's future outlives the wasm call that created it (the
//! instance unwinds while the future is pending), so it cannot borrow the
//! `Caller`. Instead, whoever polls an import future and holds the store
//! mutably at that moment *publishes* it in a thread-local slot for the
//! duration of that one `poll`, and [`AsyncCaller::with`] takes it from there.
//!
//! The rule that makes this sound: the slot only ever holds a pointer to a
//! `StoreContextMut` that the publisher borrowed exclusively and does not use
//! until the publication ends (it only calls `poll`). [`with_published`]
//! *takes* the pointer out of the slot while the closure runs, so at most one
//! `&mut` derived from it exists at a time; a nested `with` finds the slot
//! empty and fails instead of aliasing. Both sides restore the slot with a
//! drop guard, so a panic cannot leave a dangling pointer behind. The slot is
//! thread-local and the pointer never leaves the thread.
//!
//! [`AsyncCaller::with`]: crate::AsyncCaller::with

use std::any::TypeId;
use std::cell::Cell;
use std::ptr::NonNull;

use wasmtime::{AsContextMut, StoreContextMut};

use crate::Error;

#[derive(Clone, Copy)]
struct Published {
    /// `TypeId` of the store's data type `T`.
    data: TypeId,
    /// Points to a `StoreContextMut<'_, T>` on the publisher's stack.
    store: NonNull<()>,
}

thread_local! {
    static STORE: Cell<Option<Published>> = const { Cell::new(None) };
}

/// Puts the previous slot content back when dropped.
struct Restore(Option<Published>);

impl Drop for Restore {
    fn drop(&mut self) {
        STORE.set(self.0);
    }
}

/// Runs `f` (which polls an import future) with `store` published.
pub(crate) fn publish<T: 'static, R>(
    store: &mut StoreContextMut<'_, T>,
    f: impl FnOnce() -> R,
) -> R {
    let published = Published {
        data: TypeId::of::<T>(),
        store: NonNull::from(store).cast(),
    };
    let _restore = Restore(STORE.replace(Some(published)));
    f()
}

/// Runs `f` with the published store, if one is published for data type `T`.
pub(crate) fn with_published<T: 'static, R>(
    f: impl FnOnce(StoreContextMut<'_, T>) -> R,
) -> Result<R, Error> {
    let published = STORE.take();
    let _restore = Restore(published);
    let published = published.ok_or(Error::StoreUnavailable)?;
    if published.data != TypeId::of::<T>() {
        return Err(Error::StoreUnavailable);
    }
    // SAFETY: `publish` stored a pointer to a live `StoreContextMut<'_, T>`
    // (same `T`, checked above) that it borrowed mutably and leaves untouched
    // until its `f` returns, and we are inside that `f` on the same thread
    // (the slot is thread-local and restored before `publish` returns). The
    // slot is empty while we use the pointer, so this is the only reference
    // made from it. Only the `'static` store lifetime is invented: the
    // closure gets a reborrow limited to this call, so it cannot keep it.
    let store = unsafe {
        published
            .store
            .cast::<StoreContextMut<'static, T>>()
            .as_mut()
    };
    Ok(f(store.as_context_mut()))
}
