//! AES-256-GCM for many small records under one key, from aws-lc's `EVP_CIPHER` API.
//!
//! aws-lc-rs seals through `EVP_AEAD_CTX`, which builds a fresh GCM state for every
//! call (zeroing it and copying the 256-byte GHASH key table in): for a 64-byte record
//! that is a quarter of the work. An `EVP_CIPHER_CTX` keeps one GCM state and only
//! resets the counter and hash per nonce, so each worker thread copies a keyed
//! [`GcmTemplate`] into its own [`GcmContext`] once and seals or opens thousands of
//! records with it. The cipher is aws-lc's, the same code aws-lc-rs calls (aws-lc-sys is
//! aws-lc-rs's own binding crate); this module only drives it.
//!
//! This is the kernel's only `unsafe` code: raw FFI calls on a context pointer this
//! module owns.
#![allow(unsafe_code)]

use std::mem::MaybeUninit;
use std::ptr::NonNull;

use aws_lc_sys as sys;

use crate::aead::{KEY_LEN, NONCE_LEN, TAG_LEN};
use crate::Error;

/// `EVP_Cipher` takes at most `INT_MAX` bytes a call; longer inputs go in pieces of
/// this many bytes (a multiple of the block size, so the GCM state carries over exactly).
const PIECE: usize = 1 << 30;

/// An owned `EVP_CIPHER_CTX`, freed (and its key schedule wiped by aws-lc) on drop.
struct Ctx(NonNull<sys::EVP_CIPHER_CTX>);

impl Ctx {
    fn new() -> Result<Self, Error> {
        // SAFETY: EVP_CIPHER_CTX_new has no preconditions; NULL (out of memory) is handled.
        NonNull::new(unsafe { sys::EVP_CIPHER_CTX_new() })
            .map(Self)
            .ok_or(Error::Internal)
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        // SAFETY: the pointer came from EVP_CIPHER_CTX_new and is freed only here.
        // aws-lc cleanses the GCM state and the key schedule before freeing them.
        unsafe { sys::EVP_CIPHER_CTX_free(self.0.as_ptr()) }
    }
}

/// A keyed AES-256-GCM context that is only ever copied, never used to seal.
pub(crate) struct GcmTemplate(Ctx);

// SAFETY: after `new` the template is only read, by EVP_CIPHER_CTX_copy (which takes a
// const pointer and does not mutate its source), so sharing it between threads is sound.
unsafe impl Send for GcmTemplate {}
// SAFETY: as above: `&GcmTemplate` only permits concurrent reads.
unsafe impl Sync for GcmTemplate {}

impl GcmTemplate {
    /// Expands `key` once.
    ///
    /// # Errors
    /// [`Error::Internal`] if aws-lc cannot allocate or key the context.
    pub(crate) fn new(key: &[u8; KEY_LEN]) -> Result<Self, Error> {
        let ctx = Ctx::new()?;
        // SAFETY: `ctx` is a fresh context; the cipher is a static aws-lc table; `key`
        // is 32 bytes, AES-256's key length; a NULL IV is allowed (set per record).
        let ok = unsafe {
            sys::EVP_CipherInit_ex(
                ctx.0.as_ptr(),
                sys::EVP_aes_256_gcm(),
                std::ptr::null_mut(),
                key.as_ptr(),
                std::ptr::null(),
                1,
            )
        };
        if ok != 1 {
            return Err(Error::Internal);
        }
        Ok(Self(ctx))
    }

    /// A context of this key for one thread.
    ///
    /// # Errors
    /// [`Error::Internal`] if aws-lc cannot allocate it.
    pub(crate) fn context(&self) -> Result<GcmContext, Error> {
        let ctx = Ctx::new()?;
        // SAFETY: both pointers are live contexts owned by `Ctx` values; the source is
        // keyed (checked in `new`) and only read.
        let ok = unsafe { sys::EVP_CIPHER_CTX_copy(ctx.0.as_ptr(), self.0 .0.as_ptr()) };
        if ok != 1 {
            return Err(Error::Internal);
        }
        Ok(GcmContext(ctx))
    }
}

/// One thread's AES-256-GCM state: seals or opens one record at a time.
pub(crate) struct GcmContext(Ctx);

// SAFETY: the context is owned (not shared) and aws-lc keeps no thread-affine state in
// it, so it may move to another thread; `&mut self` on every use keeps it unshared.
unsafe impl Send for GcmContext {}

