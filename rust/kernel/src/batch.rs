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

use std::mem::MaybeUninit;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use rayon::prelude::*;

use crate::aead::TAG_LEN;
use crate::gcm::{GcmContext, GcmTemplate};
use crate::kdf::{KeySchedule, Label, COMMITMENT_LEN};
use crate::nonces::Nonces;
use crate::parallel;
use crate::Error;

/// Bytes of the index prefix of every sealed record.
pub const INDEX_LEN: usize = 4;
/// Bytes a sealed record adds to its plaintext.
pub const RECORD_OVERHEAD: usize = INDEX_LEN + TAG_LEN;
/// Records one batch can hold (the index is a u32).
pub const MAX_RECORDS: u64 = 1 << 32;

/// Most records per parallel task: each task seals a contiguous range of records into
/// a contiguous range of the output, with one GCM context per worker.
const TASK: usize = 8192;
/// Fewest records per task, and the output bytes a task aims at (large records get
/// fewer per task, so a batch of a few big records still spreads over the cores).
const TASK_MIN: usize = 64;
const TASK_BYTES: usize = 1 << 20;

/// Records per task for `records`; a batch of one task stays on the calling thread.
fn task_len(records: &dyn Records) -> usize {
    let n = records.count().max(1);
    let average = records.start(records.count()) / n + RECORD_OVERHEAD;
    (TASK_BYTES / average).clamp(TASK_MIN, TASK)
}
/// Bytes per output offset for an output of `total` bytes: 4 (native-endian i32, Arrow's
/// binary) if `narrow` and the total fits, else 8 (i64, large_binary). [`seal_batch`] and
/// [`open_batch`] take the width from the size of their offsets output.
pub fn offsets_width(total: usize, narrow: bool) -> usize {
    if narrow && total <= i32::MAX as usize {
        4
    } else {
        8
    }
}

/// Read access to a sequence of byte strings.
pub trait Records: Sync {
    /// Number of records.
    fn count(&self) -> usize;
    /// Record `i` (`i < count()`).
    fn get(&self, i: usize) -> &[u8];
    /// Bytes of records `0..i` together (`i <= count()`).
    fn start(&self, i: usize) -> usize;
    /// The length of the shortest record (`usize::MAX` if there are none).
    fn min_len(&self) -> usize;
}

/// An offset type of Arrow's binary layouts: i32 (binary) or i64 (large_binary).
pub trait Offset: Copy + Sync + 'static {
    /// Bytes of one offset.
    const WIDTH: usize;
    /// The value, widened.
    fn widen(self) -> i64;
}

impl Offset for i32 {
    const WIDTH: usize = 4;
    #[inline]
    fn widen(self) -> i64 {
        i64::from(self)
    }
}

impl Offset for i64 {
    const WIDTH: usize = 8;
    #[inline]
    fn widen(self) -> i64 {
        self
    }
}

/// Records laid out as in Arrow's binary arrays: one buffer and `count + 1` offsets.
pub struct Contiguous<'a, O: Offset = i64> {
    data: &'a [u8],
    offsets: &'a [O],
    min_len: usize,
}

impl<'a, O: Offset> Contiguous<'a, O> {
    /// Checks that the offsets are non-negative, non-decreasing and inside `data`.
    ///
    /// # Errors
    /// [`Error::InvalidOffsets`] otherwise (including an empty offsets array).
    pub fn new(data: &'a [u8], offsets: &'a [O]) -> Result<Self, Error> {
        let first = offsets.first().ok_or(Error::InvalidOffsets)?.widen();
        if first < 0 {
            return Err(Error::InvalidOffsets);
        }
        // One pass for the order and the shortest record (once the order holds from a
        // non-negative first offset, no difference overflows).
        let mut min_len = u64::MAX;
        let mut decreasing = false;
        for w in offsets.windows(2) {
            let (a, b) = (w[0].widen(), w[1].widen());
            decreasing |= b < a;
            min_len = min_len.min(b.wrapping_sub(a) as u64);
        }
        if decreasing {
            return Err(Error::InvalidOffsets);
        }
        let last = offsets[offsets.len() - 1].widen();
        if usize::try_from(last).map_or(true, |l| l > data.len()) {
            return Err(Error::InvalidOffsets);
        }
        Ok(Self {
            data,
            offsets,
            min_len: usize::try_from(min_len).unwrap_or(usize::MAX),
        })
    }
}

