//! kubectl's JSONPath templates (`-o jsonpath=…`, `custom-columns`, `--sort-by`, `wait --for=
//! jsonpath=…`): text with `{…}` actions — `.a.b`, `['k.x']`, `[0]`, `[-1]`, `[1:3]`, `[*]`,
//! `..name`, `[?(@.k=="v")]`, `{range …}…{end}`, `{"\n"}`, `{$}`/`{@}`. A missing key prints
//! nothing (kubectl's `--allow-missing-template-keys=true`); strings print raw, objects and
//! arrays as compact JSON, several results of one action separated by a space.
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Field(String),
    Wildcard,
    Index(i64),
    Slice(Option<i64>, Option<i64>),
    Recursive(String),
    Filter(Box<Filter>),
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Path(Vec<Seg>),
    Lit(Value),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    left: Vec<Seg>,
    /// None: the path only has to exist.
    cmp: Option<(String, Operand)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Path(Vec<Seg>),
    Range(Vec<Seg>, Vec<Node>),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut stack: Vec<(Vec<Seg>, Vec<Node>)> = Vec::new();
        let mut cur: Vec<Node> = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let Some(open) = rest.find('{') else {
                cur.push(Node::Text(rest.to_string()));
                break;
            };
            if open > 0 {
                cur.push(Node::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = find_close(after).ok_or_else(|| format!("unclosed action in {text:?}"))?;
            let action = after[..close].trim();
            rest = &after[close + 1..];
            if action == "end" {
                let (path, outer) = stack.pop().ok_or("not in range, nothing to end")?;
                let body = std::mem::replace(&mut cur, outer);
                cur.push(Node::Range(path, body));
            } else if let Some(p) = action.strip_prefix("range ") {
                let path = parse_path(p.trim())?;
                stack.push((path, std::mem::take(&mut cur)));
            } else if action.starts_with('"') || action.starts_with('\'') {
                cur.push(Node::Text(parse_string(action)?));
            } else {
                cur.push(Node::Path(parse_path(action)?));
            }
        }
        if !stack.is_empty() {
            return Err("unclosed range".into());
        }
        Ok(Template { nodes: cur })
    }

    /// The rendered text.
    pub fn render(&self, data: &Value) -> Result<String, String> {
        let mut out = String::new();
        render_nodes(&self.nodes, data, data, &mut out);
        Ok(out)
    }

    /// The values the template's actions select (text is ignored).
    pub fn values(&self, data: &Value) -> Result<Vec<Value>, String> {
        let mut out = Vec::new();
        for n in &self.nodes {
            match n {
                Node::Path(p) => out.extend(eval(p, data, data).into_iter().cloned()),
                Node::Range(p, _) => out.extend(eval(p, data, data).into_iter().cloned()),
                Node::Text(_) => {}
            }
        }
        Ok(out)
    }
}

/// The closing '}' of an action, skipping quoted strings.
fn find_close(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => quote = Some(c),
                '}' => return Some(i),
                _ => {}
            },
        }
    }
    None
}

fn parse_string(s: &str) -> Result<String, String> {
    let q = s.chars().next().unwrap_or('"');
    let inner = s
        .strip_prefix(q)
        .and_then(|x| x.strip_suffix(q))
        .ok_or_else(|| format!("unterminated string {s:?}"))?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    Ok(out)
}

fn is_name_char(c: char) -> bool {
    !matches!(
        c,
        '.' | '[' | ']' | ' ' | '=' | '!' | '<' | '>' | ')' | '&' | '|'
    )
}

fn parse_path(s: &str) -> Result<Vec<Seg>, String> {
    let mut segs = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    if matches!(chars.first(), Some('$') | Some('@')) {
        i = 1;
    }
    while i < chars.len() {
        match chars[i] {
            '.' if chars.get(i + 1) == Some(&'.') => {
                i += 2;
                let (name, n) = read_name(&chars[i..]);
                i += n;
                segs.push(Seg::Recursive(name));
            }
            '.' => {
                i += 1;
                if chars.get(i) == Some(&'*') {
                    i += 1;
                    segs.push(Seg::Wildcard);
                    continue;
                }
                let (name, n) = read_name(&chars[i..]);
                i += n;
                if !name.is_empty() {
                    segs.push(Seg::Field(name));
                }
            }
            '[' => {
                let end = bracket_end(&chars, i)
                    .ok_or_else(|| format!("unterminated array notation in {s:?}"))?;
                let inner: String = chars[i + 1..end].iter().collect();
                segs.push(parse_bracket(inner.trim())?);
                i = end + 1;
            }
            c if c.is_whitespace() => i += 1,
            _ => {
                // A bare name at the start ("status.phase").
                let (name, n) = read_name(&chars[i..]);
                if n == 0 {
                    return Err(format!("unrecognized character in action: {:?}", chars[i]));
                }
                i += n;
                segs.push(Seg::Field(name));
            }
        }
    }
    Ok(segs)
}

