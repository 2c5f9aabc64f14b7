//! c2sp.org/chunked-encryption instantiated as Cobblestone-256:
//! `AEAD_AES_256_GCM` with HKDF-Expand SHA-512.
//!
//! ```text
//! key || base nonce || commitment = HKDF-Expand(prk = input key,
//!     info = "c2sp.org/chunked-encryption@v1+" || "AEAD_AES_256_GCM" || 0x00 || salt || context)
//! ciphertext = salt (24) || commitment (32) || AEAD(chunk 0) || ... || AEAD(final chunk)
//! ```
//!
//! Chunks are 16 KiB; the final chunk is always shorter (possibly empty). Chunk `i`
//! is sealed under nonce `base nonce XOR i` (big-endian) with empty AAD.

use rayon::prelude::*;

use crate::aead::TAG_LEN;
use crate::kdf::{KeySchedule, Label};
use crate::parallel;
use crate::Error;

pub use crate::kdf::{InputKey, COMMITMENT_LEN, SALT_LEN};

/// Bytes before the first chunk: salt and commitment.
pub const PREFIX_LEN: usize = SALT_LEN + COMMITMENT_LEN;
/// Plaintext bytes in every chunk but the last.
pub const CHUNK_LEN: usize = 16 * 1024;
/// Ciphertext bytes of a full chunk.
pub const SEALED_CHUNK_LEN: usize = CHUNK_LEN + TAG_LEN;
/// The scheme's hard limit on the number of chunks in one message.
pub const MAX_CHUNKS: u64 = 1 << 38;

/// Messages with at least this many full chunks are spread over the thread pool.
const PARALLEL_MIN_CHUNKS: usize = 16;
/// Chunks handed to one worker at a time (1 MiB of plaintext).
const CHUNKS_PER_TASK: usize = 64;

/// Seals a chunk held at the front of `out` (plaintext already copied there)
/// and writes its tag right after it.
#[inline]
pub(crate) fn seal_chunk(keys: &KeySchedule, index: u64, out: &mut [u8]) -> Result<(), Error> {
    if index >= MAX_CHUNKS {
        return Err(Error::MessageTooLong);
    }
    let (body, tag_out) = out.split_at_mut(out.len() - TAG_LEN);
    let tag = keys.seal_in_place(index, &[], body)?;
    tag_out.copy_from_slice(&tag);
    Ok(())
}

/// Seals `plaintext` into `out`, which is `plaintext.len() + TAG_LEN` bytes.
#[inline]
fn seal_chunk_to(
    keys: &KeySchedule,
    index: u64,
    plaintext: &[u8],
    out: &mut [u8],
) -> Result<(), Error> {
    if index >= MAX_CHUNKS {
        return Err(Error::MessageTooLong);
    }
    let (body, tag_out) = out.split_at_mut(plaintext.len());
    keys.seal_to(index, &[], plaintext, body, tag_out)
}

/// Opens one sealed chunk (`ciphertext || tag`) into `out`.
#[inline]
pub(crate) fn open_chunk(
    keys: &KeySchedule,
    index: u64,
    sealed: &[u8],
    out: &mut [u8],
) -> Result<(), Error> {
    if index >= MAX_CHUNKS || sealed.len() < TAG_LEN {
        return Err(Error::Decrypt);
    }
    let (ct, tag) = sealed.split_at(sealed.len() - TAG_LEN);
    keys.open_to(index, &[], ct, tag, out)
}

/// Seals whole chunks: `plaintext` (a multiple of [`CHUNK_LEN`]) into `out`
/// (as many [`SEALED_CHUNK_LEN`] pieces), the first one as chunk `first`.
/// Spread over `threads` workers (0 = all cores) when there are enough chunks.
pub(crate) fn seal_chunks(
    keys: &KeySchedule,
    first: u64,
    plaintext: &[u8],
    out: &mut [u8],
    threads: usize,
) -> Result<(), Error> {
    let seal_one = |(i, (dst, src)): (usize, (&mut [u8], &[u8]))| {
        seal_chunk_to(keys, first + i as u64, src, dst)
    };
    if plaintext.len() >= PARALLEL_MIN_CHUNKS * CHUNK_LEN && threads != 1 {
        parallel::run(threads, || {
            out.par_chunks_mut(SEALED_CHUNK_LEN)
                .zip(plaintext.par_chunks(CHUNK_LEN))
                .enumerate()
                .with_min_len(CHUNKS_PER_TASK)
                .try_for_each(seal_one)
        })
    } else {
        out.chunks_mut(SEALED_CHUNK_LEN)
            .zip(plaintext.chunks(CHUNK_LEN))
            .enumerate()
            .try_for_each(seal_one)
    }
}