impl<O: Offset> Records for Contiguous<'_, O> {
    fn count(&self) -> usize {
        self.offsets.len() - 1
    }

    #[inline]
    fn get(&self, i: usize) -> &[u8] {
        // Offsets were validated as in-bounds and non-decreasing in `new`.
        &self.data[self.offsets[i].widen() as usize..self.offsets[i + 1].widen() as usize]
    }

    #[inline]
    fn start(&self, i: usize) -> usize {
        (self.offsets[i].widen() - self.offsets[0].widen()) as usize
    }

    fn min_len(&self) -> usize {
        self.min_len
    }
}

/// Records given as separate slices.
pub struct Slices<'a> {
    items: Vec<&'a [u8]>,
    starts: Vec<usize>,
    min_len: usize,
}

impl<'a> Slices<'a> {
    /// Records `items`, in order.
    pub fn new(items: Vec<&'a [u8]>) -> Self {
        let mut starts = Vec::with_capacity(items.len() + 1);
        let mut total = 0usize;
        let mut min_len = usize::MAX;
        starts.push(0);
        for item in &items {
            // Slices of real memory: their lengths cannot add up past usize::MAX.
            total = total.saturating_add(item.len());
            min_len = min_len.min(item.len());
            starts.push(total);
        }
        Self {
            items,
            starts,
            min_len,
        }
    }
}

impl Records for Slices<'_> {
    fn count(&self) -> usize {
        self.items.len()
    }

    #[inline]
    fn get(&self, i: usize) -> &[u8] {
        self.items[i]
    }

    #[inline]
    fn start(&self, i: usize) -> usize {
        self.starts[i]
    }

    fn min_len(&self) -> usize {
        self.min_len
    }
}

/// The key schedule of one batch (derived under the record-batch label, so it can
/// only seal and open records, never message chunks), and the same key expanded once
/// more for the per-thread GCM contexts of whole-batch calls.
pub struct BatchKeys {
    keys: KeySchedule,
    template: GcmTemplate,
}

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
        let (keys, commitment, template) = KeySchedule::derive_with(
            Label::RecordBatch,
            input_key,
            salt,
            context,
            GcmTemplate::new,
        )?;
        Ok((Self { keys, template }, commitment))
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
        let (keys, expected) =
            Self::derive(input_key, salt, context).map_err(|_| Error::Decrypt)?;
        verify_slices_are_equal(commitment, &expected).map_err(|_| Error::Decrypt)?;
        Ok(keys)
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
        self.keys
            .seal_to(u64::from(index), aad, plaintext, body, tag)
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
        let index = record_index(record);
        let (ct, tag) = record[INDEX_LEN..].split_at(record.len() - RECORD_OVERHEAD);
        self.keys.open_to(u64::from(index), aad, ct, tag, out)?;
        Ok(index)
    }
}

fn record_index(record: &[u8]) -> u32 {
    u32::from_be_bytes([record[0], record[1], record[2], record[3]])
}

/// The total sealed length of `records`, for the output of [`seal_batch`].
///
/// # Errors
/// [`Error::TooManyRecords`] beyond 2^32 records; [`Error::MessageTooLong`] if the total
/// does not fit an i64.
pub fn sealed_len(records: &dyn Records) -> Result<usize, Error> {
    let n = records.count();
    if n as u64 > MAX_RECORDS {
        return Err(Error::TooManyRecords);
    }
    n.checked_mul(RECORD_OVERHEAD)
        .and_then(|o| o.checked_add(records.start(n)))
        .filter(|&t| t <= i64::MAX as usize)
        .ok_or(Error::MessageTooLong)
}

/// The total opened length of `records`, for the output of [`open_batch`]: each output
/// is `len - RECORD_OVERHEAD` bytes (0 for a record too short to be valid; opening it
/// fails).
pub fn opened_len(records: &dyn Records) -> usize {
    let n = records.count();
    if n == 0 || records.min_len() >= RECORD_OVERHEAD {
        return records.start(n) - n * RECORD_OVERHEAD;
    }
    (0..n)
        .map(|i| records.get(i).len().saturating_sub(RECORD_OVERHEAD))
        .sum()
}

/// Where each output record starts, from the input layout alone.
enum Layout {
    /// Output record `i` starts at input start `i` plus (`true`) or minus `i * RECORD_OVERHEAD`.
    Shifted(bool),
    /// Explicit starts (opening a batch with records too short to be valid).
    Table(Vec<usize>),
}

