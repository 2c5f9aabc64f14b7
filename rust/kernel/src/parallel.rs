//! Thread pools for the data plane: the global rayon pool for "all cores",
//! or a cached pool per explicit thread count.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use std::mem::MaybeUninit;

use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::Error;

fn pools() -> &'static Mutex<HashMap<usize, Arc<ThreadPool>>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<ThreadPool>>>> = OnceLock::new();
    POOLS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Runs `job` on `threads` workers (0 = rayon's global pool, one worker per core).
pub(crate) fn run<T: Send>(threads: usize, job: impl FnOnce() -> T + Send) -> T {
    if threads == 0 || threads == rayon::current_num_threads() {
        return job();
    }
    match pool(threads) {
        Ok(p) => p.install(job),
        // A pool that cannot be built (resource limits) degrades to the global pool.
        Err(_) => job(),
    }
}

fn pool(threads: usize) -> Result<Arc<ThreadPool>, Error> {
    let mut map = pools()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(p) = map.get(&threads) {
        return Ok(Arc::clone(p));
    }
    let p = Arc::new(
        ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("envelope-{i}"))
            .build()
            .map_err(|_| Error::Internal)?,
    );
    map.insert(threads, Arc::clone(&p));
    Ok(p)
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
