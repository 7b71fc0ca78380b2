//! Kubernetes resource quantities (`resource.Quantity`), parsed exactly: no floating point.
//!
//! A quantity is held as a signed integer number of nano-units (`i128`), which covers every
//! value Kubernetes can represent after its own rounding (values are rounded up, away from zero,
//! to 1n, and capped at 2^63-1 units). The format (decimal SI, binary SI, decimal exponent) is
//! remembered from the input so the canonical form keeps it, as Kubernetes does.
use std::cmp::Ordering;
use std::fmt;

/// How a quantity is written: the format of its suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// `n`, `u`, `m`, ``, `k`, `M`, `G`, `T`, `P`, `E`.
    #[default]
    DecimalSI,
    /// `Ki`, `Mi`, `Gi`, `Ti`, `Pi`, `Ei`.
    BinarySI,
    /// `1e3`, `1E-3`.
    DecimalExponent,
}

const NANO: i128 = 1_000_000_000;
/// The largest magnitude in nano-units: (2^63 - 1) units, Kubernetes' cap.
const MAX_NANO: i128 = (i64::MAX as i128) * NANO;

/// A resource quantity ("500m", "1Gi", "2").
#[derive(Debug, Clone, Copy, Default)]
pub struct Quantity {
    nano: i128,
    format: Format,
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nano == other.nano
    }
}
impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nano.cmp(&other.nano)
    }
}

impl std::hash::Hash for Quantity {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.nano.hash(state);
    }
}

impl std::str::FromStr for Quantity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Quantity::parse(s)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

/// The error text Kubernetes gives for a malformed quantity.
pub const QUANTITY_FORMAT_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

impl Quantity {
    /// Zero (decimal SI).
    pub fn zero() -> Self {
        Quantity::default()
    }

    /// `v` whole units in the given format.
    pub fn from_value(v: i64, format: Format) -> Self {
        Quantity {
            nano: i128::from(v) * NANO,
            format,
        }
    }

    /// `v` thousandths of a unit (decimal SI), as Kubernetes' NewMilliQuantity.
    pub fn from_milli(v: i64) -> Self {
        Quantity {
            nano: i128::from(v) * 1_000_000,
            format: Format::DecimalSI,
        }
    }

    /// The format the quantity is written in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The exact value in nano-units.
    pub fn nano_value(&self) -> i128 {
        self.nano
    }

    pub fn is_zero(&self) -> bool {
        self.nano == 0
    }

    /// Sign: -1, 0 or 1.
    pub fn sign(&self) -> i32 {
        self.nano.signum() as i32
    }

    /// Parse a quantity as Kubernetes' `resource.ParseQuantity` does.
    pub fn parse(s: &str) -> Result<Quantity, String> {
        let err = || QUANTITY_FORMAT_ERROR.to_string();
        if s.is_empty() {
            return Err("quantities must not be empty".to_string());
        }
        let b = s.as_bytes();
        let mut pos = 0;
        let mut negative = false;
        match b[0] {
            b'-' => {
                negative = true;
                pos += 1;
            }
            b'+' => pos += 1,
            _ => {}
        }
        let int_start = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        let int_digits = &s[int_start..pos];
        let mut frac_digits = "";
        if pos < b.len() && b[pos] == b'.' {
            pos += 1;
            let fs = pos;
            while pos < b.len() && b[pos].is_ascii_digit() {
                pos += 1;
            }
            frac_digits = &s[fs..pos];
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(err());
        }
        let suffix = &s[pos..];
        // The suffix: letters from "eEinumkKMGTP", then an optional sign and digits.
        let sb = suffix.as_bytes();
        let mut i = 0;
        while i < sb.len() && b"eEinumkKMGTP".contains(&sb[i]) {
            i += 1;
        }
        if i < sb.len() && (sb[i] == b'-' || sb[i] == b'+') {
            i += 1;
        }
        while i < sb.len() && sb[i].is_ascii_digit() {
            i += 1;
        }
        if i != sb.len() {
            return Err(err());
        }
        let (exp10, exp2, format) = match suffix {
            "n" => (-9, 0, Format::DecimalSI),
            "u" => (-6, 0, Format::DecimalSI),
            "m" => (-3, 0, Format::DecimalSI),
            "" => (0, 0, Format::DecimalSI),
            "k" => (3, 0, Format::DecimalSI),
            "M" => (6, 0, Format::DecimalSI),
            "G" => (9, 0, Format::DecimalSI),
            "T" => (12, 0, Format::DecimalSI),
            "P" => (15, 0, Format::DecimalSI),
            "E" => (18, 0, Format::DecimalSI),
            "Ki" => (0, 10, Format::BinarySI),
            "Mi" => (0, 20, Format::BinarySI),
            "Gi" => (0, 30, Format::BinarySI),
            "Ti" => (0, 40, Format::BinarySI),
            "Pi" => (0, 50, Format::BinarySI),
            "Ei" => (0, 60, Format::BinarySI),
            _ if suffix.len() > 1 && (sb[0] == b'e' || sb[0] == b'E') => {
                let e: i64 = suffix[1..]
                    .parse()
                    .map_err(|_| "unable to parse quantity's suffix".to_string())?;
                (e, 0, Format::DecimalExponent)
            }
            _ => return Err("unable to parse quantity's suffix".to_string()),
        };
        // Kubernetes' quantities hold int64 units: more is refused rather than clamped.
        let magnitude = exact_nano(int_digits, frac_digits, exp10, exp2)
            .ok_or_else(|| format!("quantity too large: more than {} units", i64::MAX))?;
        Ok(Quantity {
            nano: if negative { -magnitude } else { magnitude },
            format,
        })
    }