impl Layout {
    fn of_open(records: &dyn Records) -> Self {
        let n = records.count();
        if n == 0 || records.min_len() >= RECORD_OVERHEAD {
            return Layout::Shifted(false);
        }
        let mut starts = Vec::with_capacity(n + 1);
        let mut total = 0usize;
        starts.push(0);
        for i in 0..n {
            total += records.get(i).len().saturating_sub(RECORD_OVERHEAD);
            starts.push(total);
        }
        Layout::Table(starts)
    }

    #[inline]
    fn start(&self, records: &dyn Records, i: usize) -> usize {
        match self {
            Layout::Shifted(true) => records.start(i) + i * RECORD_OVERHEAD,
            Layout::Shifted(false) => records.start(i) - i * RECORD_OVERHEAD,
            Layout::Table(t) => t[i],
        }
    }
}

/// One task's share of a batch: records `first..first + status.len()` (or as many
/// offsets), their output bytes and their output offsets.
struct Piece<'o> {
    first: usize,
    count: usize,
    out: &'o mut [MaybeUninit<u8>],
    offsets: &'o mut [MaybeUninit<u8>],
    status: &'o mut [MaybeUninit<u8>],
}

/// Splits the outputs into consecutive groups of `TASK` records, and writes the final
/// offset (the total). `status` may be empty (sealing).
fn split<'o>(
    records: &dyn Records,
    layout: &Layout,
    out: &'o mut [MaybeUninit<u8>],
    offsets: &'o mut [MaybeUninit<u8>],
    status: &'o mut [MaybeUninit<u8>],
) -> Result<Vec<Piece<'o>>, Error> {
    let n = records.count();
    let total = layout.start(records, n);
    if out.len() != total {
        return Err(Error::OutputLength {
            expected: total,
            actual: out.len(),
        });
    }
    let width = offsets.len() / (n + 1);
    if offsets.len() % (n + 1) != 0
        || (width != 8 && width != 4)
        || width < offsets_width(total, true)
    {
        return Err(Error::OutputLength {
            expected: (n + 1) * offsets_width(total, true),
            actual: offsets.len(),
        });
    }
    let (offsets, last) = offsets.split_at_mut(n * width);
    write_offset(last, total);
    let task = task_len(records);
    let mut pieces = Vec::with_capacity(n / task + 1);
    let (mut out, mut offsets, mut status) = (out, offsets, status);
    let mut first = 0;
    while first < n {
        let end = (first + task).min(n);
        let len = layout.start(records, end) - layout.start(records, first);
        let (o, o_rest) = out.split_at_mut(len);
        let (f, f_rest) = offsets.split_at_mut((end - first) * width);
        let (s, s_rest) = status.split_at_mut((end - first).min(status.len()));
        pieces.push(Piece {
            first,
            count: end - first,
            out: o,
            offsets: f,
            status: s,
        });
        (out, offsets, status) = (o_rest, f_rest, s_rest);
        first = end;
    }
    Ok(pieces)
}

/// Writes `value` as a native-endian i32 or i64, as wide as `dst` (checked in `split`).
#[inline]
fn write_offset(dst: &mut [MaybeUninit<u8>], value: usize) {
    if dst.len() == 4 {
        dst.copy_from_slice(&(value as i32).to_ne_bytes().map(MaybeUninit::new));
    } else {
        dst.copy_from_slice(&(value as i64).to_ne_bytes().map(MaybeUninit::new));
    }
}

/// Runs `work` on every piece with a GCM context of `keys`, in parallel for large
/// batches (one context per worker, not per record); sums what it returns.
fn run_pieces<P: Send>(
    keys: &BatchKeys,
    pieces: Vec<P>,
    threads: usize,
    work: impl Fn(&mut GcmContext, P) -> Result<usize, Error> + Sync,
) -> Result<usize, Error> {
    if pieces.len() > 1 && threads != 1 {
        parallel::run(threads, || {
            pieces
                .into_par_iter()
                .map_init(
                    || keys.template.context(),
                    |ctx, piece| match ctx {
                        Ok(ctx) => work(ctx, piece),
                        Err(e) => Err(*e),
                    },
                )
                .try_reduce(|| 0, |a, b| Ok(a + b))
        })
    } else {
        let mut ctx = keys.template.context()?;
        pieces
            .into_iter()
            .try_fold(0, |acc, piece| Ok(acc + work(&mut ctx, piece)?))
    }
}

