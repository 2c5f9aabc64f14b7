//! The kernel's one key schedule, shared by messages and record batches:
//!
//! ```text
//! key (32) || base nonce (12) || commitment (32) =
//!     HKDF-Expand-SHA512(prk = input key, info = label || "AEAD_AES_256_GCM" || 0x00 || salt || context)
//! nonce(i) = base nonce XOR i (96-bit big-endian)
//! ```
//!
//! Messages use Cobblestone's label, batches their own ([`Label`]); nothing else differs.
//! This module owns the salt and commitment sizes; it depends only on [`crate::aead`].
//!
//! HKDF-Expand is aws-lc's (`aws_lc_rs::hkdf`): an [`InputKey`] is the input key checked
//! and held as aws-lc's PRK once per data key, so many messages under one cached key do
//! not check and copy it again. Computing HKDF-Expand by hand over HMAC (to keep HMAC's
//! padded-key states and save two SHA-512 blocks a message) was measured and not kept:
//! the project takes HKDF itself from a vetted library.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::hkdf::{KeyType, Prk, HKDF_SHA512};
use zeroize::Zeroizing;

use crate::aead::{Aes256Gcm, KEY_LEN, NONCE_LEN, TAG_LEN};
use crate::Error;

/// Salt length.
pub const SALT_LEN: usize = 24;
/// Commitment length.
pub const COMMITMENT_LEN: usize = 32;

const AEAD_NAME: &[u8] = b"AEAD_AES_256_GCM";
const DERIVED_LEN: usize = KEY_LEN + NONCE_LEN + COMMITMENT_LEN;

/// What a key schedule is for. Each purpose has its own HKDF label, so a batch key
/// can never equal a message key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Label {
    /// c2sp.org/chunked-encryption (Cobblestone-256) messages.
    Cobblestone,
    /// envelope's record batches.
    RecordBatch,
}

impl Label {
    fn bytes(self) -> &'static [u8] {
        match self {
            Label::Cobblestone => b"c2sp.org/chunked-encryption@v1+",
            Label::RecordBatch => b"envelope.dev/v1 record batch+",
        }
    }
}

/// HMAC-SHA512 output length: one HKDF-Expand block.
const HASH_LEN: usize = 64;

struct DerivedLen;

impl KeyType for DerivedLen {
    fn len(&self) -> usize {
        DERIVED_LEN
    }
}

/// An input key (the HKDF PRK), checked and held by aws-lc once, for deriving many
/// messages' keys from one input key (a cached data key). aws-lc wipes it on drop.
pub struct InputKey {
    prk: Prk,
}

impl InputKey {
    /// Prepares a 32-byte input key.
    ///
    /// # Errors
    /// [`Error::InvalidKeySize`] if `input_key` is not 32 bytes.
    pub fn new(input_key: &[u8]) -> Result<Self, Error> {
        if input_key.len() != KEY_LEN {
            return Err(Error::InvalidKeySize);
        }
        Ok(Self {
            prk: Prk::new_less_safe(HKDF_SHA512, input_key),
        })
    }

    /// HKDF-Expand-SHA512 of `label || AEAD_NAME || 0x00 || salt || context` to
    /// [`DERIVED_LEN`] bytes, by aws-lc.
    fn expand(
        &self,
        label: Label,
        salt: &[u8],
        context: &[u8],
    ) -> Result<Zeroizing<[u8; DERIVED_LEN]>, Error> {
        let info: [&[u8]; 5] = [label.bytes(), AEAD_NAME, &[0u8], salt, context];
        let mut okm = Zeroizing::new([0u8; DERIVED_LEN]);
        self.prk
            .expand(&info, DerivedLen)
            .and_then(|o| o.fill(&mut okm[..]))
            .map_err(|_| Error::Internal)?;
        Ok(okm)
    }
}

/// HKDF-SHA512 (RFC 5869) with no salt (`HashLen` zero bytes): extracts `ikm` and
/// expands it under `info` into `out` (at most 255 * 64 bytes). envelope derives a
/// message's input key from its data key (and cluster part) with it.
///
/// # Errors
/// [`Error::OutputLength`] for an empty or too long `out`.
pub fn hkdf_sha512(ikm: &[u8], info: &[u8], out: &mut [u8]) -> Result<(), Error> {
    use aws_lc_rs::hkdf::Salt;

    struct Len(usize);
    impl KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    if out.is_empty() || out.len() > 255 * HASH_LEN {
        return Err(Error::OutputLength {
            expected: HASH_LEN,
            actual: out.len(),
        });
    }
    let prk = Salt::new(HKDF_SHA512, &[0u8; HASH_LEN]).extract(ikm);
    prk.expand(&[info], Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| Error::Internal)
}

