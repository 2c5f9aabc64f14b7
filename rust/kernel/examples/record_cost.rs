//! What sealing one small record costs on one core, by aws-lc API (the physical floor
//! of the batch path; see docs/design.md, "Record batches"):
//!
//! ```text
//! cargo run --release --example record_cost -- aead|raw|copy [records] [bytes]
//! ```
//!
//! `aead`: aws-lc-rs `seal_out_of_place_scatter` (EVP_AEAD_CTX, a fresh GCM state per
//! call); `raw`: one reused `EVP_CIPHER_CTX`, as the kernel's batches do; `copy`: only
//! copying the plaintext into place (memory traffic). The output is pre-faulted, so no
//! page faults are counted. Measurement only: the records are sealed under a fixed key.
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_sys as sys;
use std::time::Instant;

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "raw".into());
    let n: usize = std::env::args()
        .nth(2)
        .map(|s| s.parse().unwrap())
        .unwrap_or(1_000_000);
    let rec: usize = std::env::args()
        .nth(3)
        .map(|s| s.parse().unwrap())
        .unwrap_or(64);
    let reps: usize = 10;
    let input = vec![7u8; n * rec];
    let mut out = vec![1u8; n * (rec + 16)];
    let key = [9u8; 32];
    let lsk = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
    let t = Instant::now();
    for _ in 0..reps {
        match mode.as_str() {
            "aead" => {
                for i in 0..n {
                    let mut nonce = [0u8; 12];
                    nonce[4..].copy_from_slice(&(i as u64).to_be_bytes());
                    let o = &mut out[i * (rec + 16)..(i + 1) * (rec + 16)];
                    let (body, tag) = o.split_at_mut(rec);
                    lsk.seal_out_of_place_scatter(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::empty(),
                        &input[i * rec..(i + 1) * rec],
                        body,
                        &[],
                        tag,
                    )
                    .unwrap();
                }
            }
            // SAFETY: every pointer is inside `input` or `out` for the lengths passed, the
            // context is created, keyed and freed here, and the tag slot is 16 bytes.
            "raw" => unsafe {
                let ctx = sys::EVP_CIPHER_CTX_new();
                sys::EVP_CipherInit_ex(
                    ctx,
                    sys::EVP_aes_256_gcm(),
                    std::ptr::null_mut(),
                    key.as_ptr(),
                    std::ptr::null(),
                    1,
                );
                for i in 0..n {
                    let mut nonce = [0u8; 12];
                    nonce[4..].copy_from_slice(&(i as u64).to_be_bytes());
                    let o = out.as_mut_ptr().add(i * (rec + 16));
                    sys::EVP_CipherInit_ex(
                        ctx,
                        std::ptr::null(),
                        std::ptr::null_mut(),
                        std::ptr::null(),
                        nonce.as_ptr(),
                        -1,
                    );
                    sys::EVP_Cipher(ctx, o, input.as_ptr().add(i * rec), rec);
                    sys::EVP_Cipher(ctx, std::ptr::null_mut(), std::ptr::null(), 0);
                    sys::EVP_CIPHER_CTX_ctrl(ctx, sys::EVP_CTRL_GCM_GET_TAG, 16, o.add(rec).cast());
                }
                sys::EVP_CIPHER_CTX_free(ctx);
            },
            "copy" => {
                for i in 0..n {
                    out[i * (rec + 16)..i * (rec + 16) + rec]
                        .copy_from_slice(&input[i * rec..(i + 1) * rec]);
                }
            }
            other => panic!("unknown mode {other}: aead, raw or copy"),
        }
    }
    let s = t.elapsed().as_secs_f64();
    std::hint::black_box(&out);
    println!(
        "{mode}: {:.1} ns/record  {:.2} M/s",
        s / (n * reps) as f64 * 1e9,
        (n * reps) as f64 / s / 1e6
    );
}
