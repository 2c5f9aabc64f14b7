//! Wycheproof and NIST CAVP vectors against the kernel: AES-256-GCM with 96-bit
//! nonces, and all Cobblestone-256 (c2sp.org/chunked-encryption) vectors,
//! one-shot, streaming at several feed sizes, and re-encrypted with their salt.

use std::io::Read;
use std::path::PathBuf;

use envelope_kernel::{aead, cobblestone, gcm, stream};

type Seal = fn(&[u8], &[u8], &[u8], &[u8]) -> Result<Vec<u8>, envelope_kernel::Error>;

/// Both AES-256-GCM paths: aws-lc-rs's AEAD (messages, streams) and the record batches'
/// reused `EVP_CIPHER` context.
const IMPLEMENTATIONS: [(&str, Seal, Seal); 2] = [
    ("aead", aead::seal, aead::open),
    ("batch gcm", gcm::seal_one, gcm::open_one),
];
use serde_json::Value;
use sha2::{Digest, Sha512};

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors")
}

fn load_json(rel: &str) -> Value {
    let text = std::fs::read_to_string(vectors_dir().join(rel)).expect("vector file");
    serde_json::from_str(&text).expect("valid JSON")
}

fn hex_field(t: &Value, k: &str) -> Vec<u8> {
    hex::decode(t[k].as_str().unwrap_or_else(|| panic!("field {k}"))).unwrap()
}

#[test]
fn wycheproof_aes_256_gcm_96_bit_iv() {
    let doc = load_json("wycheproof/aes_gcm_test.json");
    let mut checked = 0;
    for group in doc["testGroups"].as_array().unwrap() {
        if group["keySize"] != 256 || group["ivSize"] != 96 || group["tagSize"] != 128 {
            continue;
        }
        for t in group["tests"].as_array().unwrap() {
            let (key, iv, aad) = (hex_field(t, "key"), hex_field(t, "iv"), hex_field(t, "aad"));
            let (msg, ct, tag) = (hex_field(t, "msg"), hex_field(t, "ct"), hex_field(t, "tag"));
            let sealed = [ct.as_slice(), tag.as_slice()].concat();
            let id = &t["tcId"];
            for (name, seal, open) in IMPLEMENTATIONS {
                let opened = open(&key, &iv, &aad, &sealed);
                match t["result"].as_str().unwrap() {
                    "valid" => {
                        assert_eq!(opened.as_deref(), Ok(msg.as_slice()), "{name} tcId {id}");
                        assert_eq!(
                            seal(&key, &iv, &aad, &msg).unwrap(),
                            sealed,
                            "{name} tcId {id}"
                        );
                        // One flipped bit anywhere (ciphertext or tag) must be refused.
                        for at in [0, sealed.len() / 2, sealed.len() - 1] {
                            let mut bad = sealed.clone();
                            bad[at] ^= 0x01;
                            assert!(
                                open(&key, &iv, &aad, &bad).is_err(),
                                "{name} tcId {id}: byte {at} flipped"
                            );
                        }
                    }
                    _ => assert!(opened.is_err(), "{name} tcId {id} must be rejected"),
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 66, "Wycheproof has 66 AES-256 / 96-bit IV tests");
}

/// Parses a NIST CAVP .rsp file into (section headers, record fields) pairs.
type Fields = Vec<(String, String)>;

fn parse_rsp(rel: &str) -> Vec<(Fields, Fields)> {
    let text = std::fs::read_to_string(vectors_dir().join(rel)).unwrap();
    let mut out = Vec::new();
    let mut section: Fields = Vec::new();
    let mut record: Fields = Vec::new();
    let mut in_section_header = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            if !in_section_header {
                if !record.is_empty() {
                    out.push((section.clone(), std::mem::take(&mut record)));
                }
                section.clear();
            }
            in_section_header = true;
            let inner = line.trim_matches(|c| c == '[' || c == ']');
            let (k, v) = inner.split_once('=').unwrap();
            section.push((k.trim().into(), v.trim().into()));
            continue;
        }
        in_section_header = false;
        if line.starts_with("Count") && !record.is_empty() {
            out.push((section.clone(), std::mem::take(&mut record)));
        }
        if line == "FAIL" {
            record.push(("FAIL".into(), String::new()));
        } else if let Some((k, v)) = line.split_once('=') {
            record.push((k.trim().into(), v.trim().into()));
        }
    }
    if !record.is_empty() {
        out.push((section, record));
    }
    out
}

fn field<'a>(fields: &'a [(String, String)], k: &str) -> Option<&'a str> {
    fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

fn nist_records(rel: &str) -> Vec<Fields> {
    parse_rsp(rel)
        .into_iter()
        .filter(|(sec, _)| field(sec, "IVlen") == Some("96") && field(sec, "Taglen") == Some("128"))
        .map(|(_, rec)| rec)
        .collect()
}

#[test]
fn nist_gcm_encrypt_256_96_bit_iv() {
    let records = nist_records("nist-gcm/gcmEncryptExtIV256.rsp");
    assert_eq!(records.len(), 375);
    for r in records {
        let h = |k| hex::decode(field(&r, k).unwrap()).unwrap();
        for (name, seal, _) in IMPLEMENTATIONS {
            let sealed = seal(&h("Key"), &h("IV"), &h("AAD"), &h("PT")).unwrap();
            assert_eq!(
                sealed,
                [h("CT"), h("Tag")].concat(),
                "{name} Count {:?}",
                field(&r, "Count")
            );
        }
    }
}