/// An AEAD key and its base nonce: everything needed to seal or open item `i`
/// (a message chunk or a batch record) under nonce `base nonce XOR i`.
pub(crate) struct KeySchedule {
    cipher: Aes256Gcm,
    base_nonce: [u8; NONCE_LEN],
}

impl Drop for KeySchedule {
    fn drop(&mut self) {
        // The AES key is wiped by aws-lc; the nonce is not secret but costs nothing to clear.
        zeroize::Zeroize::zeroize(&mut self.base_nonce);
    }
}

impl KeySchedule {
    /// Derives the schedule and the commitment for `(input_key, salt, context)` under `label`.
    ///
    /// # Errors
    /// [`Error::InvalidKeySize`], [`Error::InvalidSaltSize`].
    pub(crate) fn derive(
        label: Label,
        input_key: &[u8],
        salt: &[u8],
        context: &[u8],
    ) -> Result<(Self, [u8; COMMITMENT_LEN]), Error> {
        Self::derive_with(label, input_key, salt, context, |_| Ok(())).map(|(s, c, ())| (s, c))
    }

    /// As [`KeySchedule::derive`], also handing the AES key to `also` (for a second
    /// expansion of the same key; the bytes are wiped when this returns).
    pub(crate) fn derive_with<T>(
        label: Label,
        input_key: &[u8],
        salt: &[u8],
        context: &[u8],
        also: impl FnOnce(&[u8; KEY_LEN]) -> Result<T, Error>,
    ) -> Result<(Self, [u8; COMMITMENT_LEN], T), Error> {
        Self::derive_prepared_with(label, &InputKey::new(input_key)?, salt, context, also)
    }

    /// As [`KeySchedule::derive`] from a prepared input key.
    ///
    /// # Errors
    /// [`Error::InvalidSaltSize`].
    pub(crate) fn derive_prepared(
        label: Label,
        input_key: &InputKey,
        salt: &[u8],
        context: &[u8],
    ) -> Result<(Self, [u8; COMMITMENT_LEN]), Error> {
        Self::derive_prepared_with(label, input_key, salt, context, |_| Ok(()))
            .map(|(s, c, ())| (s, c))
    }

    /// As [`KeySchedule::derive_with`] from a prepared input key.
    ///
    /// # Errors
    /// [`Error::InvalidSaltSize`], or what `also` returns.
    pub(crate) fn derive_prepared_with<T>(
        label: Label,
        input_key: &InputKey,
        salt: &[u8],
        context: &[u8],
        also: impl FnOnce(&[u8; KEY_LEN]) -> Result<T, Error>,
    ) -> Result<(Self, [u8; COMMITMENT_LEN], T), Error> {
        if salt.len() != SALT_LEN {
            return Err(Error::InvalidSaltSize);
        }
        let okm = input_key.expand(label, salt, context)?;
        let cipher = Aes256Gcm::new(&okm[..KEY_LEN])?;
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(&okm[..KEY_LEN]);
        let extra = also(&key)?;
        let mut base_nonce = [0u8; NONCE_LEN];
        base_nonce.copy_from_slice(&okm[KEY_LEN..KEY_LEN + NONCE_LEN]);
        let mut commitment = [0u8; COMMITMENT_LEN];
        commitment.copy_from_slice(&okm[KEY_LEN + NONCE_LEN..]);
        Ok((Self { cipher, base_nonce }, commitment, extra))
    }

    /// Derives the schedule for decryption and checks `commitment` in constant time.
    ///
    /// # Errors
    /// [`Error::Decrypt`] for a wrong key (of any size), salt, context or commitment.
    pub(crate) fn derive_and_verify(
        label: Label,
        input_key: &[u8],
        salt: &[u8],
        commitment: &[u8],
        context: &[u8],
    ) -> Result<Self, Error> {
        let input_key = InputKey::new(input_key).map_err(|_| Error::Decrypt)?;
        Self::derive_and_verify_prepared(label, &input_key, salt, commitment, context)
    }

    /// As [`KeySchedule::derive_and_verify`] from a prepared input key.
    ///
    /// # Errors
    /// [`Error::Decrypt`] for a wrong key, salt, context or commitment.
    pub(crate) fn derive_and_verify_prepared(
        label: Label,
        input_key: &InputKey,
        salt: &[u8],
        commitment: &[u8],
        context: &[u8],
    ) -> Result<Self, Error> {
        let (keys, expected) =
            Self::derive_prepared(label, input_key, salt, context).map_err(|_| Error::Decrypt)?;
        verify_slices_are_equal(commitment, &expected).map_err(|_| Error::Decrypt)?;
        Ok(keys)
    }

    /// The nonce for item `index`: the base nonce XOR the index as a 96-bit big-endian integer.
    #[inline]
    pub(crate) fn nonce(&self, index: u64) -> [u8; NONCE_LEN] {
        let mut nonce = self.base_nonce;
        for (n, c) in nonce[NONCE_LEN - 8..].iter_mut().zip(index.to_be_bytes()) {
            *n ^= c;
        }
        nonce
    }

