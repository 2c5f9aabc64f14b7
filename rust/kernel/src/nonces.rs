//! The nonces of a run of consecutive record indices, computed a block ahead of use.
//!
//! aws-lc reads a record's 12-byte nonce with a masked load, and a masked load cannot
//! take its bytes from stores that have not yet left the store buffer: a nonce built on
//! the stack just before each seal stalls that load on every record. Building the next
//! [`BLOCK`] nonces in one go and then using them leaves the stores time to retire. What
//! the stall costs depends on the CPU: about a fifth of a 64-byte record's time on one
//! VM (by `perf`), 2-5% of it on a later one (docs/benchmarks.md, "Records").
//!
//! The values are exactly [`KeySchedule::nonce`]'s (base nonce XOR index): this only
//! changes when they are computed, never what they are.

use crate::aead::NONCE_LEN;
use crate::kdf::KeySchedule;

/// Nonces computed per refill.
const BLOCK: usize = 32;

/// The nonces of one batch key for the indices a worker visits in order.
pub(crate) struct Nonces<'k> {
    keys: &'k KeySchedule,
    /// `block[j]` is the nonce of index `first + j` (wrapping, as `first + j` does in
    /// [`Nonces::get`]'s arithmetic).
    block: [[u8; NONCE_LEN]; BLOCK],
    first: usize,
}

impl<'k> Nonces<'k> {
    /// The nonces of `keys` from index `first` on (the block is filled at once, so every
    /// entry is a real nonce from the start).
    pub(crate) fn starting_at(keys: &'k KeySchedule, first: usize) -> Self {
        let mut nonces = Self {
            keys,
            block: [[0; NONCE_LEN]; BLOCK],
            first,
        };
        nonces.fill(first);
        nonces
    }

    /// The nonce of record `index`: the next block is computed when `index` is outside
    /// the current one, so any index is answered correctly, in order or not.
    #[inline]
    pub(crate) fn get(&mut self, index: usize) -> &[u8; NONCE_LEN] {
        let mut offset = index.wrapping_sub(self.first);
        if offset >= BLOCK {
            self.fill(index);
            offset = 0;
        }
        &self.block[offset]
    }

    fn fill(&mut self, first: usize) {
        self.first = first;
        for (j, nonce) in self.block.iter_mut().enumerate() {
            *nonce = self.keys.nonce(first.wrapping_add(j) as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kdf::Label;

    fn keys() -> KeySchedule {
        let (keys, _) =
            KeySchedule::derive(Label::RecordBatch, &[3u8; 32], &[5u8; 24], b"ctx").unwrap();
        keys
    }

    #[test]
    fn every_index_gets_the_key_schedules_nonce() {
        let keys = keys();
        // In order across several blocks, from 0 and from an unaligned start.
        for first in [0usize, 7, 1000] {
            let mut nonces = Nonces::starting_at(&keys, first);
            for i in first..first + 5 * BLOCK + 3 {
                assert_eq!(*nonces.get(i), keys.nonce(i as u64), "index {i}");
            }
        }
        // Out of order: backwards, jumps, repeats, the ends of the index range.
        let mut nonces = Nonces::starting_at(&keys, 500);
        let visits = [
            499,
            0,
            1,
            0,
            31,
            32,
            33,
            31,
            u32::MAX as usize,
            usize::MAX,
            0,
            usize::MAX - 1,
            usize::MAX,
        ];
        for i in visits {
            assert_eq!(*nonces.get(i), keys.nonce(i as u64), "index {i}");
        }
    }

    #[test]
    fn the_first_block_holds_real_nonces() {
        // No entry of a fresh block is a placeholder: even the indices just before and
        // after `first` map to their own nonces, never to zeros.
        let keys = keys();
        for first in [0usize, 1, BLOCK, usize::MAX] {
            let mut nonces = Nonces::starting_at(&keys, first);
            for j in 0..BLOCK {
                let i = first.wrapping_add(j);
                assert_eq!(*nonces.get(i), keys.nonce(i as u64));
                assert_ne!(*nonces.get(i), [0u8; NONCE_LEN]);
            }
            let before = first.wrapping_sub(1);
            assert_eq!(*nonces.get(before), keys.nonce(before as u64));
        }
    }
}
