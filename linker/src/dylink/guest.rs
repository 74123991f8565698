//! `dlopen`, `dlsym`, `dlclose` and `dlerror` as the guest imports them.
//!
//! Everything the guest passes is untrusted: pointers are read with bounds
//! and a length cap, handles are checked, and failures become 0 (or -1) and
//! a message for `dlerror`, never a trap or a panic.

use std::future::Future;
use std::sync::{Arc, Weak};
use std::task::Poll;

use wasmtime::{AsContext, AsContextMut, Caller, Extern, FuncType, StoreContextMut, Val, ValType};

use super::group::Group;
use super::load::{self, Root};
use super::{DylinkError, LibraryHandle};
use crate::host::AsyncHostFunc;
use crate::linker::Provided;
use crate::{access, driver, AsyncCaller};

/// Bytes of the buffer `dlerror` writes its messages to (the NUL included);
/// longer messages are cut.
const ERROR_BUF: u64 = 1024;

/// The functions of one group, made once per store.
pub(crate) struct DlFuncs<T> {
    dlopen: Arc<AsyncHostFunc<T>>,
    dlopen_sync: wasmtime::Func,
    dlsym: wasmtime::Func,
    dlclose: wasmtime::Func,
    dlerror: wasmtime::Func,
}

impl<T: 'static> DlFuncs<T> {
    pub fn new(mut store: impl AsContextMut<Data = T>, group: Weak<Group<T>>) -> DlFuncs<T> {
        let engine = store.as_context().engine().clone();
        let g = group.clone();
        let dlopen = Arc::new(AsyncHostFunc {
            ty: Some(FuncType::new(
                &engine,
                [ValType::I32, ValType::I32],
                [ValType::I32],
            )),
            call: Box::new(move |caller, params| {
                let group = g.clone();
                let path = params.first().and_then(Val::i32).unwrap_or(0);
                Box::pin(async move { Ok(vec![Val::I32(dlopen(group, caller, path).await)]) })
            }),
        });
        let g = group.clone();
        let dlopen_sync = wasmtime::Func::wrap(
            &mut store,
            move |mut caller: Caller<'_, T>, path: i32, _flags: i32| -> i32 {
                dlopen_without_waiting(&g, caller.as_context_mut(), path)
            },
        );
        let g = group.clone();
        let dlsym = wasmtime::Func::wrap(
            &mut store,
            move |mut caller: Caller<'_, T>, handle: i32, name: i32| -> i32 {
                let Some(group) = g.upgrade() else { return 0 };
                let mut store = caller.as_context_mut();
                let found = read_string(&group, &store, name, "symbol name")
                    .and_then(|name| group.dlsym(&mut store, scope(handle), &name));
                match found {
                    Ok(symbol) => symbol.value() as i32,
                    Err(e) => {
                        group.set_error(e.to_string());
                        0
                    }
                }
            },
        );
        let g = group.clone();
        let dlclose = wasmtime::Func::wrap(&mut store, move |handle: i32| -> i32 {
            let Some(group) = g.upgrade() else { return -1 };
            let closed = match scope(handle) {
                Some(index) => group.dlclose(index),
                None => Err(DylinkError::InvalidHandle { handle: 0 }),
            };
            match closed {
                Ok(()) => 0,
                Err(e) => {
                    group.set_error(e.to_string());
                    -1
                }
            }
        });
        let g = group;
        let dlerror = wasmtime::Func::wrap(&mut store, move |mut caller: Caller<'_, T>| -> i32 {
            match g.upgrade() {
                Some(group) => take_error(&group, caller.as_context_mut()) as i32,
                None => 0,
            }
        });
        DlFuncs {
            dlopen,
            dlopen_sync,
            dlsym,
            dlclose,
            dlerror,
        }
    }

    /// Whether `env.name` is one of these.
    pub fn serves(&self, name: &str) -> bool {
        matches!(name, "dlopen" | "dlsym" | "dlclose" | "dlerror")
    }

    /// The import `env.name` for a module (instrumented or not).
    pub fn provide(&self, name: &str, instrumented: bool) -> Provided<T> {
        let func = match name {
            "dlopen" if instrumented => return Provided::Async(self.dlopen.clone()),
            "dlopen" => self.dlopen_sync,
            "dlsym" => self.dlsym,
            "dlclose" => self.dlclose,
            "dlerror" => self.dlerror,
            _ => return Provided::Missing,
        };
        Provided::Extern(Extern::Func(func))
    }
}

