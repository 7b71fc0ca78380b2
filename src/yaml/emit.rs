//! YAML written as `kubectl -o yaml` writes it: sigs.k8s.io/yaml's JSONToYAML, i.e. go-yaml
//! v2's encoder and libyaml's emitter. Keys sorted by go-yaml's natural order; block style,
//! 2-space indentation, sequences under a key not indented; a string that would read back as
//! another type (`"1"`, `"true"`, `"2024-01-01T00:00:00Z"`, `""`) double-quoted; one that plain
//! style cannot carry (`'*'`, `'a: b'`, leading spaces) single-quoted; multi-line strings as
//! literal blocks (`|`, `|-`, `|+`); long lines folded at column 80 where a space allows.
use std::cmp::Ordering;

use serde_json::Value as Json;

use super::resolve::{format_float_g, resolve_plain, Resolved};

const BEST_WIDTH: usize = 80;

/// `value` as a YAML document, ending in a newline.
pub fn to_string(value: &Json) -> String {
    let mut w = Writer::default();
    match value {
        Json::Object(m) if !m.is_empty() => w.map(m, 0, true),
        Json::Array(a) if !a.is_empty() => w.seq(a, 0, true),
        other => w.inline(other, 0),
    }
    w.out.push('\n');
    w.out
}

#[derive(Default)]
struct Writer {
    out: String,
    /// Characters since the last line break.
    column: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

impl Writer {
    fn push(&mut self, s: &str) {
        for c in s.chars() {
            self.push_char(c);
        }
    }

    fn push_char(&mut self, c: char) {
        self.out.push(c);
        if c == '\n' {
            self.column = 0;
        } else {
            self.column += 1;
        }
    }

    /// libyaml's write_indent where a long line folds: a line break and spaces up to `indent`.
    fn indent(&mut self, indent: usize) {
        self.push_char('\n');
        while self.column < indent {
            self.push_char(' ');
        }
    }

    fn newline_at(&mut self, indent: usize) {
        if !self.out.is_empty() {
            self.push_char('\n');
        }
        for _ in 0..indent {
            self.push_char(' ');
        }
    }

    fn map(&mut self, m: &serde_json::Map<String, Json>, indent: usize, first_inline: bool) {
        let mut keys: Vec<&String> = m.keys().collect();
        keys.sort_by(|a, b| natural_cmp(a, b));
        for (i, k) in keys.into_iter().enumerate() {
            if i > 0 || !first_inline {
                self.newline_at(indent);
            }
            self.scalar_str(k, indent + 2, true);
            self.push_char(':');
            let v = &m[k];
            match v {
                Json::Object(inner) if !inner.is_empty() => self.map(inner, indent + 2, false),
                Json::Array(items) if !items.is_empty() => self.seq(items, indent, false),
                other => {
                    self.push_char(' ');
                    self.inline(other, indent + 2);
                }
            }
        }
    }

    fn seq(&mut self, items: &[Json], indent: usize, first_inline: bool) {
        for (i, item) in items.iter().enumerate() {
            if i > 0 || !first_inline {
                self.newline_at(indent);
            }
            self.push("- ");
            match item {
                Json::Object(m) if !m.is_empty() => self.map(m, indent + 2, true),
                Json::Array(a) if !a.is_empty() => self.seq(a, indent + 2, true),
                other => self.inline(other, indent + 2),
            }
        }
    }

    /// A scalar or an empty collection after `key: ` or `- `.
    fn inline(&mut self, v: &Json, indent: usize) {
        match v {
            Json::Null => self.push("null"),
            Json::Bool(b) => self.push(if *b { "true" } else { "false" }),
            Json::Number(n) => {
                let s = if n.is_f64() {
                    format_float_g(n.as_f64().unwrap_or(0.0), false)
                } else {
                    n.to_string()
                };
                self.push(&s)
            }
            Json::String(s) => self.scalar_str(s, indent, false),
            Json::Object(_) => self.push("{}"),
            Json::Array(_) => self.push("[]"),
        }
    }

