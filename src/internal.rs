//! The maintained columns of `credit.account` and the ledger tables are written only by pg_credit
//! itself. Its own writes run inside `scope`, which the protection triggers recognise; a backend is
//! single-threaded, so a thread-local depth counter is exact.
use std::cell::Cell;

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

struct Guard;

impl Drop for Guard {
    // Runs on unwinding too: a PostgreSQL ERROR inside the scope becomes a Rust panic in pgrx.
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get() - 1));
    }
}

pub fn scope<R>(f: impl FnOnce() -> R) -> R {
    DEPTH.with(|d| d.set(d.get() + 1));
    let _g = Guard;
    f()
}

pub fn active() -> bool {
    DEPTH.with(|d| d.get() > 0)
}
