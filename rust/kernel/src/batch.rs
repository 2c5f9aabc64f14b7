//! Record batches: many small values, each sealed on its own under one batch key.
//!
//! ```text
//! key || base nonce || commitment = HKDF-Expand-SHA512(prk = input key,
//!     info = "envelope.dev/v1 record batch+" || "AEAD_AES_256_GCM" || 0x00 || salt || context)
//! record i = u32 index i (big-endian) || AES-256-GCM(key, base nonce XOR i, aad_i, plaintext_i)
//! ```
//!
//! The derivation is Cobblestone's with its own label, so a batch key can never equal a
//! message key. A batch holds at most 2^32 records, so nonces never repeat under a key.
//! Each record carries its index, so one record decrypts alone; whole-batch decryption
//! also checks that record i sits at position i.

use rayon::prelude::*;

use crate::aead::TAG_LEN;
use crate::kdf::{KeySchedule, Label, COMMITMENT_LEN};
use crate::parallel;
use crate::Error;

/// Bytes of the index prefix of every sealed record.
pub const INDEX_LEN: usize = 4;
/// Bytes a sealed record adds to its plaintext.
pub const RECORD_OVERHEAD: usize = INDEX_LEN + TAG_LEN;
/// Records one batch can hold (the index is a u32).
pub const MAX_RECORDS: u64 = 1 << 32;

/// Records per parallel task.
const TASK: usize = 4096;
/// Batches smaller than this stay on the calling thread.
const PARALLEL_MIN: usize = 2 * TASK;

/// Read access to a sequence of byte strings.
pub trait Records: Sync {
    /// Number of records.
    fn count(&self) -> usize;
    /// Record `i` (`i < count()`).
    fn get(&self, i: usize) -> &[u8];
}

/// Records laid out as in Arrow's binary arrays: one buffer and `count + 1` offsets.
pub struct Contiguous<'a> {
    data: &'a [u8],
    offsets: &'a [i64],
}

impl<'a> Contiguous<'a> {
    /// Checks that the offsets are non-negative, non-decreasing and inside `data`.
    ///
    /// # Errors
    /// [`Error::InvalidOffsets`] otherwise (including an empty offsets array).
    pub fn new(data: &'a [u8], offsets: &'a [i64]) -> Result<Self, Error> {
        let first = *offsets.first().ok_or(Error::InvalidOffsets)?;
        if first < 0 {
            return Err(Error::InvalidOffsets);
        }
        if offsets.windows(2).any(|w| w[1] < w[0]) {
            return Err(Error::InvalidOffsets);
        }
        let last = offsets[offsets.len() - 1];
        if usize::try_from(last).map_or(true, |l| l > data.len()) {
            return Err(Error::InvalidOffsets);
        }
        Ok(Self { data, offsets })
    }
}

impl Records for Contiguous<'_> {
    fn count(&self) -> usize {
        self.offsets.len() - 1
    }

    #[inline]
    fn get(&self, i: usize) -> &[u8] {
        // Offsets were validated as in-bounds and non-decreasing in `new`.
        &self.data[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }
}

/// Records given as separate slices.
pub struct Slices<'a>(pub Vec<&'a [u8]>);

impl Records for Slices<'_> {
    fn count(&self) -> usize {
        self.0.len()
    }

    #[inline]
    fn get(&self, i: usize) -> &[u8] {
        self.0[i]
    }
}

/// The key schedule of one batch (derived under the record-batch label, so it can
/// only seal and open records, never message chunks).
pub struct BatchKeys(KeySchedule);

impl BatchKeys {
    /// Derives a batch's keys and commitment from its input key, salt and context.
    ///
    /// # Errors
    /// [`Error::InvalidKeySize`], [`Error::InvalidSaltSize`].
    pub fn derive(
        input_key: &[u8],
        salt: &[u8],
        context: &[u8],
    ) -> Result<(Self, [u8; COMMITMENT_LEN]), Error> {
        let (keys, commitment) = KeySchedule::derive(Label::RecordBatch, input_key, salt, context)?;
        Ok((Self(keys), commitment))
    }

    /// Derives the keys and checks the commitment in constant time.
    ///
    /// # Errors
    /// [`Error::Decrypt`] for a wrong key (of any size), salt, context or commitment.
    pub fn derive_and_verify(
        input_key: &[u8],
        salt: &[u8],
        commitment: &[u8],
        context: &[u8],
    ) -> Result<Self, Error> {
        KeySchedule::derive_and_verify(Label::RecordBatch, input_key, salt, commitment, context)
            .map(Self)
    }