impl GcmContext {
    fn start(&mut self, nonce: &[u8; NONCE_LEN], encrypt: bool, aad: &[u8]) -> Result<(), Error> {
        let ctx = self.0 .0.as_ptr();
        // SAFETY: `ctx` is keyed (a copy of the template); a NULL cipher and key keep both
        // and set only the 12-byte IV (GCM's default IV length), resetting the GCM state.
        let ok = unsafe {
            sys::EVP_CipherInit_ex(
                ctx,
                std::ptr::null(),
                std::ptr::null_mut(),
                std::ptr::null(),
                nonce.as_ptr(),
                i32::from(encrypt),
            )
        };
        if ok != 1 {
            return Err(Error::Internal);
        }
        for piece in aad.chunks(PIECE) {
            // SAFETY: a NULL output with input hashes `piece` (valid for its length,
            // at most INT_MAX) as AAD.
            if unsafe { sys::EVP_Cipher(ctx, std::ptr::null_mut(), piece.as_ptr(), piece.len()) }
                < 0
            {
                return Err(Error::Internal);
            }
        }
        Ok(())
    }

    /// Runs the keystream over `input` into `out` (same length).
    fn crypt(&mut self, input: &[u8], out: &mut [MaybeUninit<u8>]) -> Result<(), Error> {
        debug_assert_eq!(input.len(), out.len());
        let ctx = self.0 .0.as_ptr();
        for (src, dst) in input.chunks(PIECE).zip(out.chunks_mut(PIECE)) {
            // SAFETY: `src` is readable and `dst` writable for `src.len()` bytes (equal
            // lengths, at most INT_MAX); they do not overlap (one is borrowed shared, the
            // other exclusively). aws-lc only writes to `dst`, never reads it.
            let ret = unsafe {
                sys::EVP_Cipher(ctx, dst.as_mut_ptr().cast::<u8>(), src.as_ptr(), src.len())
            };
            if ret < 0 {
                return Err(Error::Internal);
            }
        }
        Ok(())
    }

    /// Seals `plaintext` under `nonce` into `out` (same length) and its tag into `tag`.
    /// On success every byte of `out` and `tag` is written.
    ///
    /// # Errors
    /// [`Error::Internal`] if aws-lc refuses (lengths are checked by the callers).
    pub(crate) fn seal(
        &mut self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut [MaybeUninit<u8>],
        tag: &mut [MaybeUninit<u8>],
    ) -> Result<(), Error> {
        if out.len() != plaintext.len() || tag.len() != TAG_LEN {
            return Err(Error::Internal);
        }
        self.start(nonce, true, aad)?;
        self.crypt(plaintext, out)?;
        let ctx = self.0 .0.as_ptr();
        // SAFETY: a NULL input finishes the encryption (the tag goes into the context);
        // GET_TAG then copies TAG_LEN bytes into `tag`, which holds exactly that many.
        let ok = unsafe {
            sys::EVP_Cipher(ctx, std::ptr::null_mut(), std::ptr::null(), 0) >= 0
                && sys::EVP_CIPHER_CTX_ctrl(
                    ctx,
                    sys::EVP_CTRL_GCM_GET_TAG,
                    TAG_LEN as i32,
                    tag.as_mut_ptr().cast(),
                ) == 1
        };
        if ok {
            Ok(())
        } else {
            Err(Error::Internal)
        }
    }

    /// Opens `ciphertext` (without its tag) under `nonce` into `out` (same length).
    /// Every byte of `out` is written: the plaintext, or zeros on failure.
    ///
    /// # Errors
    /// [`Error::Decrypt`] if the tag does not authenticate.
    pub(crate) fn open(
        &mut self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8; TAG_LEN],
        out: &mut [MaybeUninit<u8>],
    ) -> Result<(), Error> {
        let ok = out.len() == ciphertext.len() && self.try_open(nonce, aad, ciphertext, tag, out);
        if ok {
            Ok(())
        } else {
            out.fill(MaybeUninit::new(0));
            Err(Error::Decrypt)
        }
    }

    fn try_open(
        &mut self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8; TAG_LEN],
        out: &mut [MaybeUninit<u8>],
    ) -> bool {
        if self.start(nonce, false, aad).is_err() {
            return false;
        }
        let ctx = self.0 .0.as_ptr();
        // SAFETY: SET_TAG copies TAG_LEN bytes from `tag` into the context (it only
        // reads through the pointer, which aws-lc's signature declares mutable).
        let set = unsafe {
            sys::EVP_CIPHER_CTX_ctrl(
                ctx,
                sys::EVP_CTRL_GCM_SET_TAG,
                TAG_LEN as i32,
                tag.as_ptr().cast_mut().cast(),
            )
        };
        if set != 1 || self.crypt(ciphertext, out).is_err() {
            return false;
        }
        // SAFETY: a NULL input finishes the decryption: aws-lc compares the computed tag
        // with the one set above in constant time and returns -1 if they differ.
        unsafe { sys::EVP_Cipher(ctx, std::ptr::null_mut(), std::ptr::null(), 0) >= 0 }
    }
}

