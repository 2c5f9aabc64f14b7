//! Incremental Cobblestone-256 encryption and decryption for streams.
//!
//! Both sides hold at most one chunk of buffered input (plus what the caller
//! passes in one call). The opener releases plaintext only after the chunk it
//! came from authenticated, and it never treats a full-size chunk as final, so
//! a truncated stream always fails at [`StreamOpener::finish`]. Once it has
//! failed it keeps failing.

use zeroize::Zeroizing;

use crate::aead::TAG_LEN;
use crate::cobblestone::{
    self, derive, derive_and_verify, open_chunk, seal_chunk, CHUNK_LEN, PREFIX_LEN,
    SEALED_CHUNK_LEN,
};
use crate::kdf::{KeySchedule, SALT_LEN};
use crate::Error;

/// Encrypts a stream chunk by chunk.
pub struct StreamSealer {
    keys: KeySchedule,
    prefix: Option<[u8; PREFIX_LEN]>,
    buf: Zeroizing<Vec<u8>>,
    index: u64,
    closed: bool,
}

impl StreamSealer {
    /// Starts a message.
    ///
    /// # Errors
    /// [`Error::InvalidKeySize`] or [`Error::InvalidSaltSize`].
    pub fn new(input_key: &[u8], salt: &[u8], context: &[u8]) -> Result<Self, Error> {
        let (keys, commitment) = derive(input_key, salt, context)?;
        let mut prefix = [0u8; PREFIX_LEN];
        prefix[..SALT_LEN].copy_from_slice(salt);
        prefix[SALT_LEN..].copy_from_slice(&commitment);
        Ok(Self {
            keys,
            prefix: Some(prefix),
            buf: Zeroizing::new(Vec::with_capacity(SEALED_CHUNK_LEN)),
            index: 0,
            closed: false,
        })
    }

    fn emit_prefix(&mut self, out: &mut Vec<u8>) {
        if let Some(prefix) = self.prefix.take() {
            out.extend_from_slice(&prefix);
        }
    }

    /// Appends to `out` the prefix (first call only) and every chunk that `data` completes.
    ///
    /// # Errors
    /// [`Error::StreamClosed`] after [`StreamSealer::finish`]; [`Error::MessageTooLong`].
    pub fn update(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if self.closed {
            return Err(Error::StreamClosed);
        }
        self.emit_prefix(out);
        while !data.is_empty() {
            let take = (CHUNK_LEN - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == CHUNK_LEN {
                // A full chunk is never the final one, so it can go out at once.
                self.flush(out)?;
            }
        }
        Ok(())
    }

    fn flush(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        let start = out.len();
        out.extend_from_slice(&self.buf);
        out.resize(start + self.buf.len() + TAG_LEN, 0);
        let result = seal_chunk(&self.keys, self.index, &mut out[start..]);
        if result.is_err() {
            out.truncate(start);
            self.closed = true;
        }
        result?;
        self.index += 1;
        self.buf.clear();
        Ok(())
    }

    /// Seals whole chunks into a caller's buffer, on `threads` workers (0 = all cores):
    /// `plaintext` is a multiple of [`CHUNK_LEN`] and `out` exactly as many sealed chunks.
    ///
    /// For streams read in large aligned pieces: the prefix must already have been
    /// taken (an [`StreamSealer::update`] with no data) and no partial chunk buffered.
    /// A full chunk is never the final one, so [`StreamSealer::finish`] still ends the
    /// message.
    ///
    /// # Errors
    /// [`Error::StreamUnaligned`], [`Error::OutputLength`], [`Error::StreamClosed`],
    /// [`Error::MessageTooLong`] (the stream is closed after the last two).
    pub fn seal_chunks(
        &mut self,
        plaintext: &[u8],
        out: &mut [u8],
        threads: usize,
    ) -> Result<(), Error> {
        if self.closed {
            return Err(Error::StreamClosed);
        }
        if self.prefix.is_some() || !self.buf.is_empty() || plaintext.len() % CHUNK_LEN != 0 {
            return Err(Error::StreamUnaligned);
        }
        let chunks = plaintext.len() / CHUNK_LEN;
        let expected = chunks * SEALED_CHUNK_LEN;
        if out.len() != expected {
            return Err(Error::OutputLength {
                expected,
                actual: out.len(),
            });
        }
        let result = cobblestone::seal_chunks(&self.keys, self.index, plaintext, out, threads);
        if result.is_err() {
            self.closed = true;
        }
        result?;
        self.index += chunks as u64;
        Ok(())
    }

    /// Seals the final (short, possibly empty) chunk. The stream is closed afterwards.
    ///
    /// # Errors
    /// [`Error::StreamClosed`] if already finished.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.closed {
            return Err(Error::StreamClosed);
        }
        self.emit_prefix(out);
        let result = self.flush(out);
        self.closed = true;
        result
    }
}

