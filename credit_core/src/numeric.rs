//! PostgreSQL's binary `numeric` format read straight into a `Decimal`, without going through
//! text: the pure part of the per-row decoder (aggregate transitions, the guard's precision check).
//!
//! Format (PostgreSQL's numeric.c): after the varlena header a 16-bit header word; the
//! "short" form (bit 0x8000) packs sign, display scale and weight into it; the "long" form has a
//! sign/dscale word and a separate int16 weight; 0xC000 marks NaN and ±Infinity. Digits are base
//! 10,000 int16s, the first one weighted 10000^weight.
use rust_decimal::Decimal;

#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Value(Decimal),
    NotFinite,
    /// Valid numeric, but beyond what a Decimal holds (28 digits).
    TooLarge,
}

/// Decodes the numeric payload (the bytes after the varlena header).
pub fn decode(payload: &[u8]) -> Decoded {
    if payload.len() < 2 {
        return Decoded::Value(Decimal::ZERO);
    }
    let word = u16::from_ne_bytes([payload[0], payload[1]]);
    let (negative, dscale, weight, digits) = if word & 0xC000 == 0xC000 {
        return Decoded::NotFinite;
    } else if word & 0x8000 != 0 {
        let negative = word & 0x2000 != 0;
        let dscale = ((word & 0x1F80) >> 7) as i32;
        let weight = if word & 0x0040 != 0 { (!0x3Fi32) | (word & 0x3F) as i32 } else { (word & 0x3F) as i32 };
        (negative, dscale, weight, &payload[2..])
    } else {
        if payload.len() < 4 {
            return Decoded::Value(Decimal::ZERO);
        }
        let negative = word & 0x4000 != 0;
        let dscale = (word & 0x3FFF) as i32;
        let weight = i16::from_ne_bytes([payload[2], payload[3]]) as i32;
        (negative, dscale, weight, &payload[4..])
    };
    let ndigits = (digits.len() / 2) as i32;
    if ndigits == 0 {
        return Decoded::Value(Decimal::ZERO);
    }
    // The digits as one integer N = value * 10^scale with scale = 4 * (ndigits - 1 - weight). The
    // display scale (dscale) only pads zeros, so the value is decoded from the digits alone.
    let mut n: i128 = 0;
    for i in 0..ndigits as usize {
        let d = i16::from_ne_bytes([digits[2 * i], digits[2 * i + 1]]) as i128;
        n = match n.checked_mul(10_000).and_then(|v| v.checked_add(d)) {
            Some(v) => v,
            None => return Decoded::TooLarge,
        };
    }
    let _ = dscale;
    let mut scale = 4 * (ndigits - 1 - weight);
    if scale < 0 {
        n = match 10i128.checked_pow((-scale) as u32).and_then(|p| n.checked_mul(p)) {
            Some(v) => v,
            None => return Decoded::TooLarge,
        };
        scale = 0;
    }
    // Trailing zeros of the last base-10000 digit may push the scale past what a Decimal holds.
    while scale > 0 && n % 10 == 0 && (scale > 28 || n.unsigned_abs() >= 1u128 << 96) {
        n /= 10;
        scale -= 1;
    }
    if scale > 28 {
        return Decoded::TooLarge;
    }
    match Decimal::try_from_i128_with_scale(if negative { -n } else { n }, scale as u32) {
        Ok(d) => Decoded::Value(d),
        Err(_) => Decoded::TooLarge,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short(negative: bool, dscale: u16, weight: i16, digits: &[i16]) -> Vec<u8> {
        let mut w: u16 = 0x8000 | (dscale << 7) & 0x1F80;
        if negative {
            w |= 0x2000;
        }
        w |= (weight as u16) & 0x3F;
        if weight < 0 {
            w |= 0x0040;
        }
        let mut v = w.to_ne_bytes().to_vec();
        for d in digits {
            v.extend_from_slice(&d.to_ne_bytes());
        }
        v
    }

    fn long(negative: bool, dscale: u16, weight: i16, digits: &[i16]) -> Vec<u8> {
        let w: u16 = if negative { 0x4000 } else { 0 } | dscale;
        let mut v = w.to_ne_bytes().to_vec();
        v.extend_from_slice(&weight.to_ne_bytes());
        for d in digits {
            v.extend_from_slice(&d.to_ne_bytes());
        }
        v
    }

    fn dec(s: &str) -> Decoded {
        Decoded::Value(s.parse().unwrap())
    }

    #[test]
    fn short_and_long_forms() {
        assert_eq!(decode(&short(false, 0, 0, &[])), dec("0"));
        assert_eq!(decode(&short(false, 2, 0, &[1234, 5600])), dec("1234.56"));
        assert_eq!(decode(&short(true, 1, 0, &[1, 5000])), dec("-1.5"));
        assert_eq!(decode(&short(false, 0, 1, &[12, 3456])), dec("123456"));
        assert_eq!(decode(&short(false, 0, 2, &[1])), dec("100000000"));
        assert_eq!(decode(&short(false, 5, -1, &[12])), dec("0.00120"));
        assert_eq!(decode(&long(false, 2, 0, &[7, 500])), dec("7.05"));
        assert_eq!(decode(&long(true, 0, 3, &[1])), dec("-1000000000000"));
        assert_eq!(decode(&[0x00, 0xC0]), Decoded::NotFinite); // NaN (native endian on x86)
    }

    #[test]
    fn too_large_is_reported() {
        assert_eq!(decode(&long(false, 0, 9, &[1])), Decoded::TooLarge); // 1e36
        assert_eq!(decode(&long(false, 32, -8, &[1])), Decoded::TooLarge); // 1e-32
                                                                           // a large display scale on a value that fits is not a problem
        assert_eq!(decode(&long(false, 30, -1, &[1])), dec("0.0001"));
    }
}
