//! The AES-256-GCM data plane of envelope.
//!
//! This crate knows nothing about Python, KMS providers or the envelope header:
//! it implements [c2sp.org/chunked-encryption] ("Cobblestone") instantiated with
//! `AEAD_AES_256_GCM` and HKDF-Expand SHA-512 on plain byte buffers, one-shot
//! (chunks spread over a thread pool) and incrementally for streams.
//!
//! All primitives come from aws-lc (through `aws-lc-rs`, and for record batches its
//! `EVP_CIPHER` API directly, see `gcm`); nothing here is a homemade primitive.
//!
//! [c2sp.org/chunked-encryption]: https://c2sp.org/chunked-encryption
// `gcm` is the one module allowed FFI calls into aws-lc.
#![deny(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod aead;
pub mod batch;
pub mod cobblestone;
mod error;
/// The record batches' AES-256-GCM context (aws-lc `EVP_CIPHER`); public only so that
/// the vector tests reach it ([`gcm::seal_one`], [`gcm::open_one`]).
#[doc(hidden)]
pub mod gcm;
mod kdf;
pub mod keywrap;
mod nonces;
mod parallel;

pub use kdf::hkdf_sha512;
pub use parallel::zero_fill;
pub mod stream;

pub use error::Error;