fn check(records: &dyn Records, aad: Option<&dyn Records>) -> Result<(), Error> {
    if records.count() as u64 > MAX_RECORDS {
        return Err(Error::TooManyRecords);
    }
    match aad {
        Some(a) if a.count() != records.count() => Err(Error::AadCount),
        _ => Ok(()),
    }
}

/// Seals record `i` into `dst` (exactly `rec.len() + RECORD_OVERHEAD` bytes, checked by
/// the callers), writing every byte.
#[inline]
fn seal_one(
    nonces: &mut Nonces<'_>,
    ctx: &mut GcmContext,
    i: usize,
    rec: &[u8],
    aad: &[u8],
    dst: &mut [MaybeUninit<u8>],
) -> Result<(), Error> {
    let (head, rest) = dst.split_at_mut(INDEX_LEN);
    head.copy_from_slice(&(i as u32).to_be_bytes().map(MaybeUninit::new));
    let (body, tag) = rest.split_at_mut(rec.len());
    ctx.seal(nonces.get(i), aad, rec, body, tag)
}

/// Opens record `i` into `dst` (`rec.len() - RECORD_OVERHEAD` bytes, or 0 for a record
/// too short to be valid): true if it authenticated and carries index `i`. Every byte
/// of `dst` is written (zeros on failure).
#[inline]
fn open_one(
    nonces: &mut Nonces<'_>,
    ctx: &mut GcmContext,
    i: usize,
    rec: &[u8],
    aad: &[u8],
    dst: &mut [MaybeUninit<u8>],
) -> bool {
    let ok = rec.len() >= RECORD_OVERHEAD && record_index(rec) as usize == i && {
        let (ct, tag) = rec[INDEX_LEN..].split_at(rec.len() - RECORD_OVERHEAD);
        match <&[u8; TAG_LEN]>::try_from(tag) {
            Ok(tag) => ctx.open(nonces.get(i), aad, ct, tag, dst).is_ok(),
            Err(_) => false,
        }
    };
    if !ok {
        dst.fill(MaybeUninit::new(0));
    }
    ok
}

/// One task's share of [`seal_each`] or [`open_each`]: its first record's task number
/// and its outputs.
type Each<'o, 'b> = (usize, &'o mut [&'b mut [MaybeUninit<u8>]]);

/// Like [`seal_batch`], each record into its own output (`outs[i]`: exactly
/// `len + RECORD_OVERHEAD` bytes), e.g. the Python `bytes` objects a list becomes.
/// On success every byte of every output is written.
///
/// # Errors
/// [`Error::AadCount`], [`Error::TooManyRecords`], [`Error::OutputLength`] for a
/// wrong count or a wrong-sized output.
pub fn seal_each(
    keys: &BatchKeys,
    records: &dyn Records,
    aad: Option<&dyn Records>,
    outs: &mut [&mut [MaybeUninit<u8>]],
    threads: usize,
) -> Result<(), Error> {
    check(records, aad)?;
    check_each(records, outs.len(), |i| {
        (outs[i].len(), records.get(i).len() + RECORD_OVERHEAD)
    })?;
    let task = task_len(records);
    let pieces: Vec<Each<'_, '_>> = outs.chunks_mut(task).enumerate().collect();
    let seal = |ctx: &mut GcmContext, (t, chunk): Each<'_, '_>| -> Result<usize, Error> {
        let mut nonces = Nonces::starting_at(&keys.keys, t * task);
        for (k, dst) in chunk.iter_mut().enumerate() {
            let i = t * task + k;
            let ad = aad.map_or(&[][..], |x| x.get(i));
            seal_one(&mut nonces, ctx, i, records.get(i), ad, dst)?;
        }
        Ok(0)
    };
    run_pieces(keys, pieces, threads, seal).map(|_| ())
}