#[test]
fn nist_gcm_decrypt_256_96_bit_iv() {
    let records = nist_records("nist-gcm/gcmDecrypt256.rsp");
    assert_eq!(records.len(), 375);
    let mut failures = 0;
    for r in records {
        let h = |k| hex::decode(field(&r, k).unwrap()).unwrap();
        for (name, _, open) in IMPLEMENTATIONS {
            let opened = open(
                &h("Key"),
                &h("IV"),
                &h("AAD"),
                &[h("CT"), h("Tag")].concat(),
            );
            if field(&r, "FAIL").is_some() {
                assert!(opened.is_err(), "{name} Count {:?}", field(&r, "Count"));
                failures += 1;
            } else {
                assert_eq!(
                    opened.unwrap(),
                    h("PT"),
                    "{name} Count {:?}",
                    field(&r, "Count")
                );
            }
        }
    }
    assert_eq!(failures, 2 * 191);
}

struct ChunkedVector {
    id: u64,
    key: Vec<u8>,
    ctx: Vec<u8>,
    ct: Vec<u8>,
    valid: bool,
    msg_len: Option<usize>,
    msg_sha512: Option<Vec<u8>>,
    flags: Vec<String>,
}

fn chunked_vectors() -> Vec<ChunkedVector> {
    let doc = load_json("wycheproof/c2sp_chunked_encryption_aes_256_gcm_test.json");
    assert_eq!(doc["algorithm"], "Cobblestone-256");
    let mut out = Vec::new();
    for group in doc["testGroups"].as_array().unwrap() {
        for t in group["tests"].as_array().unwrap() {
            let mut ct = Vec::new();
            flate2::read::ZlibDecoder::new(hex_field(t, "ct").as_slice())
                .read_to_end(&mut ct)
                .unwrap();
            out.push(ChunkedVector {
                id: t["tcId"].as_u64().unwrap(),
                key: hex_field(t, "key"),
                ctx: hex_field(t, "ctx"),
                ct,
                valid: t["result"] == "valid",
                msg_len: t["msgLength"].as_u64().map(|n| n as usize),
                msg_sha512: t["msgSha512"].as_str().map(|s| hex::decode(s).unwrap()),
                flags: t["flags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f.as_str().unwrap().to_string())
                    .collect(),
            });
        }
    }
    assert_eq!(out.len(), 35);
    out
}

#[test]
fn cobblestone_256_one_shot_and_reencryption() {
    for v in chunked_vectors() {
        for threads in [1, 0] {
            let opened = cobblestone::open(&v.key, &v.ct, &v.ctx, threads);
            if v.valid {
                let msg = opened.unwrap_or_else(|e| panic!("tcId {} must open: {e}", v.id));
                assert_eq!(Some(msg.len()), v.msg_len, "tcId {}", v.id);
                assert_eq!(Sha512::digest(&msg).to_vec(), v.msg_sha512.clone().unwrap());
                let again = cobblestone::seal(&v.key, &v.ct[..24], &v.ctx, &msg, threads).unwrap();
                assert_eq!(again, v.ct, "tcId {} re-encryption", v.id);
            } else {
                assert!(opened.is_err(), "tcId {} must be rejected", v.id);
            }
        }
    }
}

#[test]
fn cobblestone_256_streaming() {
    for v in chunked_vectors() {
        for step in [1usize, 13, 16400, 16401, 65536, usize::MAX] {
            if step == 1 && v.ct.len() > 40_000 {
                continue;
            }
            let mut opener = stream::StreamOpener::new(&v.key, &v.ctx);
            let mut released = Vec::new();
            let mut failed = false;
            for piece in v.ct.chunks(step.min(v.ct.len().max(1))) {
                if opener.update(piece, &mut released).is_err() {
                    failed = true;
                    break;
                }
            }
            let finished = !failed && opener.finish(&mut released).is_ok();
            if v.valid {
                assert!(finished, "tcId {} step {step}", v.id);
                assert_eq!(
                    Sha512::digest(&released).to_vec(),
                    v.msg_sha512.clone().unwrap()
                );
            } else {
                assert!(!finished, "tcId {} step {step} must fail", v.id);
                // Never past the valid prefix; and what was released is that prefix.
                let limit = if v.flags.iter().any(|f| f == "PartialPlaintext") {
                    v.msg_len.unwrap()
                } else {
                    0
                };
                assert!(
                    released.len() <= limit,
                    "tcId {} released {}",
                    v.id,
                    released.len()
                );
                if released.len() == limit && limit > 0 {
                    assert_eq!(
                        Sha512::digest(&released).to_vec(),
                        v.msg_sha512.clone().unwrap()
                    );
                }
                // It keeps failing.
                let before = released.len();
                assert!(opener.update(&[0u8; 17], &mut released).is_err());
                assert!(opener.finish(&mut released).is_err());
                assert_eq!(released.len(), before);
            }
        }
    }
}

#[test]
fn cobblestone_256_stream_sealer_reproduces_valid_vectors() {
    for v in chunked_vectors().into_iter().filter(|v| v.valid) {
        let msg = cobblestone::open(&v.key, &v.ct, &v.ctx, 1).unwrap();
        for step in [7usize, 16384, 100_000] {
            let mut s = stream::StreamSealer::new(&v.key, &v.ct[..24], &v.ctx).unwrap();
            let mut out = Vec::new();
            for piece in msg.chunks(step) {
                s.update(piece, &mut out).unwrap();
            }
            s.finish(&mut out).unwrap();
            assert_eq!(out, v.ct, "tcId {} step {step}", v.id);
        }
    }
}
