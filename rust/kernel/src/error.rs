use std::fmt;

/// Every failure the kernel can report.
///
/// Authentication failures of any kind (bad commitment, bad tag, truncation,
/// trailing data, wrong key or context) are all [`Error::Decrypt`]: callers must
/// not be able to tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The input key is not 32 bytes long.
    InvalidKeySize,
    /// The salt is not 24 bytes long.
    InvalidSaltSize,
    /// The nonce is not 12 bytes long.
    InvalidNonceSize,
    /// The ciphertext did not authenticate (opaque on purpose).
    Decrypt,
    /// The message would exceed the 2^38 chunk limit of the scheme.
    MessageTooLong,
    /// A caller-provided output buffer has the wrong length.
    OutputLength {
        /// The length the output must have.
        expected: usize,
        /// The length it has.
        actual: usize,
    },
    /// Record offsets are negative, decreasing, or outside their buffer.
    InvalidOffsets,
    /// The per-record AAD has a different number of entries than the records.
    AadCount,
    /// A batch would hold more than 2^32 records.
    TooManyRecords,
    /// The stream was already finalized, or failed before.
    StreamClosed,
    /// A whole-chunk stream call while a partial chunk is buffered or the prefix is pending.
    StreamUnaligned,
    /// The underlying library refused an operation that cannot fail on valid input.
    Internal,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidKeySize => f.write_str("the input key must be 32 bytes"),
            Error::InvalidSaltSize => f.write_str("the salt must be 24 bytes"),
            Error::InvalidNonceSize => f.write_str("the nonce must be 12 bytes"),
            Error::Decrypt => f.write_str("decryption failed"),
            Error::MessageTooLong => f.write_str("message exceeds 2^38 chunks"),
            Error::OutputLength { expected, actual } => write!(
                f,
                "output buffer has {actual} bytes, this operation needs exactly {expected}"
            ),
            Error::InvalidOffsets => f.write_str(
                "record offsets must be non-negative, non-decreasing and within the data",
            ),
            Error::AadCount => f.write_str("aad must have exactly one entry per record"),
            Error::TooManyRecords => f.write_str("a batch holds at most 2^32 records"),
            Error::StreamClosed => f.write_str("the stream is finalized or has failed"),
            Error::StreamUnaligned => f.write_str(
                "whole-chunk stream calls need the prefix taken and no partial chunk buffered",
            ),
            Error::Internal => f.write_str("internal cryptographic error"),
        }
    }
}

impl std::error::Error for Error {}
