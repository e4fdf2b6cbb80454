//! Lowercase hex for hashes and keys in audit files and messages.
//!
//! sha2 0.11 digests no longer implement `LowerHex`, and one tiny strict codec is easier to audit
//! than a dependency: decoding accepts upper- and lowercase digits, nothing else (no `0x`, no
//! whitespace), so one value has few spellings and a typo is an error, not a silent truncation.

use thiserror::Error;

/// Why a hex string was refused. Positions are 0-based character offsets into the input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HexError {
    #[error("hex string has an odd number of digits ({len_chars}); every byte needs two digits")]
    OddLength { len_chars: usize },
    #[error("invalid hex digit {found:?} at position {position}; expected 0-9 or a-f")]
    InvalidDigit { found: char, position: usize },
    #[error("hex string encodes {len_bytes} bytes; expected exactly {expected_bytes}")]
    WrongLength {
        len_bytes: usize,
        expected_bytes: usize,
    },
}

const DIGITS_LOWER: &[u8; 16] = b"0123456789abcdef";

/// Encodes bytes as lowercase hex, two digits a byte.
pub fn to_hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS_LOWER[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS_LOWER[usize::from(byte & 0x0f)]));
    }
    text
}

/// Encodes a 32-byte value (a hash or a public key) as 64 lowercase hex digits.
pub fn to_hex32(bytes: &[u8; 32]) -> String {
    to_hex(bytes)
}

/// Decodes hex (either case) into bytes.
pub fn from_hex(text: &str) -> Result<Vec<u8>, HexError> {
    // Fast path over bytes (verify decodes every signed message); any refusal is re-derived
    // by the character walk below, which names the offending character and its position.
    let digits = text.as_bytes();
    if digits.len() % 2 == 0 {
        let mut bytes = Vec::with_capacity(digits.len() / 2);
        for pair in digits.chunks_exact(2) {
            match (nibble(pair[0]), nibble(pair[1])) {
                (Some(high), Some(low)) => bytes.push((high << 4) | low),
                _ => return from_hex_slow(text),
            }
        }
        return Ok(bytes);
    }
    from_hex_slow(text)
}

fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

fn from_hex_slow(text: &str) -> Result<Vec<u8>, HexError> {
    let len_chars = text.chars().count();
    if len_chars % 2 != 0 {
        return Err(HexError::OddLength { len_chars });
    }
    let mut bytes = Vec::with_capacity(len_chars / 2);
    let mut chars = text.chars().enumerate();
    while let (Some((high_position, high)), Some((low_position, low))) =
        (chars.next(), chars.next())
    {
        let high_value = digit_value(high, high_position)?;
        let low_value = digit_value(low, low_position)?;
        bytes.push((high_value << 4) | low_value);
    }
    Ok(bytes)
}

/// Decodes exactly 64 hex digits into 32 bytes.
pub fn from_hex32(text: &str) -> Result<[u8; 32], HexError> {
    let bytes = from_hex(text)?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| HexError::WrongLength {
        len_bytes: bytes.len(),
        expected_bytes: 32,
    })
}

fn digit_value(found: char, position: usize) -> Result<u8, HexError> {
    match found {
        '0'..='9' => Ok(found as u8 - b'0'),
        'a'..='f' => Ok(found as u8 - b'a' + 10),
        'A'..='F' => Ok(found as u8 - b'A' + 10),
        _ => Err(HexError::InvalidDigit { found, position }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_byte_value() {
        let bytes: Vec<u8> = (0..=255).collect();
        let text = to_hex(&bytes);
        assert_eq!(text.len(), 512);
        assert!(text.starts_with("000102"));
        assert!(text.ends_with("fdfeff"));
        assert_eq!(from_hex(&text).unwrap(), bytes);
        assert_eq!(from_hex(&text.to_uppercase()).unwrap(), bytes);
    }

    #[test]
    fn empty_is_empty() {
        assert_eq!(to_hex(&[]), "");
        assert_eq!(from_hex("").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn refuses_bad_input_with_position() {
        assert_eq!(from_hex("abc"), Err(HexError::OddLength { len_chars: 3 }));
        assert_eq!(
            from_hex("0g"),
            Err(HexError::InvalidDigit {
                found: 'g',
                position: 1
            })
        );
        assert!(from_hex("0x00").is_err());
        assert!(from_hex(" 00 ").is_err());
        // A multi-byte character must not be split or panic.
        assert!(from_hex("é0").is_err());
        assert!(from_hex("éé").is_err());
    }

    #[test]
    fn hex32_requires_exactly_32_bytes() {
        let value = [0xabu8; 32];
        assert_eq!(from_hex32(&to_hex32(&value)).unwrap(), value);
        assert_eq!(
            from_hex32("00"),
            Err(HexError::WrongLength {
                len_bytes: 1,
                expected_bytes: 32
            })
        );
    }
}