enum OpenerState {
    /// Waiting for the 56-byte prefix.
    Prefix {
        input_key: Zeroizing<Vec<u8>>,
        context: Vec<u8>,
    },
    Chunks(KeySchedule),
    Failed,
    Done,
}

/// Decrypts a stream chunk by chunk.
pub struct StreamOpener {
    state: OpenerState,
    buf: Vec<u8>,
    index: u64,
}

impl StreamOpener {
    /// Starts decrypting a message. The key is checked (via the commitment) once
    /// the first 56 bytes have arrived.
    pub fn new(input_key: &[u8], context: &[u8]) -> Self {
        Self {
            state: OpenerState::Prefix {
                input_key: Zeroizing::new(input_key.to_vec()),
                context: context.to_vec(),
            },
            buf: Vec::with_capacity(2 * SEALED_CHUNK_LEN),
            index: 0,
        }
    }

    /// Feeds ciphertext; appends to `out` the plaintext of every chunk that is
    /// now known not to be the final one and that authenticated.
    ///
    /// # Errors
    /// [`Error::Decrypt`] on the first authentication failure and on every call after it;
    /// [`Error::StreamClosed`] after a successful [`StreamOpener::finish`].
    pub fn update(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        match self.state {
            OpenerState::Failed => return Err(Error::Decrypt),
            OpenerState::Done => return Err(Error::StreamClosed),
            _ => {}
        }
        self.buf.extend_from_slice(data);
        let result = self.drain(out);
        if result.is_err() {
            self.fail();
        }
        result
    }

    fn drain(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        let mut pos = 0;
        if let OpenerState::Prefix { input_key, context } = &self.state {
            if self.buf.len() < PREFIX_LEN {
                return Ok(());
            }
            let keys = derive_and_verify(input_key, &self.buf[..PREFIX_LEN], context)?;
            self.state = OpenerState::Chunks(keys);
            pos = PREFIX_LEN;
        }
        let OpenerState::Chunks(keys) = &self.state else {
            return Err(Error::Decrypt);
        };
        // Strictly more than one sealed chunk buffered: the first one cannot be final.
        while self.buf.len() - pos > SEALED_CHUNK_LEN {
            let start = out.len();
            out.resize(start + CHUNK_LEN, 0);
            let sealed = &self.buf[pos..pos + SEALED_CHUNK_LEN];
            if let Err(e) = open_chunk(keys, self.index, sealed, &mut out[start..]) {
                out.truncate(start);
                return Err(e);
            }
            self.index += 1;
            pos += SEALED_CHUNK_LEN;
        }
        self.buf.drain(..pos);
        Ok(())
    }

