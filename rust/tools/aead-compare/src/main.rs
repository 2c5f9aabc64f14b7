//! Measures AES-256-GCM seal/open in place on 16 KiB chunks (the Cobblestone
//! chunk size) and 64-byte records, and HKDF-SHA512 expand, for aws-lc-rs and
//! ring, on one core. Run: `cargo run --release` in this directory.
use std::time::Instant;

const CHUNK: usize = 16 * 1024;
const TOTAL: usize = 256 * 1024 * 1024;

fn report(name: &str, bytes: usize, secs: f64) {
    println!("{name:40} {:8.2} GB/s", bytes as f64 / secs / 1e9);
}

fn report_ops(name: &str, ops: usize, secs: f64) {
    println!("{name:40} {:8.2} M ops/s", ops as f64 / secs / 1e6);
}

fn bench_awslc(buf: &mut [u8], rec: usize) {
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap());
    let t = Instant::now();
    let mut tags = 0u8;
    for (i, c) in buf.chunks_mut(rec).enumerate() {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&(i as u64).to_be_bytes());
        let tag = key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(n), Aad::empty(), c)
            .unwrap();
        tags ^= tag.as_ref()[0];
    }
    let s = t.elapsed().as_secs_f64();
    std::hint::black_box(tags);
    if rec == CHUNK {
        report("aws-lc-rs seal 16KiB chunks", buf.len(), s);
    } else {
        report_ops(&format!("aws-lc-rs seal {rec} B records"), buf.len() / rec, s);
    }
}

fn bench_ring(buf: &mut [u8], rec: usize) {
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap());
    let t = Instant::now();
    let mut tags = 0u8;
    for (i, c) in buf.chunks_mut(rec).enumerate() {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&(i as u64).to_be_bytes());
        let tag = key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(n), Aad::empty(), c)
            .unwrap();
        tags ^= tag.as_ref()[0];
    }
    let s = t.elapsed().as_secs_f64();
    std::hint::black_box(tags);
    if rec == CHUNK {
        report("ring seal 16KiB chunks", buf.len(), s);
    } else {
        report_ops(&format!("ring seal {rec} B records"), buf.len() / rec, s);
    }
}

fn hkdf_awslc(n: usize) {
    use aws_lc_rs::hkdf::{KeyType, Prk, HKDF_SHA512};
    struct L;
    impl KeyType for L {
        fn len(&self) -> usize {
            76
        }
    }
    let prk = Prk::new_less_safe(HKDF_SHA512, &[1u8; 32]);
    let t = Instant::now();
    let mut out = [0u8; 76];
    for i in 0..n {
        let s = (i as u64).to_be_bytes();
        prk.expand(&[b"info", &s], L).unwrap().fill(&mut out).unwrap();
    }
    report_ops("aws-lc-rs hkdf-sha512 expand 76B", n, t.elapsed().as_secs_f64());
}

fn hkdf_ring(n: usize) {
    use ring::hkdf::{KeyType, Prk, HKDF_SHA512};
    struct L;
    impl KeyType for L {
        fn len(&self) -> usize {
            76
        }
    }
    let prk = Prk::new_less_safe(HKDF_SHA512, &[1u8; 32]);
    let t = Instant::now();
    let mut out = [0u8; 76];
    for i in 0..n {
        let s = (i as u64).to_be_bytes();
        prk.expand(&[b"info", &s], L).unwrap().fill(&mut out).unwrap();
    }
    report_ops("ring hkdf-sha512 expand 76B", n, t.elapsed().as_secs_f64());
}