/// Like [`open_batch`], each record into its own output (`outs[i]`: exactly
/// `len - RECORD_OVERHEAD` bytes, 0 for a record too short to be valid). Returns the
/// number of failed records. On success every byte of every output and of `status` is
/// written.
///
/// # Errors
/// [`Error::AadCount`], [`Error::TooManyRecords`], [`Error::OutputLength`] for a
/// wrong count or a wrong-sized output.
pub fn open_each(
    keys: &BatchKeys,
    records: &dyn Records,
    aad: Option<&dyn Records>,
    outs: &mut [&mut [MaybeUninit<u8>]],
    status: &mut [MaybeUninit<u8>],
    threads: usize,
) -> Result<usize, Error> {
    check(records, aad)?;
    check_each(records, outs.len(), |i| {
        let expected = records.get(i).len().saturating_sub(RECORD_OVERHEAD);
        (outs[i].len(), expected)
    })?;
    check_each(records, status.len(), |_| (0, 0))?;
    let task = task_len(records);
    let pieces: Vec<(Each<'_, '_>, &mut [MaybeUninit<u8>])> = outs
        .chunks_mut(task)
        .enumerate()
        .zip(status.chunks_mut(task))
        .collect();
    let open = |ctx: &mut GcmContext, ((t, chunk), st): (Each<'_, '_>, &mut [MaybeUninit<u8>])| {
        let mut failed = 0;
        let mut nonces = Nonces::starting_at(&keys.keys, t * task);
        for (k, (dst, s)) in chunk.iter_mut().zip(st.iter_mut()).enumerate() {
            let i = t * task + k;
            let ad = aad.map_or(&[][..], |x| x.get(i));
            let ok = open_one(&mut nonces, ctx, i, records.get(i), ad, dst);
            failed += usize::from(!ok);
            *s = MaybeUninit::new(u8::from(!ok));
        }
        Ok(failed)
    };
    run_pieces(keys, pieces, threads, open)
}

/// Checks that there are as many outputs as records and that each has the size it
/// must have (`sizes(i)` = (actual, expected)).
fn check_each(
    records: &dyn Records,
    count: usize,
    sizes: impl Fn(usize) -> (usize, usize),
) -> Result<(), Error> {
    if count != records.count() {
        return Err(Error::OutputLength {
            expected: records.count(),
            actual: count,
        });
    }
    for i in 0..count {
        let (actual, expected) = sizes(i);
        if actual != expected {
            return Err(Error::OutputLength { expected, actual });
        }
    }
    Ok(())
}

/// Seals every record into `out` ([`sealed_len`] bytes, laid out in order) and writes
/// where each starts into `out_offsets` (`count + 1` native-endian i64 values, from 0).
/// Record `i` gets index `i`. `aad`, if given, has one entry per record. On success
/// every byte of both outputs is written.
///
/// # Errors
/// [`Error::AadCount`], [`Error::OutputLength`], [`Error::TooManyRecords`].
pub fn seal_batch(
    keys: &BatchKeys,
    records: &dyn Records,
    aad: Option<&dyn Records>,
    out: &mut [MaybeUninit<u8>],
    out_offsets: &mut [MaybeUninit<u8>],
    threads: usize,
) -> Result<(), Error> {
    check(records, aad)?;
    let layout = Layout::Shifted(true);
    let pieces = split(records, &layout, out, out_offsets, &mut [])?;
    let seal = |ctx: &mut GcmContext, p: Piece<'_>| -> Result<usize, Error> {
        let base = layout.start(records, p.first);
        let mut at = 0;
        let width = p.offsets.len() / p.count;
        let mut nonces = Nonces::starting_at(&keys.keys, p.first);
        for (k, off) in p.offsets.chunks_exact_mut(width).enumerate() {
            let i = p.first + k;
            write_offset(off, base + at);
            let rec = records.get(i);
            let dst = &mut p.out[at..at + rec.len() + RECORD_OVERHEAD];
            at += dst.len();
            seal_one(
                &mut nonces,
                ctx,
                i,
                rec,
                aad.map_or(&[][..], |x| x.get(i)),
                dst,
            )?;
        }
        debug_assert_eq!(at, p.out.len());
        Ok(0)
    };
    run_pieces(keys, pieces, threads, seal).map(|_| ())
}

