//! The C ABI the JavaScript glue calls (wasm32 only). Pointers and lengths are
//! 32-bit numbers on the JavaScript side.
//!
//! One call runs at a time (JavaScript is single-threaded and the glue never
//! re-enters), so the last result lives in a thread-local until the glue has
//! copied it out and called [`asyncify_result_free`].

use std::alloc::{alloc, dealloc, Layout};
use std::cell::RefCell;
use std::sync::Once;

use crate::Failure;

thread_local! {
    static RESULT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static WARNINGS: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static PANIC: RefCell<String> = const { RefCell::new(String::new()) };
}

static HOOK: Once = Once::new();

/// Keeps the message of a panic, which the glue reads after the trap that
/// follows it (`panic = abort` on this target).
fn install_panic_hook() {
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let message = info.to_string();
            PANIC.with(|p| {
                if let Ok(mut p) = p.try_borrow_mut() {
                    *p = message;
                }
            });
        }));
    });
}

/// Reserves `len` bytes (alignment 1) for the glue to write an argument into.
/// Returns null if the allocation fails.
#[no_mangle]
pub extern "C" fn asyncify_alloc(len: usize) -> *mut u8 {
    if len == 0 {
        return std::ptr::NonNull::<u8>::dangling().as_ptr();
    }
    match Layout::from_size_align(len, 1) {
        // SAFETY: the layout has a non-zero size.
        Ok(layout) => unsafe { alloc(layout) },
        Err(_) => std::ptr::null_mut(),
    }
}

/// Releases bytes reserved by [`asyncify_alloc`].
///
/// # Safety
///
/// `ptr` and `len` must come from one call of [`asyncify_alloc`], released once.
#[no_mangle]
pub unsafe extern "C" fn asyncify_free(ptr: *mut u8, len: usize) {
    if len != 0 && !ptr.is_null() {
        // SAFETY: the caller passes back what `asyncify_alloc` returned for `len`.
        unsafe { dealloc(ptr, Layout::from_size_align_unchecked(len, 1)) }
    }
}

/// The bytes at `ptr..ptr + len`, or none for a null pointer.
///
/// # Safety
///
/// The range must be readable for the duration of the call.
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: the caller guarantees the range.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

/// Stores a call's outcome for the glue to read: 0 and the value, or 1 and
/// the failure as JSON.
fn finish(result: Result<Vec<u8>, Failure>, warnings: &[String]) -> u32 {
    let (status, bytes) = match result {
        Ok(bytes) => (0, bytes),
        Err(failure) => (
            1,
            serde_json::to_vec(&failure).expect("a failure serialises"),
        ),
    };
    RESULT.with(|r| *r.borrow_mut() = bytes);
    let warnings = serde_json::to_vec(warnings).expect("strings serialise");
    WARNINGS.with(|w| *w.borrow_mut() = warnings);
    status
}

/// Instruments the module at `input` with the options (UTF-8 JSON) at
/// `options`. Returns 0 when the result is the instrumented module, 1 when it
/// is a failure.
///
/// # Safety
///
/// Both ranges must be readable (from [`asyncify_alloc`]).
#[no_mangle]
pub unsafe extern "C" fn asyncify_instrument(
    input: *const u8,
    input_len: usize,
    options: *const u8,
    options_len: usize,
) -> u32 {
    install_panic_hook();
    // SAFETY: forwarded from the caller.
    let (input, options) = unsafe { (bytes(input, input_len), bytes(options, options_len)) };
    let options = String::from_utf8_lossy(options);
    match crate::instrument(input, &options) {
        Ok(out) => finish(Ok(out.wasm), &out.warnings),
        Err(failure) => finish(Err(failure), &[]),
    }
}

/// The `inspect --json` report of the module at `input` with the options at
/// `options`. Returns 0 when the result is the report (UTF-8 JSON), 1 when it
/// is a failure.
///
/// # Safety
///
/// Both ranges must be readable (from [`asyncify_alloc`]).
#[no_mangle]
pub unsafe extern "C" fn asyncify_inspect(
    input: *const u8,
    input_len: usize,
    options: *const u8,
    options_len: usize,
) -> u32 {
    install_panic_hook();
    // SAFETY: forwarded from the caller.
    let (input, options) = unsafe { (bytes(input, input_len), bytes(options, options_len)) };
    let options = String::from_utf8_lossy(options);
    finish(crate::inspect(input, &options).map(String::into_bytes), &[])
}

/// Where the last result starts.
#[no_mangle]
pub extern "C" fn asyncify_result_ptr() -> *const u8 {
    RESULT.with(|r| r.borrow().as_ptr())
}

/// How long the last result is.
#[no_mangle]
pub extern "C" fn asyncify_result_len() -> usize {
    RESULT.with(|r| r.borrow().len())
}

/// Where the last call's warnings (a JSON array of strings) start.
#[no_mangle]
pub extern "C" fn asyncify_warnings_ptr() -> *const u8 {
    WARNINGS.with(|w| w.borrow().as_ptr())
}

/// How long the last call's warnings are.
#[no_mangle]
pub extern "C" fn asyncify_warnings_len() -> usize {
    WARNINGS.with(|w| w.borrow().len())
}

/// Drops the last result and warnings, returning their memory.
#[no_mangle]
pub extern "C" fn asyncify_result_free() {
    RESULT.with(|r| *r.borrow_mut() = Vec::new());
    WARNINGS.with(|w| *w.borrow_mut() = Vec::new());
}

/// Where the message of the last panic starts (empty if none).
#[no_mangle]
pub extern "C" fn asyncify_panic_ptr() -> *const u8 {
    PANIC.with(|p| p.try_borrow().map_or(std::ptr::null(), |p| p.as_ptr()))
}

/// How long the message of the last panic is.
#[no_mangle]
pub extern "C" fn asyncify_panic_len() -> usize {
    PANIC.with(|p| p.try_borrow().map_or(0, |p| p.len()))
}