fn read_name(chars: &[char]) -> (String, usize) {
    let mut name = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            name.push(chars[i + 1]);
            i += 2;
            continue;
        }
        if !is_name_char(c) {
            break;
        }
        name.push(c);
        i += 1;
    }
    (name, i)
}

fn bracket_end(chars: &[char], start: usize) -> Option<usize> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for (j, &c) in chars.iter().enumerate().skip(start) {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

fn parse_bracket(inner: &str) -> Result<Seg, String> {
    if inner == "*" {
        return Ok(Seg::Wildcard);
    }
    if let Some(f) = inner.strip_prefix("?(").and_then(|x| x.strip_suffix(')')) {
        return Ok(Seg::Filter(Box::new(parse_filter(f.trim())?)));
    }
    if inner.starts_with('\'') || inner.starts_with('"') {
        return Ok(Seg::Field(parse_string(inner)?));
    }
    let num = |x: &str| -> Result<Option<i64>, String> {
        let x = x.trim();
        if x.is_empty() {
            Ok(None)
        } else {
            x.parse::<i64>()
                .map(Some)
                .map_err(|_| format!("invalid array index {x:?}"))
        }
    };
    if let Some((a, b)) = inner.split_once(':') {
        let b = b.split(':').next().unwrap_or("");
        return Ok(Seg::Slice(num(a)?, num(b)?));
    }
    num(inner)?
        .map(Seg::Index)
        .ok_or_else(|| "empty array index".to_string())
}

fn parse_filter(f: &str) -> Result<Filter, String> {
    for op in ["==", "!=", "<=", ">=", "<", ">"] {
        if let Some((l, r)) = split_outside_quotes(f, op) {
            let right = r.trim();
            let operand = if right.starts_with('@') || right.starts_with('$') {
                Operand::Path(parse_path(right)?)
            } else if right.starts_with('"') || right.starts_with('\'') {
                Operand::Lit(Value::String(parse_string(right)?))
            } else if let Ok(n) = right.parse::<f64>() {
                Operand::Lit(serde_json::json!(n))
            } else {
                Operand::Lit(Value::String(right.to_string()))
            };
            return Ok(Filter {
                left: parse_path(l.trim())?,
                cmp: Some((op.to_string(), operand)),
            });
        }
    }
    Ok(Filter {
        left: parse_path(f)?,
        cmp: None,
    })
}

fn split_outside_quotes<'a>(s: &'a str, op: &str) -> Option<(&'a str, &'a str)> {
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        if c == '"' || c == '\'' {
            quote = Some(c);
            continue;
        }
        if s[i..].starts_with(op) {
            return Some((&s[..i], &s[i + op.len()..]));
        }
    }
    None
}

fn index(len: usize, i: i64) -> Option<usize> {
    let i = if i < 0 { len as i64 + i } else { i };
    (0..len as i64).contains(&i).then_some(i as usize)
}

fn eval<'a>(segs: &[Seg], root: &'a Value, cur: &'a Value) -> Vec<&'a Value> {
    let _ = root;
    let mut vals: Vec<&Value> = vec![cur];
    for seg in segs {
        let mut next = Vec::new();
        for v in vals {
            match seg {
                Seg::Field(name) => {
                    if let Some(x) = v.get(name.as_str()) {
                        next.push(x);
                    }
                }
                Seg::Wildcard => match v {
                    Value::Array(a) => next.extend(a.iter()),
                    Value::Object(m) => next.extend(m.values()),
                    _ => {}
                },
                Seg::Index(i) => {
                    if let Some(a) = v.as_array() {
                        if let Some(j) = index(a.len(), *i) {
                            next.push(&a[j]);
                        }
                    }
                }
                Seg::Slice(a, b) => {
                    if let Some(arr) = v.as_array() {
                        let len = arr.len() as i64;
                        let clamp = |x: i64| if x < 0 { (len + x).max(0) } else { x.min(len) };
                        let s = clamp(a.unwrap_or(0));
                        let e = clamp(b.unwrap_or(len));
                        if s < e {
                            next.extend(arr[s as usize..e as usize].iter());
                        }
                    }
                }
                Seg::Recursive(name) => recurse(v, name, &mut next),
                Seg::Filter(f) => {
                    let items: Vec<&Value> = match v {
                        Value::Array(a) => a.iter().collect(),
                        other => vec![other],
                    };
                    next.extend(items.into_iter().filter(|x| filter_ok(f, root, x)));
                }
            }
        }
        vals = next;
    }
    vals
}

fn recurse<'a>(v: &'a Value, name: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            if name.is_empty() || name == "*" {
                out.extend(m.values());
            } else if let Some(x) = m.get(name) {
                out.push(x);
            }
            for x in m.values() {
                recurse(x, name, out);
            }
        }
        Value::Array(a) => {
            for x in a {
                recurse(x, name, out);
            }
        }
        _ => {}
    }
}