/// One record through a fresh batch context, with the signature of [`crate::aead::seal`]
/// (`ciphertext || tag`): how the Wycheproof and NIST vectors reach this module's path.
///
/// # Errors
/// [`Error::Internal`] for a key or nonce of the wrong length, or if aws-lc refuses.
pub fn seal_one(key: &[u8], nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
    let key: &[u8; KEY_LEN] = key.try_into().map_err(|_| Error::Internal)?;
    let nonce: &[u8; NONCE_LEN] = nonce.try_into().map_err(|_| Error::Internal)?;
    let mut ctx = GcmTemplate::new(key)?.context()?;
    let mut out = vec![MaybeUninit::uninit(); plaintext.len()];
    let mut tag = [MaybeUninit::uninit(); TAG_LEN];
    ctx.seal(nonce, aad, plaintext, &mut out, &mut tag)?;
    // SAFETY: `seal` succeeded, so it wrote every byte of `out` and `tag`.
    Ok(out
        .iter()
        .chain(tag.iter())
        .map(|b| unsafe { b.assume_init() })
        .collect())
}

/// The inverse of [`seal_one`], with the signature of [`crate::aead::open`].
///
/// # Errors
/// [`Error::Decrypt`] if `sealed` does not authenticate (or is shorter than a tag);
/// [`Error::Internal`] for a key or nonce of the wrong length.
pub fn open_one(key: &[u8], nonce: &[u8], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, Error> {
    let key: &[u8; KEY_LEN] = key.try_into().map_err(|_| Error::Internal)?;
    let nonce: &[u8; NONCE_LEN] = nonce.try_into().map_err(|_| Error::Internal)?;
    let split = sealed.len().checked_sub(TAG_LEN).ok_or(Error::Decrypt)?;
    let (ciphertext, tag) = sealed.split_at(split);
    let tag: &[u8; TAG_LEN] = tag.try_into().map_err(|_| Error::Internal)?;
    let mut ctx = GcmTemplate::new(key)?.context()?;
    let mut out = vec![MaybeUninit::uninit(); ciphertext.len()];
    ctx.open(nonce, aad, ciphertext, tag, &mut out)?;
    // SAFETY: `open` writes every byte of `out` (the plaintext, or zeros on failure).
    Ok(out.iter().map(|b| unsafe { b.assume_init() }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aead::{open, seal};

    fn init(v: &[MaybeUninit<u8>]) -> Vec<u8> {
        // SAFETY: test only: called on buffers the code under test fully wrote.
        v.iter().map(|b| unsafe { b.assume_init() }).collect()
    }

    #[test]
    fn agrees_with_aws_lc_rs_both_ways() {
        let key = [3u8; KEY_LEN];
        let t = GcmTemplate::new(&key).unwrap();
        let mut c = t.context().unwrap();
        for (len, aad) in [
            (0usize, &b""[..]),
            (1, b"a"),
            (64, b""),
            (1000, b"aad bytes"),
        ] {
            let nonce = [len as u8; NONCE_LEN];
            let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut out = vec![MaybeUninit::uninit(); len];
            let mut tag = [MaybeUninit::uninit(); TAG_LEN];
            c.seal(&nonce, aad, &pt, &mut out, &mut tag).unwrap();
            let mut sealed = init(&out);
            sealed.extend(init(&tag));
            assert_eq!(sealed, seal(&key, &nonce, aad, &pt).unwrap());
            assert_eq!(open(&key, &nonce, aad, &sealed).unwrap(), pt);
            let tag: [u8; TAG_LEN] = sealed[len..].try_into().unwrap();
            let mut back = vec![MaybeUninit::uninit(); len];
            c.open(&nonce, aad, &sealed[..len], &tag, &mut back)
                .unwrap();
            assert_eq!(init(&back), pt);
            let mut bad = tag;
            bad[0] ^= 1;
            assert_eq!(
                c.open(&nonce, aad, &sealed[..len], &bad, &mut back),
                Err(Error::Decrypt)
            );
            assert!(init(&back).iter().all(|&b| b == 0));
            // The context recovers after a failure.
            c.open(&nonce, aad, &sealed[..len], &tag, &mut back)
                .unwrap();
            assert_eq!(init(&back), pt);
        }
    }
}
