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
    let mut text = Vec::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(DIGITS_LOWER[usize::from(byte >> 4)]);
        text.push(DIGITS_LOWER[usize::from(byte & 0x0f)]);
    }
    String::from_utf8(text).expect("hex digits are ASCII")
}

/// Encodes a 32-byte value (a hash or a public key) as 64 lowercase hex digits.
pub fn to_hex32(bytes: &[u8; 32]) -> String {
    to_hex(bytes)
}

/// Marks a byte that is not a hex digit in `NIBBLES`.
const NOT_HEX: u8 = 0xff;

/// The value of every byte as a hex digit, or `NOT_HEX` (a table: verify decodes every signed
/// message and signature, and a lookup beats three range tests per digit).
const NIBBLES: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut digit = 0;
    while digit < 10 {
        table[b'0' as usize + digit] = digit as u8;
        digit += 1;
    }
    let mut letter = 0;
    while letter < 6 {
        table[b'a' as usize + letter] = 10 + letter as u8;
        table[b'A' as usize + letter] = 10 + letter as u8;
        letter += 1;
    }
    table
};

/// Decodes pairs of hex digits into `out` (exactly half as long); false at the first non-digit.
fn decode_into(digits: &[u8], out: &mut [u8]) -> bool {
    debug_assert_eq!(digits.len(), out.len() * 2);
    let mut seen = 0u8;
    for (pair, byte) in digits.chunks_exact(2).zip(out.iter_mut()) {
        let (high, low) = (NIBBLES[usize::from(pair[0])], NIBBLES[usize::from(pair[1])]);
        // Branch-free accumulation: any NOT_HEX sets the high bit of `seen`.
        seen |= high | low;
        *byte = (high << 4) | (low & 0x0f);
    }
    seen & 0xf0 == 0
}

/// Decodes hex (either case) into bytes.
pub fn from_hex(text: &str) -> Result<Vec<u8>, HexError> {
    // Fast path over bytes (verify decodes every signed message); any refusal is re-derived
    // by the character walk below, which names the offending character and its position.
    let digits = text.as_bytes();
    if digits.len() % 2 == 0 {
        let mut bytes = vec![0u8; digits.len() / 2];
        if decode_into(digits, &mut bytes) {
            return Ok(bytes);
        }
    }
    from_hex_slow(text)
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
    let mut bytes = [0u8; 32];
    if text.len() == 64 && decode_into(text.as_bytes(), &mut bytes) {
        return Ok(bytes);
    }
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
    fn table_agrees_with_the_character_walk_on_every_ascii_pair() {
        for high in 0u8..128 {
            for low in 0u8..128 {
                let text = String::from_utf8(vec![high, low, b'0', b'f']).unwrap();
                assert_eq!(from_hex(&text), from_hex_slow(&text), "{text:?}");
            }
        }
        // from_hex32 takes the table path at 64 digits and the walk otherwise.
        let good = "0123456789abcdefABCDEF".repeat(3)[..64].to_string();
        assert_eq!(
            from_hex32(&good).unwrap().to_vec(),
            from_hex(&good).unwrap()
        );
        let bad = format!("{}g", &good[..63]);
        assert_eq!(
            from_hex32(&bad),
            Err(HexError::InvalidDigit {
                found: 'g',
                position: 63
            })
        );
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