/// Opens every record into `out` ([`opened_len`] bytes, laid out in order) and writes
/// where each starts into `out_offsets` (`count + 1` native-endian i64 values, from 0).
///
/// `status[i]` becomes 0 if record `i` authenticated and carries index `i`, and 1
/// otherwise (its output bytes are then zero). Returns the number of failed records.
/// On success every byte of the three outputs is written.
///
/// # Errors
/// [`Error::AadCount`], [`Error::OutputLength`], [`Error::TooManyRecords`].
pub fn open_batch(
    keys: &BatchKeys,
    records: &dyn Records,
    aad: Option<&dyn Records>,
    out: &mut [MaybeUninit<u8>],
    out_offsets: &mut [MaybeUninit<u8>],
    status: &mut [MaybeUninit<u8>],
    threads: usize,
) -> Result<usize, Error> {
    check(records, aad)?;
    let n = records.count();
    if status.len() != n {
        return Err(Error::OutputLength {
            expected: n,
            actual: status.len(),
        });
    }
    let layout = Layout::of_open(records);
    let pieces = split(records, &layout, out, out_offsets, status)?;
    let open = |ctx: &mut GcmContext, p: Piece<'_>| -> Result<usize, Error> {
        let base = layout.start(records, p.first);
        let mut at = 0;
        let mut failed = 0;
        let width = p.offsets.len() / p.count;
        let mut nonces = Nonces::starting_at(&keys.keys, p.first);
        for k in 0..p.count {
            let i = p.first + k;
            write_offset(&mut p.offsets[k * width..(k + 1) * width], base + at);
            let rec = records.get(i);
            let len = rec.len().saturating_sub(RECORD_OVERHEAD);
            let dst = &mut p.out[at..at + len];
            at += len;
            let ok = open_one(
                &mut nonces,
                ctx,
                i,
                rec,
                aad.map_or(&[][..], |x| x.get(i)),
                dst,
            );
            failed += usize::from(!ok);
            p.status[k] = MaybeUninit::new(u8::from(!ok));
        }
        debug_assert_eq!(at, p.out.len());
        Ok(failed)
    };
    run_pieces(keys, pieces, threads, open)
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

    #[allow(unsafe_code)]
    fn init(v: Vec<MaybeUninit<u8>>) -> Vec<u8> {
        // SAFETY: test only: called on buffers the batch functions fully wrote.
        v.into_iter().map(|b| unsafe { b.assume_init() }).collect()
    }

    fn offsets_of(raw: Vec<u8>) -> Vec<i64> {
        raw.chunks_exact(8)
            .map(|c| i64::from_ne_bytes(c.try_into().unwrap()))
            .collect()
    }

    fn seal_all(
        keys: &BatchKeys,
        recs: &dyn Records,
        aad: Option<&dyn Records>,
        threads: usize,
    ) -> (Vec<u8>, Vec<i64>) {
        let total = sealed_len(recs).unwrap();
        let mut out = vec![MaybeUninit::uninit(); total];
        let mut offs = vec![MaybeUninit::uninit(); (recs.count() + 1) * 8];
        seal_batch(keys, recs, aad, &mut out, &mut offs, threads).unwrap();
        (init(out), offsets_of(init(offs)))
    }

    fn open_all(
        keys: &BatchKeys,
        recs: &dyn Records,
        aad: Option<&dyn Records>,
        threads: usize,
    ) -> (Vec<u8>, Vec<i64>, Vec<u8>, usize) {
        let total = opened_len(recs);
        let mut out = vec![MaybeUninit::uninit(); total];
        let mut offs = vec![MaybeUninit::uninit(); (recs.count() + 1) * 8];
        let mut status = vec![MaybeUninit::uninit(); recs.count()];
        let failed =
            open_batch(keys, recs, aad, &mut out, &mut offs, &mut status, threads).unwrap();
        (init(out), offsets_of(init(offs)), init(status), failed)
    }

    #[test]
    fn batch_records_are_single_records() {
        // The batch path (aws-lc's EVP_CIPHER, one context per worker) and the one-record
        // path (aws-lc-rs) produce the same bytes, and each opens the other's.
        let (keys, _) = BatchKeys::derive(&[5u8; 32], &[6u8; 24], b"ctx").unwrap();
        let (data, offsets) = batch(3 * TASK + 5);
        let recs = Contiguous::new(&data, &offsets).unwrap();
        let aad_items: Vec<Vec<u8>> = (0..recs.count())
            .map(|i| format!("pk-{i}").into_bytes())
            .collect();
        let aad = Slices::new(aad_items.iter().map(Vec::as_slice).collect());
        let (sealed, offs) = seal_all(&keys, &recs, Some(&aad), 0);
        for i in [0, 1, 96, TASK, 2 * TASK + 1, recs.count() - 1] {
            let rec = recs.get(i);
            let mut one = vec![0u8; rec.len() + RECORD_OVERHEAD];
            keys.seal_record(i as u32, rec, aad.get(i), &mut one)
                .unwrap();
            let got = &sealed[offs[i] as usize..offs[i + 1] as usize];
            assert_eq!(got, &one[..]);
            let mut back = vec![0u8; rec.len()];
            assert_eq!(keys.open_record(got, aad.get(i), &mut back), Ok(i as u32));
            assert_eq!(back, rec);
        }
        let s = Contiguous::new(&sealed, &offs).unwrap();
        let (out, out_offs, _, failed) = open_all(&keys, &s, Some(&aad), 0);
        assert_eq!((failed, out, out_offs), (0, data, offsets));
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
    fn each_record_into_its_own_output() {
        let (keys, _) = BatchKeys::derive(&[1u8; 32], &[2u8; 24], b"").unwrap();
        let (data, offsets) = batch(2 * TASK + 3);
        let recs = Contiguous::new(&data, &offsets).unwrap();
        let (expected, offs) = seal_all(&keys, &recs, None, 0);
        let n = recs.count();
        let mut bufs: Vec<Vec<MaybeUninit<u8>>> = (0..n)
            .map(|i| vec![MaybeUninit::uninit(); recs.get(i).len() + RECORD_OVERHEAD])
            .collect();
        let mut outs: Vec<&mut [MaybeUninit<u8>]> = bufs.iter_mut().map(|b| &mut b[..]).collect();
        seal_each(&keys, &recs, None, &mut outs, 0).unwrap();
        let sealed: Vec<Vec<u8>> = bufs.into_iter().map(init).collect();
        assert_eq!(sealed.concat(), expected);
        assert_eq!(sealed[7], &expected[offs[7] as usize..offs[8] as usize]);
        // Open, with record 5 tampered: it alone fails and comes out as zeros.
        let mut items: Vec<Vec<u8>> = sealed;
        items[5][RECORD_OVERHEAD] ^= 1;
        let s = Slices::new(items.iter().map(Vec::as_slice).collect());
        let mut bufs: Vec<Vec<MaybeUninit<u8>>> = (0..n)
            .map(|i| vec![MaybeUninit::uninit(); recs.get(i).len()])
            .collect();
        let mut outs: Vec<&mut [MaybeUninit<u8>]> = bufs.iter_mut().map(|b| &mut b[..]).collect();
        let mut status = vec![MaybeUninit::uninit(); n];
        assert_eq!(open_each(&keys, &s, None, &mut outs, &mut status, 0), Ok(1));
        let status = init(status);
        let opened: Vec<Vec<u8>> = bufs.into_iter().map(init).collect();
        assert_eq!(
            (
                status[5],
                status.iter().map(|&b| usize::from(b)).sum::<usize>()
            ),
            (1, 1)
        );
        assert!(opened[5].iter().all(|&b| b == 0));
        assert_eq!(opened[6], recs.get(6));
        assert_eq!(opened.concat().len(), data.len());
        // A wrong-sized output is refused.
        let mut short = [MaybeUninit::uninit(); 3];
        let mut outs: Vec<&mut [MaybeUninit<u8>]> = vec![&mut short[..]];
        let one = Slices::new(vec![b"abcd"]);
        assert!(matches!(
            seal_each(&keys, &one, None, &mut outs, 1),
            Err(Error::OutputLength { .. })
        ));
    }

    #[test]
    fn big_records_spread_over_tasks() {
        // 300 records of 20 KB: 64 per task, so five tasks, in parallel or not alike.
        let (keys, _) = BatchKeys::derive(&[1u8; 32], &[2u8; 24], b"").unwrap();
        let data: Vec<u8> = (0..300 * 20_000).map(|i| (i % 251) as u8).collect();
        let offsets: Vec<i64> = (0..=300).map(|i| i * 20_000).collect();
        let recs = Contiguous::new(&data, &offsets).unwrap();
        assert_eq!(task_len(&recs), TASK_MIN);
        let (one, offs) = seal_all(&keys, &recs, None, 1);
        let (two, _) = seal_all(&keys, &recs, None, 2);
        assert_eq!(one, two);
        let sealed = Contiguous::new(&one, &offs).unwrap();
        let (out, out_offs, _, failed) = open_all(&keys, &sealed, None, 2);
        assert_eq!((failed, out, out_offs), (0, data, offsets));
    }

    #[test]
    fn narrow_offsets_in_and_out() {
        // Arrow's binary layout: i32 offsets in, i32 offsets out, same bytes as i64.
        let (keys, _) = BatchKeys::derive(&[1u8; 32], &[2u8; 24], b"").unwrap();
        let (data, offsets) = batch(3 * TASK);
        let narrow: Vec<i32> = offsets.iter().map(|&o| o as i32).collect();
        let wide = Contiguous::new(&data, &offsets).unwrap();
        let recs = Contiguous::new(&data, &narrow).unwrap();
        let (expected, expected_offs) = seal_all(&keys, &wide, None, 0);
        let total = sealed_len(&recs).unwrap();
        assert_eq!(
            (offsets_width(total, true), offsets_width(total, false)),
            (4, 8)
        );
        let mut out = vec![MaybeUninit::uninit(); total];
        let mut offs = vec![MaybeUninit::uninit(); (recs.count() + 1) * 4];
        seal_batch(&keys, &recs, None, &mut out, &mut offs, 0).unwrap();
        let offs: Vec<i64> = init(offs)
            .chunks_exact(4)
            .map(|c| i64::from(i32::from_ne_bytes(c.try_into().unwrap())))
            .collect();
        assert_eq!((init(out), offs), (expected, expected_offs));
        assert_eq!(offsets_width(i32::MAX as usize + 1, true), 8);
        // An offsets output of neither width is refused before anything is written.
        let mut out = vec![MaybeUninit::uninit(); total];
        let mut offs = vec![MaybeUninit::uninit(); (recs.count() + 1) * 5];
        assert!(matches!(
            seal_batch(&keys, &recs, None, &mut out, &mut offs, 0),
            Err(Error::OutputLength { .. })
        ));
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
        let (_, _, status, failed) = open_all(&keys, &Slices::new(slices), None, 0);
        assert_eq!(status[3..5], [1, 1]);
        assert_eq!(failed, 3);
    }

    #[test]
    fn aad_binds_each_record() {
        let (keys, _) = BatchKeys::derive(&[1u8; 32], &[2u8; 24], b"").unwrap();
        let rows: Vec<&[u8]> = vec![b"alice@example.com", b"bob@example.com"];
        let pks: Vec<&[u8]> = vec![b"pk-1", b"pk-2"];
        let (sealed, offs) = seal_all(
            &keys,
            &Slices::new(rows.clone()),
            Some(&Slices::new(pks.clone())),
            1,
        );
        let s = Contiguous::new(&sealed, &offs).unwrap();
        let (out, _, _, failed) = open_all(&keys, &s, Some(&Slices::new(pks)), 1);
        assert_eq!(
            (failed, out),
            (0, b"alice@example.combob@example.com".to_vec())
        );
        let swapped: Vec<&[u8]> = vec![b"pk-2", b"pk-1"];
        let (_, _, status, _) = open_all(&keys, &s, Some(&Slices::new(swapped)), 1);
        assert_eq!(status, [1, 1]);
    }

    #[test]
    fn short_records_and_bad_offsets() {
        let (keys, _) = BatchKeys::derive(&[1u8; 32], &[2u8; 24], b"").unwrap();
        let short: Vec<&[u8]> = vec![b"", b"0123456789012345678"];
        let (out, _, status, failed) = open_all(&keys, &Slices::new(short), None, 1);
        assert_eq!((out.len(), status, failed), (0, vec![1, 1], 2));
        // Short records among good ones: the good ones still land where they belong.
        let plain: Vec<&[u8]> = vec![b"first", b"second!", b"third"];
        let (sealed, offs) = seal_all(&keys, &Slices::new(plain), None, 1);
        let rec = |i: usize| &sealed[offs[i] as usize..offs[i + 1] as usize];
        let mixed: Vec<&[u8]> = vec![rec(0), b"short", rec(2)];
        let (out, out_offs, status, failed) = open_all(&keys, &Slices::new(mixed), None, 1);
        assert_eq!((status, failed), (vec![0, 1, 0], 1));
        assert_eq!((out, out_offs), (b"firstthird".to_vec(), vec![0, 5, 5, 10]));
        let offs_of: Vec<i64> = vec![0, 5, 5];
        assert_eq!(
            Contiguous::new(b"abcde", &offs_of)
                .map(|c| c.min_len())
                .ok(),
            Some(0)
        );
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
            Contiguous::<i64>::new(b"abc", &[]).err(),
            Some(Error::InvalidOffsets)
        );
    }

    #[test]
    fn nonce_xors_index() {
        let (keys, _) = BatchKeys::derive(&[0u8; 32], &[0u8; 24], b"").unwrap();
        let (a, b) = (keys.keys.nonce(0), keys.keys.nonce(0x0102_0304));
        assert_eq!(a[..8], b[..8]);
        assert_eq!([a[8] ^ b[8], a[11] ^ b[11]], [1, 4]);
    }
}
