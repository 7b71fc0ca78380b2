//! Field paths built only when an error is reported.
//!
//! A valid object reports nothing, so formatting `spec.containers[0].ports[1].protocol` for every
//! field checked is wasted work (it was most of a pod's validation cost). A [`Path`] is a chain
//! of borrowed segments on the stack; it becomes a `String` only in the message helpers, when an
//! error is pushed.
use std::fmt;

/// A field path: a root (`spec`, `spec.template.spec`) and segments borrowed from the caller.
#[derive(Clone, Copy)]
pub(crate) enum Path<'a> {
    /// The path as written (may be empty).
    Root(&'a str),
    /// `parent.name`
    Field(&'a Path<'a>, &'a str),
    /// `parent.name[i]`
    Index(&'a Path<'a>, &'a str, usize),
    /// `parent.name[key]`
    Key(&'a Path<'a>, &'a str, &'a str),
}

impl<'a> Path<'a> {
    /// `self.name`
    pub(crate) fn field(&'a self, name: &'a str) -> Path<'a> {
        Path::Field(self, name)
    }

    /// `self.name[i]`
    pub(crate) fn index(&'a self, name: &'a str, i: usize) -> Path<'a> {
        Path::Index(self, name, i)
    }

    /// `self.name[key]`
    pub(crate) fn key(&'a self, name: &'a str, key: &'a str) -> Path<'a> {
        Path::Key(self, name, key)
    }

    /// Writes `parent.name`, exactly as `format!("{parent}.{name}")`.
    fn dot(f: &mut fmt::Formatter<'_>, parent: &Path<'_>, name: &str) -> fmt::Result {
        fmt::Display::fmt(parent, f)?;
        f.write_str(".")?;
        f.write_str(name)
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root(s) => f.write_str(s),
            Path::Field(p, name) => Path::dot(f, p, name),
            Path::Index(p, name, i) => {
                Path::dot(f, p, name)?;
                write!(f, "[{i}]")
            }
            Path::Key(p, name, k) => {
                Path::dot(f, p, name)?;
                write!(f, "[{k}]")
            }
        }
    }
}

/// What the message helpers take as a path: a string, or a [`Path`] rendered on demand.
pub(crate) trait IntoPath {
    fn into_path(self) -> String;
}

impl IntoPath for String {
    fn into_path(self) -> String {
        self
    }
}

impl<T: AsRef<str> + ?Sized> IntoPath for &T {
    fn into_path(self) -> String {
        self.as_ref().to_string()
    }
}

impl IntoPath for Path<'_> {
    fn into_path(self) -> String {
        self.to_string()
    }
}

impl IntoPath for &Path<'_> {
    fn into_path(self) -> String {
        self.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_as_the_formatted_paths_did() {
        let spec = Path::Root("spec");
        let c = spec.index("containers", 2);
        let r = c.field("resources");
        assert_eq!(
            r.key("limits", "cpu").into_path(),
            "spec.containers[2].resources.limits[cpu]"
        );
        assert_eq!(c.field("name").into_path(), "spec.containers[2].name");
        assert_eq!("metadata.name".into_path(), "metadata.name");
    }
}
