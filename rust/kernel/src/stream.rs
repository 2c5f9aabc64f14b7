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
    derive, derive_and_verify, open_chunk, seal_chunk, CHUNK_LEN, PREFIX_LEN, SEALED_CHUNK_LEN,
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
    fn sealer_refuses_use_after_finish() {
        let mut s = StreamSealer::new(&[0u8; 32], &[0u8; 24], b"").unwrap();
        let mut out = Vec::new();
        s.finish(&mut out).unwrap();
        assert_eq!(s.update(b"x", &mut out), Err(Error::StreamClosed));
        assert_eq!(s.finish(&mut out), Err(Error::StreamClosed));
    }
}