/// The library index a guest's handle names; `None` for 0 (`RTLD_DEFAULT`).
fn scope(handle: i32) -> Option<usize> {
    LibraryHandle::new(handle as u32).map(LibraryHandle::index)
}

/// The guest's `dlopen`: a handle, or 0 with the error set.
async fn dlopen<T: 'static>(group: Weak<Group<T>>, caller: AsyncCaller<T>, path: i32) -> i32 {
    let Some(group) = group.upgrade() else {
        return 0;
    };
    let opened = match path {
        0 => group
            .state()
            .main
            .ok_or(DylinkError::InvalidHandle { handle: 0 }),
        _ => match caller.try_with(|store| read_string(&group, &store, path, "path")) {
            Ok(Ok(name)) => load::open(group.clone(), Root::Library(name)).await,
            Ok(Err(e)) => Err(e),
            Err(e) => Err(DylinkError::Load {
                library: String::new(),
                message: e.to_string(),
            }),
        },
    };
    match opened.and_then(|index| {
        LibraryHandle::from_index(index).ok_or(DylinkError::TooManyLibraries {
            limit: group.config.max_libraries,
        })
    }) {
        Ok(handle) => handle.get() as i32,
        Err(e) => {
            group.set_error(e.to_string());
            0
        }
    }
}

/// `dlopen` for a module that is not instrumented: polled once; if the
/// loader or a constructor has to wait, it is cancelled and fails.
fn dlopen_without_waiting<T: 'static>(
    group: &Weak<Group<T>>,
    mut store: StoreContextMut<'_, T>,
    path: i32,
) -> i32 {
    let Some(strong) = group.upgrade() else {
        return 0;
    };
    let mut future = Box::pin(dlopen(group.clone(), AsyncCaller::detached(), path));
    let poll = access::publish(&mut store, || {
        driver::barrier(|| future.as_mut().poll(&mut driver::noop_context()))
    });
    match poll {
        Poll::Ready(handle) => handle,
        Poll::Pending => {
            // Dropped with the store lent, as the driver drops import futures.
            access::publish(&mut store, move || drop(future));
            let library = read_string(&strong, &store, path, "path").unwrap_or_default();
            strong.set_error(DylinkError::CannotWait { library }.to_string());
            0
        }
    }
}

/// Reads a NUL-terminated UTF-8 string the guest passed, at most
/// `max_path_len` bytes.
fn read_string<T>(
    group: &Group<T>,
    store: impl AsContext,
    pointer: i32,
    what: &str,
) -> Result<String, DylinkError> {
    let pointer = pointer as u32;
    let bad = |reason: String| DylinkError::BadString {
        what: what.to_string(),
        pointer,
        reason,
    };
    let memory = group
        .state()
        .memory
        .ok_or_else(|| bad("there is no shared memory".into()))?;
    let max = group.config.max_path_len;
    let data = memory.data(&store);
    let rest = usize::try_from(pointer)
        .ok()
        .and_then(|p| data.get(p..))
        .filter(|rest| !rest.is_empty())
        .ok_or_else(|| bad(format!("outside memory ({} bytes)", data.len())))?;
    let window = &rest[..rest.len().min(max.saturating_add(1))];
    let Some(len) = window.iter().position(|&b| b == 0) else {
        return Err(bad(if window.len() > max {
            format!("no NUL in its first {max} bytes (`DynamicLinker::max_path_len`)")
        } else {
            "no NUL before the end of memory".to_string()
        }));
    };
    String::from_utf8(window[..len].to_vec()).map_err(|_| bad("not UTF-8".into()))
}

/// The guest's `dlerror`: writes the message (cut to the buffer) and clears
/// it; 0 when there is none.
fn take_error<T>(group: &Group<T>, mut store: StoreContextMut<'_, T>) -> u32 {
    let mut st = group.state();
    let Some(message) = st.error.take() else {
        return 0;
    };
    let Some(memory) = st.memory else {
        return 0;
    };
    let at = match st.error_buf {
        Some(at) => at,
        None => match st.space.alloc(memory, &mut store, ERROR_BUF, 0) {
            Ok(at) => {
                st.error_buf = Some(at);
                at
            }
            Err(_) => return 0,
        },
    };
    let mut cut = message.len().min(ERROR_BUF as usize - 1);
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut bytes = message.as_bytes()[..cut].to_vec();
    bytes.push(0);
    match memory.write(&mut store, at as usize, &bytes) {
        Ok(()) => at,
        Err(_) => 0,
    }
}