    /// ceil(q * 1000), rounding away from zero, saturating at the i64 bounds (Kubernetes'
    /// MilliValue).
    pub fn milli_value(&self) -> i64 {
        scaled(self.nano, 1_000_000)
    }

    /// ceil(q), rounding away from zero (Kubernetes' Value): bytes, whole cores.
    pub fn value(&self) -> i64 {
        scaled(self.nano, NANO)
    }

    /// The sum, in the format of `self` (or of `other` when `self` is zero), as Kubernetes' Add.
    pub fn add(&self, other: &Quantity) -> Quantity {
        let format = if self.nano == 0 {
            other.format
        } else {
            self.format
        };
        Quantity {
            nano: self.nano.saturating_add(other.nano),
            format,
        }
    }

    /// The difference, in the format of `self` (or of `other` when `self` is zero).
    pub fn sub(&self, other: &Quantity) -> Quantity {
        let format = if self.nano == 0 {
            other.format
        } else {
            self.format
        };
        Quantity {
            nano: self.nano.saturating_sub(other.nano),
            format,
        }
    }

    /// The negation.
    pub fn neg(&self) -> Quantity {
        Quantity {
            nano: -self.nano,
            format: self.format,
        }
    }

    /// Kubernetes' canonical string: what the API server stores and prints ("0.5" → "500m",
    /// "1024Mi" → "1Gi", "2000" → "2k").
    pub fn canonical(&self) -> String {
        if self.nano == 0 {
            return "0".to_string();
        }
        let mut format = self.format;
        if format == Format::BinarySI {
            // Small or fractional binary values are shown in decimal: no rounding, less confusion.
            if self.nano.abs() < 1024 * NANO || self.nano % NANO != 0 {
                format = Format::DecimalSI;
            }
        }
        match format {
            Format::BinarySI => {
                let mut m = self.nano / NANO;
                let mut e = 0;
                while e < 6 && m % 1024 == 0 {
                    m /= 1024;
                    e += 1;
                }
                let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][e];
                format!("{m}{suffix}")
            }
            Format::DecimalSI | Format::DecimalExponent => {
                let mut m = self.nano;
                let mut e: i32 = -9;
                while m % 10 == 0 {
                    m /= 10;
                    e += 1;
                }
                match e.rem_euclid(3) {
                    1 => {
                        m *= 10;
                        e -= 1;
                    }
                    2 => {
                        m *= 100;
                        e -= 2;
                    }
                    _ => {}
                }
                if format == Format::DecimalExponent {
                    if e == 0 {
                        format!("{m}")
                    } else {
                        format!("{m}e{e}")
                    }
                } else {
                    let suffix = match e {
                        -9 => "n",
                        -6 => "u",
                        -3 => "m",
                        0 => "",
                        3 => "k",
                        6 => "M",
                        9 => "G",
                        12 => "T",
                        15 => "P",
                        18 => "E",
                        _ => return format!("{m}e{e}"),
                    };
                    format!("{m}{suffix}")
                }
            }
        }
    }
}

/// The canonical form of a quantity string, or the parse error.
pub fn canonicalize(s: &str) -> Result<String, String> {
    Quantity::parse(s).map(|q| q.canonical())
}

