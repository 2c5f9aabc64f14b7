//! The kernel's one key derivation, shared by messages and record batches:
//!
//! ```text
//! key (32) || base nonce (12) || commitment (32) =
//!     HKDF-Expand-SHA512(prk = input key, info = label || "AEAD_AES_256_GCM" || 0x00 || salt || context)
//! ```
//!
//! Messages use Cobblestone's label, batches their own; nothing else differs.

use aws_lc_rs::hkdf::{KeyType, Prk, HKDF_SHA512};
use zeroize::Zeroizing;

use crate::aead::{Aes256Gcm, KEY_LEN, NONCE_LEN};
use crate::cobblestone::{COMMITMENT_LEN, SALT_LEN};
use crate::Error;

const AEAD_NAME: &[u8] = b"AEAD_AES_256_GCM";
const DERIVED_LEN: usize = KEY_LEN + NONCE_LEN + COMMITMENT_LEN;

struct DerivedLen;

impl KeyType for DerivedLen {
    fn len(&self) -> usize {
        DERIVED_LEN
    }
}

/// An AEAD key, its base nonce, and the commitment to both.
pub(crate) struct Derived {
    pub(crate) cipher: Aes256Gcm,
    pub(crate) base_nonce: [u8; NONCE_LEN],
    pub(crate) commitment: [u8; COMMITMENT_LEN],
}

/// Derives under `label` (see the module documentation).
pub(crate) fn expand(
    label: &[u8],
    input_key: &[u8],
    salt: &[u8],
    context: &[u8],
) -> Result<Derived, Error> {
    if input_key.len() != KEY_LEN {
        return Err(Error::InvalidKeySize);
    }
    if salt.len() != SALT_LEN {
        return Err(Error::InvalidSaltSize);
    }
    let prk = Prk::new_less_safe(HKDF_SHA512, input_key);
    let info: [&[u8]; 5] = [label, AEAD_NAME, &[0u8], salt, context];
    let mut okm = Zeroizing::new([0u8; DERIVED_LEN]);
    prk.expand(&info, DerivedLen)
        .and_then(|o| o.fill(&mut okm[..]))
        .map_err(|_| Error::Internal)?;
    let cipher = Aes256Gcm::new(&okm[..KEY_LEN])?;
    let mut base_nonce = [0u8; NONCE_LEN];
    base_nonce.copy_from_slice(&okm[KEY_LEN..KEY_LEN + NONCE_LEN]);
    let mut commitment = [0u8; COMMITMENT_LEN];
    commitment.copy_from_slice(&okm[KEY_LEN + NONCE_LEN..]);
    Ok(Derived {
        cipher,
        base_nonce,
        commitment,
    })
}

/// The nonce for counter `index`: the base nonce XOR the index as a 96-bit big-endian integer.
#[inline]
pub(crate) fn counter_nonce(base: &[u8; NONCE_LEN], index: u64) -> [u8; NONCE_LEN] {
    let mut nonce = *base;
    for (n, c) in nonce[NONCE_LEN - 8..].iter_mut().zip(index.to_be_bytes()) {
        *n ^= c;
    }
    nonce
}