fn filter_ok(f: &Filter, root: &Value, item: &Value) -> bool {
    let left = eval(&f.left, root, item);
    let Some((op, right)) = &f.cmp else {
        return !left.is_empty();
    };
    let right: Vec<Value> = match right {
        Operand::Lit(v) => vec![v.clone()],
        Operand::Path(p) => eval(p, root, item).into_iter().cloned().collect(),
    };
    let (Some(l), Some(r)) = (left.first(), right.first()) else {
        return false;
    };
    match (l.as_f64(), r.as_f64()) {
        (Some(a), Some(b)) => match op.as_str() {
            "==" => a == b,
            "!=" => a != b,
            "<" => a < b,
            ">" => a > b,
            "<=" => a <= b,
            _ => a >= b,
        },
        _ => {
            let a = scalar_text(l).unwrap_or_default();
            let b = scalar_text(r).unwrap_or_default();
            match op.as_str() {
                "==" => a == b,
                "!=" => a != b,
                "<" => a < b,
                ">" => a > b,
                "<=" => a <= b,
                _ => a >= b,
            }
        }
    }
}

/// How a value prints: strings raw, numbers and bools as text, others as compact JSON.
pub fn scalar_text(v: &Value) -> Option<String> {
    Some(match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Number(_) | Value::Bool(_) => v.to_string(),
        other => serde_json::to_string(other).ok()?,
    })
}

fn render_nodes(nodes: &[Node], root: &Value, cur: &Value, out: &mut String) {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Path(p) => {
                let vals = eval(p, root, cur);
                let texts: Vec<String> = vals.iter().filter_map(|v| scalar_text(v)).collect();
                out.push_str(&texts.join(" "));
            }
            Node::Range(p, body) => {
                for v in eval(p, root, cur) {
                    match v {
                        Value::Array(a) if !range_path_is_wildcard(p) => {
                            for x in a {
                                render_nodes(body, root, x, out);
                            }
                        }
                        x => render_nodes(body, root, x, out),
                    }
                }
            }
        }
    }
}

fn range_path_is_wildcard(p: &[Seg]) -> bool {
    matches!(
        p.last(),
        Some(Seg::Wildcard | Seg::Slice(..) | Seg::Filter(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(t: &str, v: &Value) -> String {
        Template::parse(t).unwrap().render(v).unwrap()
    }

    #[test]
    fn kubectl_examples_render() {
        let list = json!({"kind": "List", "items": [
            {"metadata": {"name": "a", "labels": {"app.kubernetes.io/name": "x"}},
             "status": {"conditions": [{"type": "Ready", "status": "True"}], "phase": "Running"},
             "spec": {"containers": [{"image": "nginx"}, {"image": "busybox"}]}},
            {"metadata": {"name": "b"}, "status": {"phase": "Pending"},
             "spec": {"containers": [{"image": "redis"}]}}
        ]});
        assert_eq!(r("{.items[*].metadata.name}", &list), "a b");
        assert_eq!(r("{.items[0].metadata.name}", &list), "a");
        assert_eq!(r("{.items[-1].metadata.name}", &list), "b");
        assert_eq!(r("{.items[0:1].metadata.name}", &list), "a");
        assert_eq!(
            r(
                "{range .items[*]}{.metadata.name}{\"\\t\"}{.status.phase}{\"\\n\"}{end}",
                &list
            ),
            "a\tRunning\nb\tPending\n"
        );
        assert_eq!(r("{..image}", &list), "nginx busybox redis");
        assert_eq!(
            r(
                "{.items[0].status.conditions[?(@.type==\"Ready\")].status}",
                &list
            ),
            "True"
        );
        assert_eq!(
            r(
                "{.items[?(@.status.phase==\"Pending\")].metadata.name}",
                &list
            ),
            "b"
        );
        assert_eq!(
            r(
                "{.items[0].metadata.labels.app\\.kubernetes\\.io/name}",
                &list
            ),
            "x"
        );
        assert_eq!(
            r(
                "{.items[0].metadata.labels['app.kubernetes.io/name']}",
                &list
            ),
            "x"
        );
        assert_eq!(r("name: {.items[1].metadata.name}!", &list), "name: b!");
        assert_eq!(r("{.items[5].metadata.name}{.nope}", &list), "");
        assert_eq!(
            r("{.items[1].spec.containers}", &list),
            "[{\"image\":\"redis\"}]"
        );
        assert_eq!(
            r(
                "{range .items[*]}{.metadata.name}={.status.phase}{\"\\n\"}{end}",
                &list
            ),
            "a=Running\nb=Pending\n"
        );
        assert!(Template::parse("{range .items[*]}{.x}").is_err());
        assert!(Template::parse("{.items[0}").is_err());
    }
}