fn scaled(nano: i128, unit: i128) -> i64 {
    let q = nano / unit;
    let r = nano % unit;
    let v = if r > 0 {
        q + 1
    } else if r < 0 {
        q - 1
    } else {
        q
    };
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// |digits| * 10^exp10 * 2^exp2 in nano-units, rounded up to a whole nano-unit (when non-zero);
/// None above MAX_NANO. Exact: in `u128` without allocating when the significant digits and
/// the powers fit (every quantity written in practice), else on decimal digit vectors.
fn exact_nano(int_digits: &str, frac_digits: &str, exp10: i64, exp2: u32) -> Option<i128> {
    match exact_nano_u128(int_digits, frac_digits, exp10, exp2) {
        Fast::Value(v) => v,
        Fast::TooWide => exact_nano_digits(int_digits, frac_digits, exp10, exp2),
    }
}

enum Fast {
    Value(Option<i128>),
    /// The digits or powers do not fit in `u128`: take the digit-vector path.
    TooWide,
}

/// [`exact_nano`] in `u128`: the significant digits m (leading and trailing zeros dropped, the
/// trailing ones into the power of ten), value = m * 2^exp2 * 10^scale nano-units.
fn exact_nano_u128(int_digits: &str, frac_digits: &str, exp10: i64, exp2: u32) -> Fast {
    let all = || int_digits.bytes().chain(frac_digits.bytes());
    let total = int_digits.len() + frac_digits.len();
    let Some(first) = all().position(|d| d != b'0') else {
        return Fast::Value(Some(0));
    };
    let trailing = all().rev().take_while(|&d| d == b'0').count();
    let significant = total - first - trailing;
    // 10^38 < 2^128: at most 38 significant digits fit.
    if significant > 38 {
        return Fast::TooWide;
    }
    let mut m: u128 = 0;
    for d in all().skip(first).take(significant) {
        m = m * 10 + u128::from(d - b'0');
    }
    let scale = exp10
        .saturating_sub(frac_digits.len() as i64)
        .saturating_add(9)
        .saturating_add(trailing as i64);
    let Some(n) = 1u128.checked_shl(exp2).and_then(|p| m.checked_mul(p)) else {
        return Fast::TooWide;
    };
    let v = if scale >= 0 {
        // n >= 1: any power of ten above 10^28 exceeds MAX_NANO (about 9.2e27).
        if scale > 28 {
            return Fast::Value(None);
        }
        match n.checked_mul(10u128.pow(scale as u32)) {
            Some(v) => v,
            None => return Fast::Value(None),
        }
    } else {
        let k = scale.unsigned_abs();
        if k > 38 {
            return Fast::TooWide;
        }
        let p = 10u128.pow(k as u32);
        n / p + u128::from(n % p != 0)
    };
    Fast::Value(i128::try_from(v).ok().filter(|&v| v <= MAX_NANO))
}

/// [`exact_nano`] on decimal digit vectors, for what does not fit in `u128`.
fn exact_nano_digits(int_digits: &str, frac_digits: &str, exp10: i64, exp2: u32) -> Option<i128> {
    // Significant digits, most significant first, and the power of ten they are scaled by.
    let mut digits: Vec<u8> = int_digits
        .bytes()
        .chain(frac_digits.bytes())
        .map(|c| c - b'0')
        .collect();
    let mut scale: i64 = exp10
        .saturating_sub(frac_digits.len() as i64)
        .saturating_add(9);
    let first = digits.iter().position(|&d| d != 0);
    let Some(first) = first else { return Some(0) };
    digits.drain(..first);
    while digits.last() == Some(&0) {
        digits.pop();
        scale = scale.saturating_add(1);
    }
    // Multiply by 2^exp2 on the digit vector.
    for _ in 0..exp2 {
        let mut carry = 0;
        for d in digits.iter_mut().rev() {
            let v = *d * 2 + carry;
            *d = v % 10;
            carry = v / 10;
        }
        if carry > 0 {
            digits.insert(0, carry);
        }
    }
    // 29 digits exceed MAX_NANO (about 9.2e27).
    let (int_part, round_up): (Vec<u8>, bool) = if scale >= 0 {
        if digits.len() as i64 + scale > 29 {
            return None;
        }
        let mut v = digits.clone();
        v.extend(std::iter::repeat_n(0, scale as usize));
        (v, false)
    } else {
        let k = scale.unsigned_abs();
        if k >= digits.len() as u64 {
            (vec![], true)
        } else {
            let split = digits.len() - k as usize;
            let frac_nonzero = digits[split..].iter().any(|&d| d != 0);
            (digits[..split].to_vec(), frac_nonzero)
        }
    };
    if int_part.len() > 29 {
        return None;
    }
    let mut v: i128 = 0;
    for d in int_part {
        v = v * 10 + i128::from(d);
    }
    if round_up {
        v += 1;
    }
    (v <= MAX_NANO).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The u128 path agrees with the digit-vector one wherever it answers.
    #[test]
    fn fast_path_agrees_with_digit_vectors() {
        let ints = [
            "",
            "0",
            "1",
            "7",
            "10",
            "000120",
            "999",
            "1024",
            "123456789",
            "9223372036854775807",
            "9223372036854775808",
            "92233720368547758070000",
            "12345678901234567890123456789012345678",
            "123456789012345678901234567890123456789",
        ];
        let fracs = [
            "",
            "0",
            "5",
            "001",
            "000000001",
            "0000000001",
            "123456789123",
            "10",
        ];
        let exp10s = [-40, -18, -9, -6, -3, 0, 3, 6, 9, 12, 15, 18, 19, 28, 40];
        let mut checked = 0;
        for i in ints {
            for f in fracs {
                if i.is_empty() && f.is_empty() {
                    continue;
                }
                for e10 in exp10s {
                    for e2 in [0, 10, 20, 30, 40, 50, 60] {
                        let slow = exact_nano_digits(i, f, e10, e2);
                        if let Fast::Value(fast) = exact_nano_u128(i, f, e10, e2) {
                            assert_eq!(fast, slow, "{i}.{f} e{e10} *2^{e2}");
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 5000, "{checked}");
    }

    fn canon(s: &str) -> String {
        Quantity::parse(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .canonical()
    }

    #[test]
    fn canonical_forms_match_kubernetes() {
        let table = [
            // Zero, whatever the suffix.
            ("0", "0"),
            ("0n", "0"),
            ("0u", "0"),
            ("0m", "0"),
            ("0Ki", "0"),
            ("0k", "0"),
            ("0Mi", "0"),
            ("0e3", "0"),
            ("-0", "0"),
            ("000", "0"),
            // Binary SI.
            ("1Ki", "1Ki"),
            ("8Ki", "8Ki"),
            ("7Mi", "7Mi"),
            ("6Gi", "6Gi"),
            ("5Ti", "5Ti"),
            ("4Pi", "4Pi"),
            ("3Ei", "3Ei"),
            ("10Ti", "10Ti"),
            ("100Ti", "100Ti"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("128Mi", "128Mi"),
            ("1.5Gi", "1536Mi"),
            ("0.5Gi", "512Mi"),
            ("1024Ki", "1Mi"),
            ("2048", "2048"),
            ("1.5Ki", "1536"),
            ("0.5Ki", "512"),
            ("0.1Ki", "102400m"),
            ("1.2Gi", "1288490188800m"),
            ("-2048Ki", "-2Mi"),
            ("-1Ki", "-1Ki"),
            // Decimal SI.
            ("5n", "5n"),
            ("4u", "4u"),
            ("3m", "3m"),
            ("9", "9"),
            ("8k", "8k"),
            ("50k", "50k"),
            ("7M", "7M"),
            ("6G", "6G"),
            ("5T", "5T"),
            ("40T", "40T"),
            ("300T", "300T"),
            ("2P", "2P"),
            ("1E", "1E"),
            ("0.5", "500m"),
            ("1000m", "1"),
            ("2000", "2k"),
            ("1500", "1500"),
            ("0.1", "100m"),
            ("1.5", "1500m"),
            (".5", "500m"),
            ("1.", "1"),
            ("+1", "1"),
            ("-1", "-1"),
            ("-0.5", "-500m"),
            ("12.34", "12340m"),
            ("0.001", "1m"),
            ("0.0001", "100u"),
            ("0.00000001", "10n"),
            ("0.000000001", "1n"),
            ("1000000", "1M"),
            ("1000k", "1M"),
            ("100m", "100m"),
            ("200m", "200m"),
            ("1001m", "1001m"),
            ("1000000000n", "1"),
            // Values below 1n round up, away from zero.
            ("0.0000000001", "1n"),
            ("-0.0000000001", "-1n"),
            ("1e-10", "1e-9"),
            ("1.5n", "2n"),
            // Decimal exponent.
            ("1e3", "1e3"),
            ("1E3", "1e3"),
            ("1e6", "1e6"),
            ("1E-3", "1e-3"),
            ("1e+3", "1e3"),
            ("1.5e3", "1500"),
            ("10e3", "10e3"),
            ("0.5e0", "500e-3"),
            // The largest quantity (2^63-1 units; more is refused, see below).
            ("9223372036854775807", "9223372036854775807"),
            ("9223372036854775807000m", "9223372036854775807"),
        ];
        for (input, want) in table {
            assert_eq!(canon(input), want, "canonical form of {input:?}");
        }
    }

    #[test]
    fn invalid_quantities_are_rejected() {
        for s in [
            "", " 1", "1 ", "1.1.M", "1+1.0M", "0.1mi", "0.1am", "aoeu", ".5i", "1i", "-3.01i",
            "-3.01e-", "1K", "1m5", "1.0.0", "Ki", ".", "-", "1Kii", "1e", "e3", "1e1.5",
        ] {
            assert!(Quantity::parse(s).is_err(), "{s:?} must not parse");
        }
    }

    #[test]
    fn values_round_up_as_kubernetes() {
        let q = |s: &str| Quantity::parse(s).expect("parses");
        assert_eq!(q("200m").milli_value(), 200);
        assert_eq!(q("200m").value(), 1);
        assert_eq!(q("1").milli_value(), 1000);
        assert_eq!(q("1.5").value(), 2);
        assert_eq!(q("-1.5").value(), -2);
        assert_eq!(q("1n").milli_value(), 1);
        assert_eq!(q("-1n").milli_value(), -1);
        assert_eq!(q("1Gi").value(), 1 << 30);
        assert_eq!(q("128Mi").value(), 128 << 20);
        assert_eq!(q("1.5Gi").value(), 1_610_612_736);
        assert_eq!(q("1k").value(), 1000);
        assert_eq!(q("1e3").milli_value(), 1_000_000);
        assert_eq!(q("9223372036854775807").value(), i64::MAX);
        assert_eq!(q("9223372036854775807").milli_value(), i64::MAX);
        assert_eq!(q("2E").value(), 2_000_000_000_000_000_000);
    }

    #[test]
    fn quantities_beyond_int64_units_are_refused_not_clamped() {
        for s in ["1e400", "9223372036854775808", "10E", "8Ei", "-1e30"] {
            let e = Quantity::parse(s).expect_err(s);
            assert!(e.contains("too large"), "{s}: {e}");
        }
        assert!(Quantity::parse("9223372036854775807").is_ok());
        assert!(Quantity::parse("7Ei").is_ok());
    }

    #[test]
    fn ordering_and_equality_are_by_value() {
        let q = |s: &str| Quantity::parse(s).expect("parses");
        assert_eq!(q("1Gi"), q("1073741824"));
        assert_eq!(q("1"), q("1000m"));
        assert_eq!(q("0.5"), q("500m"));
        assert!(q("100m") < q("1"));
        assert!(q("1Gi") > q("1G"));
        assert!(q("-1") < q("0"));
        assert!(q("1Mi") < q("1.5Mi"));
        assert_eq!(q("1e3"), q("1k"));
    }

    #[test]
    fn arithmetic_keeps_the_receivers_format() {
        let q = |s: &str| Quantity::parse(s).expect("parses");
        assert_eq!(q("1Gi").add(&q("512Mi")).canonical(), "1536Mi");
        assert_eq!(q("1Gi").add(&q("1Gi")).canonical(), "2Gi");
        assert_eq!(q("500m").add(&q("500m")).canonical(), "1");
        assert_eq!(q("1").sub(&q("250m")).canonical(), "750m");
        assert_eq!(Quantity::zero().add(&q("1Mi")).canonical(), "1Mi");
        assert_eq!(q("1").sub(&q("2")).canonical(), "-1");
        assert_eq!(q("1Ki").neg().canonical(), "-1Ki");
        assert_eq!(Quantity::from_milli(1500).canonical(), "1500m");
        assert_eq!(Quantity::from_value(3, Format::BinarySI).canonical(), "3");
        assert_eq!(
            Quantity::from_value(2048, Format::BinarySI).canonical(),
            "2Ki"
        );
        assert_eq!(canonicalize("0.5").as_deref(), Ok("500m"));
    }
}

#[cfg(test)]
mod admission_tests {
    /// A quantity beyond int64 units in a manifest is an invalid field, named by its path.
    #[test]
    fn an_overflowing_request_is_an_invalid_field() {
        for cpu in ["1e400", "\"1e400\"", "99999999999999999999"] {
            let text = format!(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: nginx\n    resources:\n      requests:\n        cpu: {cpu}\n"
            );
            let errs = match crate::manifest::parse_manifests(&text) {
                Err(e) => e.to_string(),
                Ok(mut parsed) => crate::validation::validate(&parsed.remove(0).object)
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            };
            // A number too big for YAML's integers fails in the decoder, also with its path.
            assert!(
                (errs.contains("spec.containers[0].resources.requests[cpu]")
                    && errs.contains("too large"))
                    || errs.contains("spec.containers[0].resources.requests.cpu"),
                "{cpu}: {errs}"
            );
        }
    }
}
