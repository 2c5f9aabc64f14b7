//! AES-256-GCM with 96-bit nonces and 128-bit tags, from aws-lc-rs.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_256_GCM};

use crate::Error;

/// AES-256 key length in bytes.
pub const KEY_LEN: usize = 32;
/// GCM nonce length in bytes.
pub const NONCE_LEN: usize = 12;
/// GCM tag length in bytes.
pub const TAG_LEN: usize = 16;

/// An expanded AES-256-GCM key. Key material lives inside aws-lc, which wipes it on drop.
pub struct Aes256Gcm {
    key: LessSafeKey,
}

impl Aes256Gcm {
    /// Expands a 32-byte key.
    ///
    /// # Errors
    /// [`Error::InvalidKeySize`] if `key` is not 32 bytes.
    pub fn new(key: &[u8]) -> Result<Self, Error> {
        if key.len() != KEY_LEN {
            return Err(Error::InvalidKeySize);
        }
        let unbound = UnboundKey::new(&AES_256_GCM, key).map_err(|_| Error::InvalidKeySize)?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
        })
    }

    /// Encrypts `in_out` in place and returns the tag.
    ///
    /// # Errors
    /// [`Error::Internal`] if aws-lc refuses (only for inputs beyond GCM's length limit).
    pub fn seal_in_place(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], Error> {
        let tag: Tag = self
            .key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), in_out)
            .map_err(|_| Error::Internal)?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Encrypts `plaintext` into `out` (same length) and writes the tag into `tag_out`.
    ///
    /// # Errors
    /// [`Error::Internal`] if aws-lc refuses (lengths are checked by the callers).
    pub fn seal_to(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
        tag_out: &mut [u8],
    ) -> Result<(), Error> {
        self.key
            .seal_out_of_place_scatter(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                plaintext,
                out,
                &[],
                tag_out,
            )
            .map_err(|_| Error::Internal)
    }

    /// Decrypts `ciphertext` (without tag) into `out`, which must be as long as `ciphertext`.
    /// On failure `out` is zeroed.
    ///
    /// # Errors
    /// [`Error::Decrypt`] if the tag does not authenticate.
    pub fn open_to(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8],
        out: &mut [u8],
    ) -> Result<(), Error> {
        debug_assert_eq!(ciphertext.len(), out.len());
        let res = self.key.open_separate_gather(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            ciphertext,
            tag,
            out,
        );
        if res.is_err() {
            out.fill(0);
            return Err(Error::Decrypt);
        }
        Ok(())
    }
}

/// One-shot AES-256-GCM encryption; returns `ciphertext || tag`. For test vectors and tools.
///
/// # Errors
/// [`Error::InvalidKeySize`] or [`Error::InvalidNonceSize`] on bad lengths.
pub fn seal(key: &[u8], nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| Error::InvalidNonceSize)?;
    let cipher = Aes256Gcm::new(key)?;
    let mut out = Vec::with_capacity(plaintext.len() + TAG_LEN);
    out.extend_from_slice(plaintext);
    let tag = cipher.seal_in_place(nonce, aad, &mut out)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// One-shot AES-256-GCM decryption of `ciphertext || tag`. For test vectors and tools.
///
/// # Errors
/// [`Error::InvalidKeySize`] or [`Error::InvalidNonceSize`] on bad lengths;
/// [`Error::Decrypt`] if it does not authenticate.
pub fn open(key: &[u8], nonce: &[u8], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, Error> {
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| Error::InvalidNonceSize)?;
    let cipher = Aes256Gcm::new(key)?;
    if sealed.len() < TAG_LEN {
        return Err(Error::Decrypt);
    }
    let (ct, tag) = sealed.split_at(sealed.len() - TAG_LEN);
    let mut out = vec![0u8; ct.len()];
    cipher.open_to(nonce, aad, ct, tag, &mut out)?;
    Ok(out)
}