    /// Seals one record into `out` (`plaintext.len() + RECORD_OVERHEAD` bytes).
    ///
    /// # Errors
    /// [`Error::OutputLength`] for a wrong-sized `out`.
    pub fn seal_record(
        &self,
        index: u32,
        plaintext: &[u8],
        aad: &[u8],
        out: &mut [u8],
    ) -> Result<(), Error> {
        let expected = plaintext.len() + RECORD_OVERHEAD;
        if out.len() != expected {
            return Err(Error::OutputLength {
                expected,
                actual: out.len(),
            });
        }
        let (head, rest) = out.split_at_mut(INDEX_LEN);
        head.copy_from_slice(&index.to_be_bytes());
        let (body, tag) = rest.split_at_mut(plaintext.len());
        self.0.seal_to(u64::from(index), aad, plaintext, body, tag)
    }

    /// Opens one record into `out` (`record.len() - RECORD_OVERHEAD` bytes) and returns
    /// the index it carries. On failure `out` is zeroed.
    ///
    /// # Errors
    /// [`Error::Decrypt`] if the record is too short or does not authenticate.
    pub fn open_record(&self, record: &[u8], aad: &[u8], out: &mut [u8]) -> Result<u32, Error> {
        if record.len() < RECORD_OVERHEAD || out.len() != record.len() - RECORD_OVERHEAD {
            out.fill(0);
            return Err(Error::Decrypt);
        }
        let (head, rest) = record.split_at(INDEX_LEN);
        let index = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
        self.0.open_to(u64::from(index), aad, ct, tag, out)?;
        Ok(index)
    }
}

/// Fills `out_offsets` (`count + 1` entries, from 0) with where each sealed record goes,
/// and returns the total sealed length.
///
/// # Errors
/// [`Error::TooManyRecords`] beyond 2^32 records; [`Error::OutputLength`] for a
/// wrong-sized `out_offsets`; [`Error::MessageTooLong`] if the total overflows.
pub fn sealed_offsets(records: &dyn Records, out_offsets: &mut [i64]) -> Result<usize, Error> {
    layout(records, out_offsets, |len| Some(len + RECORD_OVERHEAD))
}

/// Like [`sealed_offsets`] for opening: each output is `len - RECORD_OVERHEAD` bytes
/// (0 for a record too short to be valid; opening it fails).
///
/// # Errors
/// As [`sealed_offsets`].
pub fn opened_offsets(records: &dyn Records, out_offsets: &mut [i64]) -> Result<usize, Error> {
    layout(records, out_offsets, |len| {
        Some(len.saturating_sub(RECORD_OVERHEAD))
    })
}

fn layout(
    records: &dyn Records,
    out_offsets: &mut [i64],
    size: impl Fn(usize) -> Option<usize>,
) -> Result<usize, Error> {
    let n = records.count();
    if n as u64 > MAX_RECORDS {
        return Err(Error::TooManyRecords);
    }
    if out_offsets.len() != n + 1 {
        return Err(Error::OutputLength {
            expected: n + 1,
            actual: out_offsets.len(),
        });
    }
    let mut total: usize = 0;
    out_offsets[0] = 0;
    for i in 0..n {
        total = size(records.get(i).len())
            .and_then(|s| total.checked_add(s))
            .filter(|&t| t <= i64::MAX as usize)
            .ok_or(Error::MessageTooLong)?;
        out_offsets[i + 1] = total as i64;
    }
    Ok(total)
}

/// Splits `out` into the byte ranges of consecutive groups of `TASK` records.
fn split_output<'o>(out: &'o mut [u8], offsets: &[i64]) -> Vec<(usize, &'o mut [u8])> {
    let n = offsets.len() - 1;
    let mut pieces = Vec::with_capacity(n / TASK + 1);
    let mut rest = out;
    let mut start = 0;
    while start < n {
        let end = (start + TASK).min(n);
        let len = (offsets[end] - offsets[start]) as usize;
        let (head, tail) = rest.split_at_mut(len);
        pieces.push((start, head));
        rest = tail;
        start = end;
    }
    pieces
}

fn check_layout(offsets: &[i64], n: usize, out_len: usize) -> Result<(), Error> {
    if offsets.len() != n + 1 || offsets[0] != 0 || offsets[n] as usize != out_len {
        return Err(Error::InvalidOffsets);
    }
    Ok(())
}

fn check_aad(records: &dyn Records, aad: Option<&dyn Records>) -> Result<(), Error> {
    match aad {
        Some(a) if a.count() != records.count() => Err(Error::AadCount),
        _ => Ok(()),
    }
}

