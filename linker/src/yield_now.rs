//! A future that gives its executor one turn: the smallest way for a host
//! import to be pending, so that the instance unwinds and rewinds.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Returns a future that is pending on its first poll (after waking its
/// task, so any executor polls it again) and ready on the next.
///
/// Awaited in an async import, it makes the call suspend once: useful to
/// test a guest's suspension paths, or to let other tasks run.
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
#[derive(Debug, Default)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
