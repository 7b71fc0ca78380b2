//! `IntOrString`: JSON form is a bare number or string, as Kubernetes' intstr.
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::v1::IntOrString;

impl IntOrString {
    pub fn int(v: i32) -> Self {
        IntOrString {
            int_val: v,
            str_val: String::new(),
            is_string: false,
        }
    }

    pub fn string(s: impl Into<String>) -> Self {
        IntOrString {
            int_val: 0,
            str_val: s.into(),
            is_string: true,
        }
    }

    /// Resolve against `total` as Kubernetes' GetScaledValueFromIntOrPercent: an int is itself,
    /// "N%" is N% of total rounded up or down. Err for a string that is not a percentage.
    pub fn scaled_value(&self, total: i32, round_up: bool) -> Result<i32, String> {
        if !self.is_string {
            return Ok(self.int_val);
        }
        let pct = self
            .str_val
            .strip_suffix('%')
            .and_then(|p| p.parse::<i64>().ok())
            .ok_or_else(|| {
                format!(
                    "invalid value for IntOrString: invalid value {:?}",
                    self.str_val
                )
            })?;
        let num = pct * i64::from(total);
        let v = if round_up {
            (num + 99).div_euclid(100)
        } else {
            num.div_euclid(100)
        };
        Ok(v as i32)
    }
}

impl std::fmt::Display for IntOrString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_string {
            f.write_str(&self.str_val)
        } else {
            write!(f, "{}", self.int_val)
        }
    }
}

impl Serialize for IntOrString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.is_string {
            s.serialize_str(&self.str_val)
        } else {
            s.serialize_i32(self.int_val)
        }
    }
}

impl<'de> Deserialize<'de> for IntOrString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IntOrString;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntOrString, E> {
                i32::try_from(v)
                    .map(IntOrString::int)
                    .map_err(|_| E::custom(format!("integer {v} out of range")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntOrString, E> {
                i32::try_from(v)
                    .map(IntOrString::int)
                    .map_err(|_| E::custom(format!("integer {v} out of range")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IntOrString, E> {
                Ok(IntOrString::string(v))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_bare_int_or_string() {
        let i: IntOrString = serde_json::from_str("1").expect("int");
        assert_eq!(i, IntOrString::int(1));
        let s: IntOrString = serde_json::from_str("\"25%\"").expect("string");
        assert_eq!(s, IntOrString::string("25%"));
        assert_eq!(serde_json::to_string(&i).expect("ser"), "1");
        assert_eq!(serde_json::to_string(&s).expect("ser"), "\"25%\"");
    }

    #[test]
    fn percent_rounds_as_kubernetes() {
        // maxSurge 25% of 10 rounds up to 3, maxUnavailable 25% of 10 rounds down to 2.
        let p = IntOrString::string("25%");
        assert_eq!(p.scaled_value(10, true), Ok(3));
        assert_eq!(p.scaled_value(10, false), Ok(2));
        assert_eq!(IntOrString::int(4).scaled_value(10, true), Ok(4));
        assert!(IntOrString::string("x").scaled_value(10, true).is_err());
    }
}