/// Seals every record into `out`, laid out by `out_offsets` from [`sealed_offsets`].
/// Record `i` gets index `i`. `aad`, if given, has one entry per record.
///
/// # Errors
/// [`Error::AadCount`], [`Error::InvalidOffsets`], [`Error::TooManyRecords`].
pub fn seal_batch(
    keys: &BatchKeys,
    records: &dyn Records,
    aad: Option<&dyn Records>,
    out: &mut [u8],
    out_offsets: &[i64],
    threads: usize,
) -> Result<(), Error> {
    let n = records.count();
    if n as u64 > MAX_RECORDS {
        return Err(Error::TooManyRecords);
    }
    check_aad(records, aad)?;
    check_layout(out_offsets, n, out.len())?;
    let seal_range = |(start, buf): (usize, &mut [u8])| -> Result<(), Error> {
        let end = (start + TASK).min(n);
        let base = out_offsets[start];
        for i in start..end {
            let a = (out_offsets[i] - base) as usize;
            let b = (out_offsets[i + 1] - base) as usize;
            let ad = aad.map_or(&[][..], |x| x.get(i));
            keys.seal_record(i as u32, records.get(i), ad, &mut buf[a..b])?;
        }
        Ok(())
    };
    let pieces = split_output(out, out_offsets);
    if n >= PARALLEL_MIN && threads != 1 {
        parallel::run(threads, || pieces.into_par_iter().try_for_each(seal_range))
    } else {
        pieces.into_iter().try_for_each(seal_range)
    }
}