    /// Opens whole chunks into a caller's buffer, on `threads` workers (0 = all cores):
    /// `ciphertext` is a multiple of [`SEALED_CHUNK_LEN`] and `out` exactly as many
    /// plaintext chunks.
    ///
    /// The prefix must have been fed (and verified) already and no partial chunk be
    /// buffered. Every chunk here has full size and so is never the final chunk: what
    /// this writes is authenticated, and a stream that stops after it still fails at
    /// [`StreamOpener::finish`]. On failure `out` is zeroed and the opener fails for good.
    ///
    /// # Errors
    /// [`Error::Decrypt`] (now or after an earlier failure), [`Error::StreamUnaligned`],
    /// [`Error::OutputLength`], [`Error::StreamClosed`].
    pub fn open_chunks(
        &mut self,
        ciphertext: &[u8],
        out: &mut [u8],
        threads: usize,
    ) -> Result<(), Error> {
        let keys = match &self.state {
            OpenerState::Chunks(keys) => keys,
            OpenerState::Failed => return Err(Error::Decrypt),
            OpenerState::Done => return Err(Error::StreamClosed),
            OpenerState::Prefix { .. } => return Err(Error::StreamUnaligned),
        };
        if !self.buf.is_empty() || ciphertext.len() % SEALED_CHUNK_LEN != 0 {
            return Err(Error::StreamUnaligned);
        }
        let chunks = ciphertext.len() / SEALED_CHUNK_LEN;
        let expected = chunks * CHUNK_LEN;
        if out.len() != expected {
            return Err(Error::OutputLength {
                expected,
                actual: out.len(),
            });
        }
        if let Err(e) = cobblestone::open_chunks(keys, self.index, ciphertext, out, threads) {
            out.fill(0);
            self.fail();
            return Err(e);
        }
        self.index += chunks as u64;
        Ok(())
    }

    fn fail(&mut self) {
        self.state = OpenerState::Failed;
        self.buf = Vec::new();
    }