    fn scalar_str(&mut self, s: &str, indent: usize, simple_key: bool) {
        match select_style(s, simple_key) {
            Style::Plain => self.plain(s, indent, !simple_key),
            Style::Single => self.single(s, indent, !simple_key),
            Style::Double => self.double(s, indent, !simple_key),
            Style::Literal => self.literal(s, indent),
        }
    }

    fn plain(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && chars.get(i + 1) != Some(&' ')
                {
                    self.indent(indent);
                } else {
                    self.push_char(c);
                }
                spaces = true;
            } else {
                self.push_char(c);
                spaces = false;
            }
        }
    }

    fn single(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        self.push_char('\'');
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i + 1 < chars.len()
                    && chars.get(i + 1) != Some(&' ')
                {
                    self.indent(indent);
                } else {
                    self.push_char(c);
                }
                spaces = true;
            } else {
                if c == '\'' {
                    self.push_char('\'');
                }
                self.push_char(c);
                spaces = false;
            }
        }
        self.push_char('\'');
    }

    fn double(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        self.push_char('"');
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if !is_printable(c) || c == '\u{feff}' || is_break(c) || c == '"' || c == '\\' {
                self.push_char('\\');
                let esc = match c {
                    '\0' => "0".to_string(),
                    '\u{7}' => "a".into(),
                    '\u{8}' => "b".into(),
                    '\t' => "t".into(),
                    '\n' => "n".into(),
                    '\u{b}' => "v".into(),
                    '\u{c}' => "f".into(),
                    '\r' => "r".into(),
                    '\u{1b}' => "e".into(),
                    '"' => "\"".into(),
                    '\\' => "\\".into(),
                    '\u{85}' => "N".into(),
                    '\u{a0}' => "_".into(),
                    '\u{2028}' => "L".into(),
                    '\u{2029}' => "P".into(),
                    c if (c as u32) <= 0xFF => format!("x{:02X}", c as u32),
                    c if (c as u32) <= 0xFFFF => format!("u{:04X}", c as u32),
                    c => format!("U{:08X}", c as u32),
                };
                self.push(&esc);
                spaces = false;
            } else if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i + 1 < chars.len()
                {
                    self.indent(indent);
                    if chars.get(i + 1) == Some(&' ') {
                        self.push_char('\\');
                    }
                } else {
                    self.push_char(c);
                }
                spaces = true;
            } else {
                self.push_char(c);
                spaces = false;
            }
        }
        self.push_char('"');
    }

    fn literal(&mut self, s: &str, indent: usize) {
        self.push_char('|');
        if s.starts_with([' ', '\n']) {
            self.push_char('2');
        }
        let chomp = if !s.ends_with('\n') {
            "-"
        } else if s.len() == 1 || s[..s.len() - 1].ends_with('\n') {
            "+"
        } else {
            ""
        };
        self.push(chomp);
        self.push_char('\n');
        let mut breaks = true;
        for c in s.chars() {
            if c == '\n' {
                self.push_char('\n');
                breaks = true;
            } else {
                if breaks {
                    for _ in 0..indent {
                        self.push_char(' ');
                    }
                }
                self.push_char(c);
                breaks = false;
            }
        }
        // The document's own final line break is added by the caller; a trailing break of the
        // value is already written.
        if s.ends_with('\n') {
            self.out.pop();
            let line_start = self.out.rfind('\n').map_or(0, |i| i + 1);
            self.column = self.out[line_start..].chars().count();
        }
    }
}

/// go-yaml's stringv and libyaml's analyze/select for a string scalar in block context.
fn select_style(s: &str, simple_key: bool) -> Style {
    let resolves_to_str = resolve_plain(s).0 == Resolved::Str && !is_base60_float(s);
    let mut style = if s.contains('\n') {
        Style::Literal
    } else if resolves_to_str {
        Style::Plain
    } else {
        Style::Double
    };
    let a = analyze(s);
    if simple_key && a.multiline {
        style = Style::Double;
    }
    if style == Style::Plain && (!a.block_plain_allowed || (s.is_empty() && simple_key)) {
        style = Style::Single;
    }
    if style == Style::Single && !a.single_quoted_allowed {
        style = Style::Double;
    }
    if style == Style::Literal && (!a.block_allowed || simple_key) {
        style = Style::Double;
    }
    style
}

struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blankz(c: Option<&char>) -> bool {
    match c {
        None => true,
        Some(&c) => c == ' ' || c == '\t' || is_break(c) || c == '\0',
    }
}

/// libyaml's is_printable (go-yaml's emitter runs with unicode on).
fn is_printable(c: char) -> bool {
    let v = c as u32;
    v == 0x0A
        || (0x20..=0x7E).contains(&v)
        || (0xA0..=0xD7FF).contains(&v)
        || ((0xE000..=0xFFFD).contains(&v) && v != 0xFEFF)
}

/// libyaml's yaml_emitter_analyze_scalar, for block context.
fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            multiline: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let chars: Vec<char> = s.chars().collect();
    let mut block_indicators = s.starts_with("---") || s.starts_with("...");
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break, mut previous_space, mut previous_break) =
        (false, false, false, false);
    let (mut line_breaks, mut special) = (false, false);
    let mut preceded_by_whitespace = true;
    let mut followed_by_whitespace = is_blankz(chars.get(1));
    let n = chars.len();
    for i in 0..n {
        let c = chars[i];
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_indicators = true,
                '?' | ':' if followed_by_whitespace => block_indicators = true,
                '-' if followed_by_whitespace => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_whitespace => block_indicators = true,
                '#' if preceded_by_whitespace => block_indicators = true,
                _ => {}
            }
        }
        if !is_printable(c) {
            special = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i + 1 == n {
                trailing_space = true;
            }
            if previous_break {
                break_space = true;
            }
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            line_breaks = true;
            if i == 0 {
                leading_break = true;
            }
            if i + 1 == n {
                trailing_break = true;
            }
            if previous_space {
                space_break = true;
            }
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = is_blankz(Some(&c));
        followed_by_whitespace = is_blankz(chars.get(i + 2));
    }
    let mut a = Analysis {
        multiline: line_breaks,
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
        a.block_allowed = false;
    }
    if line_breaks || block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

/// go-yaml's isBase60Float: `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`.
fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !(b[0] == b'+' || b[0] == b'-' || b[0].is_ascii_digit()) || !s.contains(':')
    {
        return false;
    }
    let mut i = usize::from(b[0] == b'+' || b[0] == b'-');
    if !b.get(i).is_some_and(u8::is_ascii_digit) {
        return false;
    }
    i += 1;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while b.get(i) == Some(&b':') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 2 {
            i += 1;
        }
        let g = &s[start..i];
        let ok = match g.len() {
            1 => true,
            2 => g.as_bytes()[0] <= b'5',
            _ => false,
        };
        if !ok {
            return false;
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

/// go-yaml's keyList.Less for string keys: letters before other characters, runs of digits
/// compared as numbers.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let less = |x: &[char], y: &[char]| -> bool {
        for i in 0..x.len().min(y.len()) {
            if x[i] == y[i] {
                continue;
            }
            let al = x[i].is_alphabetic();
            let bl = y[i].is_alphabetic();
            if al && bl {
                return x[i] < y[i];
            }
            if al || bl {
                return bl;
            }
            let (mut an, mut bn) = (0i64, 0i64);
            if x[i] == '0' || y[i] == '0' {
                let mut j = i;
                while j > 0 && x[j - 1].is_ascii_digit() {
                    j -= 1;
                    if x[j] != '0' {
                        an = 1;
                        bn = 1;
                        break;
                    }
                }
            }
            let mut ai = i;
            while ai < x.len() && x[ai].is_ascii_digit() {
                an = an.wrapping_mul(10).wrapping_add(x[ai] as i64 - '0' as i64);
                ai += 1;
            }
            let mut bi = i;
            while bi < y.len() && y[bi].is_ascii_digit() {
                bn = bn.wrapping_mul(10).wrapping_add(y[bi] as i64 - '0' as i64);
                bi += 1;
            }
            if an != bn {
                return an < bn;
            }
            if ai != bi {
                return ai < bi;
            }
            return x[i] < y[i];
        }
        x.len() < y.len()
    };
    if less(&ar, &br) {
        Ordering::Less
    } else if less(&br, &ar) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}