/// Opens every record into `out`, laid out by `out_offsets` from [`opened_offsets`].
///
/// `status[i]` becomes 0 if record `i` authenticated and carries index
/// `first_index + i`, and 1 otherwise (its output bytes are then zero). Returns the
/// number of failed records.
///
/// # Errors
/// [`Error::AadCount`], [`Error::InvalidOffsets`], [`Error::OutputLength`] (status size).
pub fn open_batch(
    keys: &BatchKeys,
    records: &dyn Records,
    aad: Option<&dyn Records>,
    out: &mut [u8],
    out_offsets: &[i64],
    status: &mut [u8],
    threads: usize,
) -> Result<usize, Error> {
    let n = records.count();
    check_aad(records, aad)?;
    check_layout(out_offsets, n, out.len())?;
    if status.len() != n {
        return Err(Error::OutputLength {
            expected: n,
            actual: status.len(),
        });
    }
    let open_range = |((start, buf), st): ((usize, &mut [u8]), &mut [u8])| -> usize {
        let base = out_offsets[start];
        let mut failed = 0;
        for (k, s) in st.iter_mut().enumerate() {
            let i = start + k;
            let a = (out_offsets[i] - base) as usize;
            let b = (out_offsets[i + 1] - base) as usize;
            let ad = aad.map_or(&[][..], |x| x.get(i));
            let ok = matches!(
                keys.open_record(records.get(i), ad, &mut buf[a..b]),
                Ok(index) if index as usize == i
            );
            if !ok {
                buf[a..b].fill(0);
                failed += 1;
            }
            *s = u8::from(!ok);
        }
        failed
    };
    let pieces = split_output(out, out_offsets);
    let work = pieces.into_iter().zip(status.chunks_mut(TASK));
    let failed = if n >= PARALLEL_MIN && threads != 1 {
        let work: Vec<_> = work.collect();
        parallel::run(threads, || work.into_par_iter().map(open_range).sum())
    } else {
        work.map(open_range).sum()
    };
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: usize) -> (Vec<u8>, Vec<i64>) {
        let mut data = Vec::new();
        let mut offsets = vec![0i64];
        for i in 0..n {
            data.extend((0..(i % 97)).map(|b| (b + i) as u8));
            offsets.push(data.len() as i64);
        }
        (data, offsets)
    }

    fn seal_all(
        keys: &BatchKeys,
        recs: &dyn Records,
        aad: Option<&dyn Records>,
        threads: usize,
    ) -> (Vec<u8>, Vec<i64>) {
        let mut offs = vec![0i64; recs.count() + 1];
        let total = sealed_offsets(recs, &mut offs).unwrap();
        let mut out = vec![0u8; total];
        seal_batch(keys, recs, aad, &mut out, &offs, threads).unwrap();
        (out, offs)
    }

    fn open_all(
        keys: &BatchKeys,
        recs: &dyn Records,
        aad: Option<&dyn Records>,
        threads: usize,
    ) -> (Vec<u8>, Vec<i64>, Vec<u8>, usize) {
        let mut offs = vec![0i64; recs.count() + 1];
        let total = opened_offsets(recs, &mut offs).unwrap();
        let mut out = vec![0u8; total];
        let mut status = vec![9u8; recs.count()];
        let failed = open_batch(keys, recs, aad, &mut out, &offs, &mut status, threads).unwrap();
        (out, offs, status, failed)
    }

    #[test]
    fn round_trip_serial_and_parallel_agree() {
        let (keys, _) = BatchKeys::derive(&[1u8; 32], &[2u8; 24], b"ctx").unwrap();
        let (data, offsets) = batch(20_000);
        let recs = Contiguous::new(&data, &offsets).unwrap();
        let (one, offs) = seal_all(&keys, &recs, None, 1);
        let (two, _) = seal_all(&keys, &recs, None, 2);
        assert_eq!(one, two);
        let sealed = Contiguous::new(&one, &offs).unwrap();
        for threads in [1, 0] {
            let (out, _, status, failed) = open_all(&keys, &sealed, None, threads);
            assert_eq!(failed, 0);
            assert!(status.iter().all(|&s| s == 0));
            assert_eq!(out, data);
        }
    }

    #[test]
    fn tampered_and_moved_records_fail_alone() {
        let (keys, _) = BatchKeys::derive(&[1u8; 32], &[2u8; 24], b"").unwrap();
        let (data, offsets) = batch(10_000);
        let recs = Contiguous::new(&data, &offsets).unwrap();
        let (mut sealed, offs) = seal_all(&keys, &recs, None, 0);
        let last = offs[5001] as usize - 1;
        sealed[last] ^= 1; // record 5000's tag
        let s = Contiguous::new(&sealed, &offs).unwrap();
        let (_, _, status, failed) = open_all(&keys, &s, None, 0);
        assert_eq!(failed, 1);
        assert_eq!(status[5000], 1);
        // Swap two records: each still authenticates alone, but not at the other's position.
        let slices: Vec<&[u8]> = (0..10_000)
            .map(|i| {
                let j = match i {
                    3 => 4,
                    4 => 3,
                    _ => i,
                };
                &sealed[offs[j] as usize..offs[j + 1] as usize]
            })
            .collect();
        let (_, _, status, failed) = open_all(&keys, &Slices(slices), None, 0);
        assert_eq!(status[3..5], [1, 1]);
        assert_eq!(failed, 3);
    }

    #[test]
    fn aad_binds_each_record() {
        let (keys, _) = BatchKeys::derive(&[1u8; 32], &[2u8; 24], b"").unwrap();
        let rows: Vec<&[u8]> = vec![b"alice@example.com", b"bob@example.com"];
        let pks: Vec<&[u8]> = vec![b"pk-1", b"pk-2"];
        let (sealed, offs) = seal_all(&keys, &Slices(rows.clone()), Some(&Slices(pks.clone())), 1);
        let s = Contiguous::new(&sealed, &offs).unwrap();
        let (out, _, _, failed) = open_all(&keys, &s, Some(&Slices(pks)), 1);
        assert_eq!(
            (failed, out),
            (0, b"alice@example.combob@example.com".to_vec())
        );
        let swapped: Vec<&[u8]> = vec![b"pk-2", b"pk-1"];
        let (_, _, status, _) = open_all(&keys, &s, Some(&Slices(swapped)), 1);
        assert_eq!(status, [1, 1]);
    }

    #[test]
    fn short_records_and_bad_offsets() {
        let (keys, _) = BatchKeys::derive(&[1u8; 32], &[2u8; 24], b"").unwrap();
        let short: Vec<&[u8]> = vec![b"", b"0123456789012345678"];
        let (out, _, status, failed) = open_all(&keys, &Slices(short), None, 1);
        assert_eq!((out.len(), status, failed), (0, vec![1, 1], 2));
        assert_eq!(
            Contiguous::new(b"abc", &[0, 2, 1]).err(),
            Some(Error::InvalidOffsets)
        );
        assert_eq!(
            Contiguous::new(b"abc", &[0, 4]).err(),
            Some(Error::InvalidOffsets)
        );
        assert_eq!(
            Contiguous::new(b"abc", &[-1, 1]).err(),
            Some(Error::InvalidOffsets)
        );
        assert_eq!(
            Contiguous::new(b"abc", &[]).err(),
            Some(Error::InvalidOffsets)
        );
    }

    #[test]
    fn nonce_xors_index() {
        let (keys, _) = BatchKeys::derive(&[0u8; 32], &[0u8; 24], b"").unwrap();
        let (a, b) = (keys.0.nonce(0), keys.0.nonce(0x0102_0304));
        assert_eq!(a[..8], b[..8]);
        assert_eq!([a[8] ^ b[8], a[11] ^ b[11]], [1, 4]);
    }
}