/// Opens whole chunks: `ciphertext` (a multiple of [`SEALED_CHUNK_LEN`]) into `out`
/// (as many [`CHUNK_LEN`] pieces), the first one as chunk `first`.
pub(crate) fn open_chunks(
    keys: &KeySchedule,
    first: u64,
    ciphertext: &[u8],
    out: &mut [u8],
    threads: usize,
) -> Result<(), Error> {
    let open_one =
        |(i, (dst, src)): (usize, (&mut [u8], &[u8]))| open_chunk(keys, first + i as u64, src, dst);
    if out.len() >= PARALLEL_MIN_CHUNKS * CHUNK_LEN && threads != 1 {
        parallel::run(threads, || {
            out.par_chunks_mut(CHUNK_LEN)
                .zip(ciphertext.par_chunks(SEALED_CHUNK_LEN))
                .enumerate()
                .with_min_len(CHUNKS_PER_TASK)
                .try_for_each(open_one)
        })
    } else {
        out.chunks_mut(CHUNK_LEN)
            .zip(ciphertext.chunks(SEALED_CHUNK_LEN))
            .enumerate()
            .try_for_each(open_one)
    }
}

/// Derives the message's key schedule and the commitment for `(input_key, salt, context)`.
pub(crate) fn derive(
    input_key: &[u8],
    salt: &[u8],
    context: &[u8],
) -> Result<(KeySchedule, [u8; COMMITMENT_LEN]), Error> {
    KeySchedule::derive(Label::Cobblestone, input_key, salt, context)
}

/// Derives the key schedule for decryption from the message prefix (salt || commitment)
/// and checks the commitment in constant time.
pub(crate) fn derive_and_verify(
    input_key: &[u8],
    prefix: &[u8],
    context: &[u8],
) -> Result<KeySchedule, Error> {
    let (salt, commitment) = prefix
        .get(..PREFIX_LEN)
        .ok_or(Error::Decrypt)?
        .split_at(SALT_LEN);
    KeySchedule::derive_and_verify(Label::Cobblestone, input_key, salt, commitment, context)
}

/// Ciphertext length of a message of `plaintext_len` bytes.
///
/// # Errors
/// [`Error::MessageTooLong`] beyond the scheme's 2^38 chunks or `usize`.
pub fn sealed_len(plaintext_len: usize) -> Result<usize, Error> {
    let full = plaintext_len / CHUNK_LEN;
    if full as u64 >= MAX_CHUNKS {
        return Err(Error::MessageTooLong);
    }
    full.checked_mul(SEALED_CHUNK_LEN)
        .and_then(|n| n.checked_add(PREFIX_LEN + plaintext_len % CHUNK_LEN + TAG_LEN))
        .ok_or(Error::MessageTooLong)
}

/// Plaintext length of a ciphertext of `sealed_len` bytes, if that length is valid.
///
/// Invalid lengths (shorter than a prefix and an empty final chunk, or whose last
/// chunk would be a full 16 KiB chunk, i.e. truncated) are rejected.
///
/// # Errors
/// [`Error::Decrypt`] for an invalid length.
pub fn opened_len(sealed_len: usize) -> Result<usize, Error> {
    let body = sealed_len.checked_sub(PREFIX_LEN).ok_or(Error::Decrypt)?;
    let full = body / SEALED_CHUNK_LEN;
    let last = body % SEALED_CHUNK_LEN;
    if last < TAG_LEN || full as u64 >= MAX_CHUNKS {
        return Err(Error::Decrypt);
    }
    Ok(full * CHUNK_LEN + last - TAG_LEN)
}

