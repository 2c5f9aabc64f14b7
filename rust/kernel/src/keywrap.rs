//! Data keys wrapped under a key-encryption key held in this process (the local
//! keyring), and the message input key derived from a data key:
//!
//! ```text
//! wrapped   = head || nonce (12) || AES-256-GCM(kek, nonce, aad, data key (32)) || tag (16)
//! input key = HKDF-SHA512(ikm = data key [|| cluster part], info = label) to 32 bytes
//! ```
//!
//! `head` (the keyring's blob format and KEK version), `aad` and `label` are the
//! caller's: this module fixes only the layout above, so the local keyring in Python
//! and the one-call message path share one implementation of it.

use zeroize::Zeroizing;

use crate::aead::{Aes256Gcm, KEY_LEN, NONCE_LEN, TAG_LEN};
use crate::Error;

/// Length of a data key, and of a message's input key.
pub const DATA_KEY_LEN: usize = KEY_LEN;

/// A key-encryption key, expanded once (aws-lc wipes it on drop), and the head every
/// blob it wraps starts with.
pub struct KeyWrap {
    kek: Aes256Gcm,
    head: Vec<u8>,
}

impl KeyWrap {
    /// Expands a 32-byte KEK; `head` starts every blob it wraps.
    ///
    /// # Errors
    /// [`Error::InvalidKeySize`] if `kek` is not 32 bytes.
    pub fn new(kek: &[u8], head: &[u8]) -> Result<Self, Error> {
        Ok(Self {
            kek: Aes256Gcm::new(kek)?,
            head: head.to_vec(),
        })
    }

    /// The length of every blob this wraps.
    #[must_use]
    pub fn wrapped_len(&self) -> usize {
        self.head.len() + NONCE_LEN + DATA_KEY_LEN + TAG_LEN
    }

    /// Wraps `data_key` under `nonce` and `aad` into `out` ([`Self::wrapped_len`] bytes).
    ///
    /// # Errors
    /// [`Error::OutputLength`] if `out` has the wrong length.
    pub fn wrap_into(
        &self,
        data_key: &[u8; DATA_KEY_LEN],
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        out: &mut [u8],
    ) -> Result<(), Error> {
        let expected = self.wrapped_len();
        if out.len() != expected {
            return Err(Error::OutputLength {
                expected,
                actual: out.len(),
            });
        }
        let (head, rest) = out.split_at_mut(self.head.len());
        head.copy_from_slice(&self.head);
        let (nonce_out, rest) = rest.split_at_mut(NONCE_LEN);
        nonce_out.copy_from_slice(&nonce);
        let (ct, tag) = rest.split_at_mut(DATA_KEY_LEN);
        self.kek.seal_to(nonce, aad, data_key, ct, tag)
    }

    /// Unwraps a blob made by [`Self::wrap_into`] under the same `aad`.
    ///
    /// # Errors
    /// [`Error::Decrypt`] if `wrapped` has another length or head, or does not
    /// authenticate.
    pub fn unwrap(
        &self,
        wrapped: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<[u8; DATA_KEY_LEN]>, Error> {
        if wrapped.len() != self.wrapped_len() || !wrapped.starts_with(&self.head) {
            return Err(Error::Decrypt);
        }
        let rest = &wrapped[self.head.len()..];
        let (nonce, rest) = rest.split_at(NONCE_LEN);
        let (ct, tag) = rest.split_at(DATA_KEY_LEN);
        let mut nonce_bytes = [0u8; NONCE_LEN];
        nonce_bytes.copy_from_slice(nonce);
        let mut key = Zeroizing::new([0u8; DATA_KEY_LEN]);
        self.kek.open_to(nonce_bytes, aad, ct, tag, &mut key[..])?;
        Ok(key)
    }
}

/// A message's input key: HKDF-SHA512 (no salt) of `data_key`, followed by
/// `cluster_part` when there is one, under `label` (see [`crate::hkdf_sha512`]).
///
/// # Errors
/// [`Error::Internal`] only if aws-lc refuses (it does not for these lengths).
pub fn input_key(
    data_key: &[u8],
    cluster_part: Option<&[u8]>,
    label: &[u8],
) -> Result<Zeroizing<[u8; DATA_KEY_LEN]>, Error> {
    let mut out = Zeroizing::new([0u8; DATA_KEY_LEN]);
    match cluster_part {
        None => crate::hkdf_sha512(data_key, label, &mut out[..])?,
        Some(part) => {
            let mut ikm = Zeroizing::new(Vec::with_capacity(data_key.len() + part.len()));
            ikm.extend_from_slice(data_key);
            ikm.extend_from_slice(part);
            crate::hkdf_sha512(&ikm, label, &mut out[..])?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEK: [u8; 32] = [7u8; 32];
    const HEAD: &[u8] = b"\x01\x00\x00\x00\x03";

    #[test]
    fn wrap_is_head_nonce_and_the_aead_of_the_key() {
        let wrap = KeyWrap::new(&KEK, HEAD).unwrap();
        let key = [9u8; 32];
        let mut out = vec![0u8; wrap.wrapped_len()];
        wrap.wrap_into(&key, [5u8; 12], b"aad", &mut out).unwrap();
        let sealed = crate::aead::seal(&KEK, &[5u8; 12], b"aad", &key).unwrap();
        assert_eq!(out, [HEAD, &[5u8; 12], &sealed].concat());
        assert_eq!(*wrap.unwrap(&out, b"aad").unwrap(), key);
    }

    #[test]
    fn unwrap_refuses_other_aad_heads_lengths_and_flipped_bits() {
        let wrap = KeyWrap::new(&KEK, HEAD).unwrap();
        let mut out = vec![0u8; wrap.wrapped_len()];
        wrap.wrap_into(&[1u8; 32], [2u8; 12], b"aad", &mut out)
            .unwrap();
        assert_eq!(wrap.unwrap(&out, b"aaD"), Err(Error::Decrypt));
        assert_eq!(wrap.unwrap(&out[1..], b"aad"), Err(Error::Decrypt));
        for i in 0..out.len() {
            let mut bad = out.clone();
            bad[i] ^= 1;
            assert_eq!(wrap.unwrap(&bad, b"aad"), Err(Error::Decrypt), "byte {i}");
        }
        let mut short = vec![0u8; wrap.wrapped_len() - 1];
        assert!(wrap
            .wrap_into(&[1u8; 32], [2u8; 12], b"aad", &mut short)
            .is_err());
    }

    #[test]
    fn input_key_is_hkdf_of_the_parts_concatenated() {
        let mut whole = [0u8; 32];
        crate::hkdf_sha512(&[[1u8; 32], [2u8; 32]].concat(), b"split", &mut whole).unwrap();
        assert_eq!(
            *input_key(&[1u8; 32], Some(&[2u8; 32]), b"split").unwrap(),
            whole
        );
        let mut alone = [0u8; 32];
        crate::hkdf_sha512(&[1u8; 32], b"kms", &mut alone).unwrap();
        assert_eq!(*input_key(&[1u8; 32], None, b"kms").unwrap(), alone);
    }
}