    /// Ends the stream: what is buffered must be exactly one short final chunk.
    ///
    /// # Errors
    /// [`Error::Decrypt`] if the stream is truncated, extended, or does not authenticate
    /// (and on every call after a failure).
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        let result = self.finish_inner(out);
        match result {
            Ok(()) => {
                self.state = OpenerState::Done;
                self.buf = Vec::new();
            }
            Err(Error::StreamClosed) => {}
            Err(_) => self.fail(),
        }
        result
    }

    fn finish_inner(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        let keys = match &self.state {
            OpenerState::Chunks(keys) => keys,
            OpenerState::Done => return Err(Error::StreamClosed),
            OpenerState::Prefix { .. } | OpenerState::Failed => return Err(Error::Decrypt),
        };
        let rest = self.buf.len();
        if !(TAG_LEN..SEALED_CHUNK_LEN).contains(&rest) {
            return Err(Error::Decrypt);
        }
        let start = out.len();
        out.resize(start + rest - TAG_LEN, 0);
        if let Err(e) = open_chunk(keys, self.index, &self.buf, &mut out[start..]) {
            out.truncate(start);
            return Err(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cobblestone;

    fn stream_seal(key: &[u8], salt: &[u8], ctx: &[u8], msg: &[u8], step: usize) -> Vec<u8> {
        let mut s = StreamSealer::new(key, salt, ctx).unwrap();
        let mut out = Vec::new();
        for piece in msg.chunks(step.max(1)) {
            s.update(piece, &mut out).unwrap();
        }
        s.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn stream_matches_one_shot_for_every_feed_size() {
        let key = [5u8; 32];
        let salt = [6u8; 24];
        for len in [0, 1, CHUNK_LEN - 1, CHUNK_LEN, CHUNK_LEN + 1, 3 * CHUNK_LEN] {
            let msg: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let expected = cobblestone::seal(&key, &salt, b"c", &msg, 1).unwrap();
            for step in [1, 7, 4096, CHUNK_LEN, CHUNK_LEN + 3, 1 << 20] {
                if len > 20_000 && step == 1 {
                    continue;
                }
                assert_eq!(stream_seal(&key, &salt, b"c", &msg, step), expected);
                let mut o = StreamOpener::new(&key, b"c");
                let mut pt = Vec::new();
                for piece in expected.chunks(step) {
                    o.update(piece, &mut pt).unwrap();
                }
                o.finish(&mut pt).unwrap();
                assert_eq!(pt, msg);
            }
        }
    }

    #[test]
    fn truncation_at_a_chunk_boundary_fails_and_stays_failed() {
        let key = [5u8; 32];
        let msg = vec![1u8; 2 * CHUNK_LEN + 10];
        let ct = cobblestone::seal(&key, &[0u8; 24], b"", &msg, 1).unwrap();
        let cut = &ct[..PREFIX_LEN + 2 * SEALED_CHUNK_LEN];
        let mut o = StreamOpener::new(&key, b"");
        let mut pt = Vec::new();
        o.update(cut, &mut pt).unwrap();
        assert_eq!(pt.len(), CHUNK_LEN); // only the chunk known not to be final
        assert_eq!(o.finish(&mut pt), Err(Error::Decrypt));
        assert_eq!(o.finish(&mut pt), Err(Error::Decrypt));
        assert_eq!(o.update(b"more", &mut pt), Err(Error::Decrypt));
        assert_eq!(pt.len(), CHUNK_LEN);
    }

    #[test]
    fn whole_chunk_calls_match_the_one_shot_message() {
        let key = [5u8; 32];
        let salt = [6u8; 24];
        let msg: Vec<u8> = (0..(40 * CHUNK_LEN + 99)).map(|i| (i * 7) as u8).collect();
        let expected = cobblestone::seal(&key, &salt, b"c", &msg, 1).unwrap();
        let mut s = StreamSealer::new(&key, &salt, b"c").unwrap();
        let mut ct = Vec::new();
        let mut chunk = vec![0u8; 20 * SEALED_CHUNK_LEN];
        assert_eq!(
            s.seal_chunks(&msg[..20 * CHUNK_LEN], &mut chunk, 0),
            Err(Error::StreamUnaligned)
        ); // prefix not taken yet
        s.update(b"", &mut ct).unwrap();
        for piece in msg[..40 * CHUNK_LEN].chunks(20 * CHUNK_LEN) {
            s.seal_chunks(piece, &mut chunk, 0).unwrap();
            ct.extend_from_slice(&chunk);
        }
        s.update(&msg[40 * CHUNK_LEN..], &mut ct).unwrap();
        s.finish(&mut ct).unwrap();
        assert_eq!(ct, expected);

        let mut o = StreamOpener::new(&key, b"c");
        let mut pt = Vec::new();
        o.update(&ct[..PREFIX_LEN], &mut pt).unwrap();
        let mut out = vec![0u8; 40 * CHUNK_LEN];
        o.open_chunks(
            &ct[PREFIX_LEN..PREFIX_LEN + 40 * SEALED_CHUNK_LEN],
            &mut out,
            0,
        )
        .unwrap();
        o.update(&ct[PREFIX_LEN + 40 * SEALED_CHUNK_LEN..], &mut pt)
            .unwrap();
        o.finish(&mut pt).unwrap();
        out.extend_from_slice(&pt);
        assert_eq!(out, msg);
    }

    #[test]
    fn whole_chunk_open_failure_zeroes_and_sticks() {
        let key = [5u8; 32];
        let msg = vec![3u8; 20 * CHUNK_LEN + 1];
        let mut ct = cobblestone::seal(&key, &[0u8; 24], b"", &msg, 1).unwrap();
        ct[PREFIX_LEN + 17 * SEALED_CHUNK_LEN] ^= 1;
        let mut o = StreamOpener::new(&key, b"");
        o.update(&ct[..PREFIX_LEN], &mut Vec::new()).unwrap();
        let mut out = vec![0u8; 20 * CHUNK_LEN];
        let body = &ct[PREFIX_LEN..PREFIX_LEN + 20 * SEALED_CHUNK_LEN];
        assert_eq!(o.open_chunks(body, &mut out, 0), Err(Error::Decrypt));
        assert!(out.iter().all(|&b| b == 0));
        assert_eq!(o.open_chunks(body, &mut out, 0), Err(Error::Decrypt));
        assert_eq!(o.finish(&mut Vec::new()), Err(Error::Decrypt));
    }

    #[test]
    fn sealer_refuses_use_after_finish() {
        let mut s = StreamSealer::new(&[0u8; 32], &[0u8; 24], b"").unwrap();
        let mut out = Vec::new();
        s.finish(&mut out).unwrap();
        assert_eq!(s.update(b"x", &mut out), Err(Error::StreamClosed));
        assert_eq!(s.finish(&mut out), Err(Error::StreamClosed));
    }
}