/// Encrypts `plaintext` into `out`, which must be exactly [`sealed_len`] bytes.
///
/// `threads` = 0 uses every core, 1 stays on the calling thread.
///
/// # Errors
/// [`Error::InvalidKeySize`], [`Error::InvalidSaltSize`], [`Error::OutputLength`],
/// [`Error::MessageTooLong`].
pub fn seal_into(
    input_key: &[u8],
    salt: &[u8],
    context: &[u8],
    plaintext: &[u8],
    out: &mut [u8],
    threads: usize,
) -> Result<(), Error> {
    seal_into_with(
        &InputKey::new(input_key)?,
        salt,
        context,
        plaintext,
        out,
        threads,
    )
}

/// As [`seal_into`] under a prepared input key (many messages under one input key).
///
/// # Errors
/// As [`seal_into`].
pub fn seal_into_with(
    input_key: &InputKey,
    salt: &[u8],
    context: &[u8],
    plaintext: &[u8],
    out: &mut [u8],
    threads: usize,
) -> Result<(), Error> {
    let expected = sealed_len(plaintext.len())?;
    if out.len() != expected {
        return Err(Error::OutputLength {
            expected,
            actual: out.len(),
        });
    }
    let (keys, commitment) =
        KeySchedule::derive_prepared(Label::Cobblestone, input_key, salt, context)?;
    out[..SALT_LEN].copy_from_slice(salt);
    out[SALT_LEN..PREFIX_LEN].copy_from_slice(&commitment);

    let full = plaintext.len() / CHUNK_LEN;
    let (pt_full, pt_last) = plaintext.split_at(full * CHUNK_LEN);
    let (out_full, out_last) = out[PREFIX_LEN..].split_at_mut(full * SEALED_CHUNK_LEN);

    seal_chunks(&keys, 0, pt_full, out_full, threads)?;
    seal_chunk_to(&keys, full as u64, pt_last, out_last)
}

/// Encrypts `plaintext` into a new vector.
///
/// # Errors
/// As [`seal_into`].
pub fn seal(
    input_key: &[u8],
    salt: &[u8],
    context: &[u8],
    plaintext: &[u8],
    threads: usize,
) -> Result<Vec<u8>, Error> {
    let mut out = vec![0u8; sealed_len(plaintext.len())?];
    seal_into(input_key, salt, context, plaintext, &mut out, threads)?;
    Ok(out)
}

/// Decrypts `ciphertext` into `out`, which must be exactly [`opened_len`] bytes.
///
/// The commitment is checked before any chunk is decrypted. On any failure `out`
/// is zeroed, so no unauthenticated or partial plaintext is left behind.
///
/// # Errors
/// [`Error::Decrypt`] for every authentication or length failure (including a
/// wrong-sized key); [`Error::OutputLength`] if `out` has the wrong size.
pub fn open_into(
    input_key: &[u8],
    ciphertext: &[u8],
    context: &[u8],
    out: &mut [u8],
    threads: usize,
) -> Result<(), Error> {
    check_open_len(ciphertext, out)?;
    let result = InputKey::new(input_key)
        .map_err(|_| Error::Decrypt)
        .and_then(|key| open_checked(&key, ciphertext, context, out, threads));
    if result.is_err() {
        out.fill(0);
    }
    result
}

/// As [`open_into`] under a prepared input key (many messages under one input key).
///
/// # Errors
/// As [`open_into`].
pub fn open_into_with(
    input_key: &InputKey,
    ciphertext: &[u8],
    context: &[u8],
    out: &mut [u8],
    threads: usize,
) -> Result<(), Error> {
    check_open_len(ciphertext, out)?;
    let result = open_checked(input_key, ciphertext, context, out, threads);
    if result.is_err() {
        out.fill(0);
    }
    result
}

fn check_open_len(ciphertext: &[u8], out: &[u8]) -> Result<(), Error> {
    let expected = opened_len(ciphertext.len())?;
    if out.len() != expected {
        return Err(Error::OutputLength {
            expected,
            actual: out.len(),
        });
    }
    Ok(())
}

