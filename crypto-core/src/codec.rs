//! Bounds-checked reading and writing of the binary wire and pickle formats.
//!
//! All integers are big-endian. Every read checks the remaining length first, so a decoder
//! built on [`Reader`] returns [`DecodeError::Truncated`] instead of panicking.

use crate::error::DecodeError;
use zeroize::Zeroizing;

/// A cursor over an input buffer that never reads past its end.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    input: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self { input }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.input.len()
    }

    pub(crate) fn bytes(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if self.input.len() < len {
            return Err(DecodeError::Truncated {
                needed: len,
                remaining: self.input.len(),
            });
        }
        let (head, tail) = self.input.split_at(len);
        self.input = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let bytes = self.bytes(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Reads a secret 32-byte value straight into a zeroizing box.
    pub(crate) fn secret32(&mut self) -> Result<Zeroizing<[u8; 32]>, DecodeError> {
        let bytes = self.bytes(32)?;
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::InvalidField),
        }
    }

    /// Reads a `u32` count and checks it against `max` before anything is allocated.
    pub(crate) fn count(&mut self, max: usize) -> Result<usize, DecodeError> {
        let len = usize::try_from(self.u32()?).map_err(|_| DecodeError::InvalidField)?;
        if len > max {
            return Err(DecodeError::LengthOutOfRange { len, max });
        }
        Ok(len)
    }

    /// Reads a `u32`-length-prefixed byte string of at most `max` bytes.
    pub(crate) fn var_bytes(&mut self, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.count(max)?;
        self.bytes(len)
    }

    /// Takes everything that is left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let rest = self.input;
        self.input = &[];
        rest
    }

    /// Fails unless the whole input was consumed.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.input.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.input.len()))
        }
    }
}

/// Appends encoded fields to a byte vector.
///
/// Pickles are written into a [`Zeroizing`] vector so secret fields do not linger.
pub(crate) trait Writer {
    fn put(&mut self, bytes: &[u8]);

    fn put_u8(&mut self, v: u8) {
        self.put(&[v]);
    }
    fn put_u32(&mut self, v: u32) {
        self.put(&v.to_be_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.put(&v.to_be_bytes());
    }
    fn put_bool(&mut self, v: bool) {
        self.put_u8(u8::from(v));
    }
    /// Writes a `u32` count; callers keep collections far below `u32::MAX` by their limits.
    fn put_count(&mut self, n: usize) {
        self.put_u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
    fn put_var_bytes(&mut self, bytes: &[u8]) {
        self.put_count(bytes.len());
        self.put(bytes);
    }
}

impl Writer for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Writer for Zeroizing<Vec<u8>> {
    fn put(&mut self, bytes: &[u8]) {
        // Reserve first so a reallocation never leaves an unzeroized copy behind.
        let needed = self.len().saturating_add(bytes.len());
        if needed > self.capacity() {
            let mut bigger = Zeroizing::new(Vec::with_capacity(needed.max(self.capacity() * 2)));
            bigger.extend_from_slice(self);
            core::mem::swap(self, &mut bigger);
        }
        self.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_refuses_short_input() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(
            r.u32(),
            Err(DecodeError::Truncated {
                needed: 4,
                remaining: 3
            })
        );
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u8(), Ok(2));
        assert_eq!(r.remaining(), 1);
        assert_eq!(
            Reader::new(&[0, 0, 0, 9]).count(8),
            Err(DecodeError::LengthOutOfRange { len: 9, max: 8 })
        );
        assert_eq!(Reader::new(&[2]).bool(), Err(DecodeError::InvalidField));
        assert_eq!(
            Reader::new(&[2]).finish(),
            Err(DecodeError::TrailingBytes(1))
        );
    }

    #[test]
    fn zeroizing_writer_grows() {
        let mut w = Zeroizing::new(Vec::with_capacity(1));
        for i in 0..100u32 {
            w.put_u32(i);
        }
        assert_eq!(w.len(), 400);
        let mut r = Reader::new(&w);
        for i in 0..100u32 {
            assert_eq!(r.u32(), Ok(i));
        }
        assert!(r.finish().is_ok());
    }
}