fn main() {
    if std::env::args().any(|a| a == "--records") {
        for _ in 0..2 {
            records_out_of_place();
        }
        return;
    }
    let mut buf = vec![1u8; TOTAL];
    for _ in 0..3 {
        bench_awslc(&mut buf, CHUNK);
        bench_ring(&mut buf, CHUNK);
    }
    let mut hot = vec![1u8; 1024 * 1024];
    for _ in 0..3 {
        let t = Instant::now();
        for _ in 0..256 {
            bench_awslc_quiet(&mut hot);
        }
        report("aws-lc-rs seal 16KiB, 1 MiB hot buffer", 256 * hot.len(), t.elapsed().as_secs_f64());
        let t = Instant::now();
        for _ in 0..256 {
            bench_ring_quiet(&mut hot);
        }
        report("ring seal 16KiB, 1 MiB hot buffer", 256 * hot.len(), t.elapsed().as_secs_f64());
    }
    let mut small = vec![1u8; 64 * 2_000_000];
    for _ in 0..2 {
        bench_awslc(&mut small, 64);
        bench_ring(&mut small, 64);
    }
    for _ in 0..2 {
        hkdf_awslc(1_000_000);
        hkdf_ring(1_000_000);
    }
}

fn bench_awslc_quiet(buf: &mut [u8]) {
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap());
    for (i, c) in buf.chunks_mut(CHUNK).enumerate() {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&(i as u64).to_be_bytes());
        let t = key.seal_in_place_separate_tag(Nonce::assume_unique_for_key(n), Aad::empty(), c).unwrap();
        let _ = std::hint::black_box(t);
    }
}

fn bench_ring_quiet(buf: &mut [u8]) {
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap());
    for (i, c) in buf.chunks_mut(CHUNK).enumerate() {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&(i as u64).to_be_bytes());
        let t = key.seal_in_place_separate_tag(Nonce::assume_unique_for_key(n), Aad::empty(), c).unwrap();
        let _ = std::hint::black_box(t);
    }
}

/// Batch-shaped: records sealed into and opened from separate buffers, one core.
/// `cargo run --release -- --records`
fn records_out_of_place() {
    records::<64>(2_000_000);
    records::<256>(1_000_000);
    records::<1024>(400_000);
}

fn records<const R: usize>(n: usize) {
    let input = vec![7u8; n * R];
    let mut sealed = vec![0u8; n * (R + 16)];
    let mut opened = vec![0u8; n * R];
    {
        use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap());
        let t = Instant::now();
        for (i, (src, dst)) in input.chunks(R).zip(sealed.chunks_mut(R + 16)).enumerate() {
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&(i as u64).to_be_bytes());
            let (body, tag) = dst.split_at_mut(R);
            key.seal_out_of_place_scatter(Nonce::assume_unique_for_key(nonce), Aad::empty(), src, body, &[], tag)
                .unwrap();
        }
        report_ops(&format!("aws-lc-rs seal {R} B out of place"), n, t.elapsed().as_secs_f64());
        let t = Instant::now();
        for (i, (src, dst)) in sealed.chunks(R + 16).zip(opened.chunks_mut(R)).enumerate() {
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&(i as u64).to_be_bytes());
            key.open_separate_gather(Nonce::assume_unique_for_key(nonce), Aad::empty(), &src[..R], &src[R..], dst)
                .unwrap();
        }
        report_ops(&format!("aws-lc-rs open {R} B out of place"), n, t.elapsed().as_secs_f64());
    }
    {
        use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_256_GCM};
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap());
        let t = Instant::now();
        for (i, (src, dst)) in input.chunks(R).zip(sealed.chunks_mut(R + 16)).enumerate() {
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&(i as u64).to_be_bytes());
            let (body, tag_out) = dst.split_at_mut(R);
            body.copy_from_slice(src);
            let tag = key
                .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), body)
                .unwrap();
            tag_out.copy_from_slice(tag.as_ref());
        }
        report_ops(&format!("ring seal {R} B (copy + in place)"), n, t.elapsed().as_secs_f64());
        let t = Instant::now();
        for (i, (src, dst)) in sealed.chunks(R + 16).zip(opened.chunks_mut(R)).enumerate() {
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&(i as u64).to_be_bytes());
            dst.copy_from_slice(&src[..R]);
            let tag: [u8; 16] = src[R..].try_into().unwrap();
            key.open_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), Tag::from(tag), dst, 0..)
                .unwrap();
        }
        report_ops(&format!("ring open {R} B (copy + in place)"), n, t.elapsed().as_secs_f64());
    }
}