    /// Seals `in_out` in place as item `index` and returns the tag.
    #[inline]
    pub(crate) fn seal_in_place(
        &self,
        index: u64,
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], Error> {
        self.cipher.seal_in_place(self.nonce(index), aad, in_out)
    }

    /// Seals `plaintext` as item `index` into `out` (same length) and its tag into `tag_out`.
    #[inline]
    pub(crate) fn seal_to(
        &self,
        index: u64,
        aad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
        tag_out: &mut [u8],
    ) -> Result<(), Error> {
        self.cipher
            .seal_to(self.nonce(index), aad, plaintext, out, tag_out)
    }

    /// Opens item `index` (`ciphertext`, `tag`) into `out`; zeroes `out` on failure.
    #[inline]
    pub(crate) fn open_to(
        &self,
        index: u64,
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8],
        out: &mut [u8],
    ) -> Result<(), Error> {
        self.cipher
            .open_to(self.nonce(index), aad, ciphertext, tag, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::hkdf::{KeyType, Prk, HKDF_SHA512};

    struct Len(usize);

    impl KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }

    /// aws-lc's own HKDF-Expand of the same info: the reference for [`InputKey::expand`].
    fn reference(label: Label, key: &[u8], salt: &[u8], context: &[u8]) -> Vec<u8> {
        let info: [&[u8]; 5] = [label.bytes(), AEAD_NAME, &[0u8], salt, context];
        let mut out = vec![0u8; DERIVED_LEN];
        Prk::new_less_safe(HKDF_SHA512, key)
            .expand(&info, Len(DERIVED_LEN))
            .unwrap()
            .fill(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn expand_matches_aws_lc_hkdf_for_every_context_length() {
        for label in [Label::Cobblestone, Label::RecordBatch] {
            for n in [
                0, 1, 7, 23, 24, 31, 32, 33, 55, 56, 57, 64, 100, 128, 200, 300, 1000,
            ] {
                let key: Vec<u8> = (0..32).map(|i| (i * 7 + n) as u8).collect();
                let salt: Vec<u8> = (0..24).map(|i| (i * 13 + n) as u8).collect();
                let context: Vec<u8> = (0..n).map(|i| (i * 31 + 5) as u8).collect();
                let okm = InputKey::new(&key)
                    .unwrap()
                    .expand(label, &salt, &context)
                    .unwrap();
                assert_eq!(
                    &okm[..],
                    &reference(label, &key, &salt, &context)[..],
                    "{label:?} {n}"
                );
            }
        }
    }

    #[test]
    fn prepared_and_one_shot_derivations_agree() {
        let key = InputKey::new(&[7u8; 32]).unwrap();
        let (a, ca) =
            KeySchedule::derive_prepared(Label::Cobblestone, &key, &[1u8; 24], b"c").unwrap();
        let (b, cb) =
            KeySchedule::derive(Label::Cobblestone, &[7u8; 32], &[1u8; 24], b"c").unwrap();
        assert_eq!(ca, cb);
        assert_eq!(a.nonce(5), b.nonce(5));
        assert!(InputKey::new(&[7u8; 31]).is_err());
    }

    #[test]
    fn labels_separate_the_schedules() {
        let (m, cm) =
            KeySchedule::derive(Label::Cobblestone, &[7u8; 32], &[1u8; 24], b"c").unwrap();
        let (b, cb) =
            KeySchedule::derive(Label::RecordBatch, &[7u8; 32], &[1u8; 24], b"c").unwrap();
        assert_ne!(cm, cb);
        assert_ne!(m.nonce(0), b.nonce(0));
    }

    #[test]
    fn verify_rejects_wrong_sizes_and_commitments_opaquely() {
        let (_, c) = KeySchedule::derive(Label::RecordBatch, &[7u8; 32], &[1u8; 24], b"").unwrap();
        let verify = |key: &[u8], salt: &[u8], commitment: &[u8]| {
            KeySchedule::derive_and_verify(Label::RecordBatch, key, salt, commitment, b"")
                .map(|_| ())
        };
        assert_eq!(verify(&[7u8; 32], &[1u8; 24], &c), Ok(()));
        assert_eq!(verify(&[7u8; 31], &[1u8; 24], &c), Err(Error::Decrypt));
        assert_eq!(verify(&[7u8; 32], &[1u8; 23], &c), Err(Error::Decrypt));
        assert_eq!(
            verify(&[7u8; 32], &[1u8; 24], &c[..31]),
            Err(Error::Decrypt)
        );
        assert_eq!(verify(&[6u8; 32], &[1u8; 24], &c), Err(Error::Decrypt));
    }
}
