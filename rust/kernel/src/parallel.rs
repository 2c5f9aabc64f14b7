//! Thread pools for the data plane: one pool per thread count, owned by the
//! process that built it (rebuilt after `fork()`), never rayon's global pool.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use std::mem::MaybeUninit;

use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::Error;

/// The pools of one process. Worker threads do not survive `fork()`: a child that
/// used the parent's pools would wait for ever on workers that do not exist, so the
/// pools are stamped with the pid that built them and rebuilt in any other process.
struct Pools {
    pid: u32,
    by_threads: HashMap<usize, Arc<ThreadPool>>,
}

static POOLS: Mutex<Option<Pools>> = Mutex::new(None);

/// Lock attempts before giving up on the shared map (a lock held across `fork()` by a
/// thread that does not exist in the child is never released).
const LOCK_TRIES: usize = 10_000;

/// Worker count for `threads` = 0: `RAYON_NUM_THREADS` if set, else one per core.
///
/// Worked out once per process: `available_parallelism` reads the cgroup's CPU quota
/// (about ten system calls) every time, and a streamed file makes one call per piece.
fn all_cores() -> usize {
    static ALL_CORES: OnceLock<usize> = OnceLock::new();
    *ALL_CORES.get_or_init(|| {
        std::env::var("RAYON_NUM_THREADS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
            .unwrap_or(1)
    })
}

/// Runs `job` on `threads` workers (0 = one worker per core).
///
/// Every parallel iterator in the kernel runs inside this call, so it always lands on
/// a pool built by the current process, never on rayon's global pool (which cannot be
/// rebuilt after `fork()`).
pub(crate) fn run<T: Send>(threads: usize, job: impl FnOnce() -> T + Send) -> T {
    let threads = if threads == 0 { all_cores() } else { threads };
    match pool(threads) {
        Ok(p) => p.install(job),
        // No pool can be built (resource limits): the global pool is the last resort.
        Err(_) => job(),
    }
}

fn pool(threads: usize) -> Result<Arc<ThreadPool>, Error> {
    let pid = std::process::id();
    let mut guard = None;
    for _ in 0..LOCK_TRIES {
        match POOLS.try_lock() {
            Ok(g) => {
                guard = Some(g);
                break;
            }
            Err(std::sync::TryLockError::Poisoned(p)) => {
                guard = Some(p.into_inner());
                break;
            }
            Err(std::sync::TryLockError::WouldBlock) => std::thread::yield_now(),
        }
    }
    let Some(mut guard) = guard else {
        // Locked across fork() (or long contention): a private pool for this call.
        return build(threads).map(Arc::new);
    };
    let pools = match guard.as_mut() {
        Some(p) if p.pid == pid => p,
        _ => {
            if let Some(stale) = guard.take() {
                // Inherited through fork(): its workers are gone. Dropping would ask
                // them to stop and wait for them, so the pools are leaked instead.
                std::mem::forget(stale);
            }
            guard.insert(Pools {
                pid,
                by_threads: HashMap::new(),
            })
        }
    };
    if let Some(p) = pools.by_threads.get(&threads) {
        return Ok(Arc::clone(p));
    }
    let p = Arc::new(build(threads)?);
    pools.by_threads.insert(threads, Arc::clone(&p));
    Ok(p)
}

fn build(threads: usize) -> Result<ThreadPool, Error> {
    ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("envelope-{i}"))
        .build()
        .map_err(|_| Error::Internal)
}

/// Zero-fills fresh (never touched) memory on `threads` workers (0 = all cores).
///
/// Touching a fresh allocation's pages from several threads spreads its page
/// faults across cores, which is most of the cost of filling a large new buffer.
/// After this returns every byte of `buf` is initialized (to zero).
pub fn zero_fill(buf: &mut [MaybeUninit<u8>], threads: usize) {
    const PIECE: usize = 1 << 20;
    if threads == 1 || buf.len() < 4 * PIECE {
        buf.fill(MaybeUninit::new(0));
    } else {
        run(threads, || {
            buf.par_chunks_mut(PIECE)
                .for_each(|piece| piece.fill(MaybeUninit::new(0)))
        });
    }
}