fn open_checked(
    input_key: &InputKey,
    ciphertext: &[u8],
    context: &[u8],
    out: &mut [u8],
    threads: usize,
) -> Result<(), Error> {
    let (salt, commitment) = ciphertext
        .get(..PREFIX_LEN)
        .ok_or(Error::Decrypt)?
        .split_at(SALT_LEN);
    let keys = KeySchedule::derive_and_verify_prepared(
        Label::Cobblestone,
        input_key,
        salt,
        commitment,
        context,
    )?;
    let full = out.len() / CHUNK_LEN;
    let (ct_full, ct_last) = ciphertext[PREFIX_LEN..].split_at(full * SEALED_CHUNK_LEN);
    let (out_full, out_last) = out.split_at_mut(full * CHUNK_LEN);

    open_chunks(&keys, 0, ct_full, out_full, threads)?;
    open_chunk(&keys, full as u64, ct_last, out_last)
}

/// Decrypts `ciphertext` into a new vector.
///
/// # Errors
/// As [`open_into`].
pub fn open(
    input_key: &[u8],
    ciphertext: &[u8],
    context: &[u8],
    threads: usize,
) -> Result<Vec<u8>, Error> {
    let mut out = vec![0u8; opened_len(ciphertext.len())?];
    open_into(input_key, ciphertext, context, &mut out, threads)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_follow_the_spec_examples() {
        // Empty message: one empty chunk.
        assert_eq!(sealed_len(0).unwrap(), PREFIX_LEN + TAG_LEN);
        // 16 KiB: one full chunk and one empty chunk.
        assert_eq!(
            sealed_len(CHUNK_LEN).unwrap(),
            PREFIX_LEN + SEALED_CHUNK_LEN + TAG_LEN
        );
        for n in [
            0,
            1,
            1024,
            CHUNK_LEN - 1,
            CHUNK_LEN,
            CHUNK_LEN + 1,
            20 * 1024,
            5 * CHUNK_LEN,
        ] {
            assert_eq!(opened_len(sealed_len(n).unwrap()).unwrap(), n);
        }
    }

    #[test]
    fn invalid_lengths_are_rejected() {
        for bad in [
            0,
            PREFIX_LEN,
            PREFIX_LEN + TAG_LEN - 1,
            PREFIX_LEN + SEALED_CHUNK_LEN,
        ] {
            assert_eq!(opened_len(bad), Err(Error::Decrypt), "length {bad}");
        }
    }

    #[test]
    fn parallel_and_serial_agree_and_round_trip() {
        let key = [3u8; 32];
        let salt = [9u8; 24];
        let msg: Vec<u8> = (0..(40 * CHUNK_LEN + 77)).map(|i| (i * 31) as u8).collect();
        let one = seal(&key, &salt, b"ctx", &msg, 1).unwrap();
        let all = seal(&key, &salt, b"ctx", &msg, 0).unwrap();
        let two = seal(&key, &salt, b"ctx", &msg, 2).unwrap();
        assert_eq!(one, all);
        assert_eq!(one, two);
        assert_eq!(open(&key, &one, b"ctx", 0).unwrap(), msg);
        assert_eq!(open(&key, &one, b"ctx", 1).unwrap(), msg);
    }

    #[test]
    fn failure_zeroes_the_output() {
        let key = [3u8; 32];
        let msg = vec![0xAAu8; 40 * CHUNK_LEN];
        let mut ct = seal(&key, &[1u8; 24], b"", &msg, 0).unwrap();
        let last = ct.len() - 1;
        ct[last] ^= 1; // final chunk's tag: every earlier chunk opens fine
        let mut out = vec![0u8; msg.len()];
        assert_eq!(open_into(&key, &ct, b"", &mut out, 0), Err(Error::Decrypt));
        assert!(out.iter().all(|&b| b == 0));
    }

    #[test]
    fn chunk_nonce_xors_big_endian_index() {
        let (keys, _) = derive(&[0u8; 32], &[0u8; 24], b"").unwrap();
        let n0 = keys.nonce(0);
        let n = keys.nonce(0x01_0203_0405);
        assert_eq!(&n[..7], &n0[..7]);
        assert_eq!(n[7] ^ n0[7], 0x01);
        assert_eq!(n[11] ^ n0[11], 0x05);
    }
}
