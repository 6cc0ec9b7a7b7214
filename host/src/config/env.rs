//! `${VAR}` and `${VAR:-default}` expansion in config text, before YAML parsing.
//!
//! Comments are left alone, `$$` is a literal `$`, and an unset variable without a default is
//! an error naming the line (a silently empty endpoint or token is worse than a clear stop).

/// An expansion error, with the 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ExpandError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Expands variables in `text` using `lookup`.
pub fn expand(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let (code, comment) = line.split_at(comment_start(line));
        expand_line(code, index + 1, &lookup, &mut out)?;
        out.push_str(comment);
    }
    Ok(out)
}

/// Byte offset where a YAML comment starts (a `#` at the start or after whitespace, outside
/// quotes), or the line's length.
fn comment_start(line: &str) -> usize {
    let (mut single, mut double, mut prev_space) = (false, false, true);
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev_space => return i,
            _ => {}
        }
        prev_space = c.is_whitespace();
    }
    line.len()
}

fn expand_line(
    code: &str,
    line: usize,
    lookup: &impl Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<(), ExpandError> {
    let mut rest = code;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| ExpandError {
                line,
                message: "unterminated `${`".to_owned(),
            })?;
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (expr, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(ExpandError {
                    line,
                    message: format!("invalid variable name `{name}` in `${{{expr}}}`"),
                });
            }
            match (lookup(name), default) {
                // `${VAR:-d}` uses `d` when VAR is unset or empty, as in the shell.
                (Some(value), None) => out.push_str(&value),
                (Some(value), Some(_)) if !value.is_empty() => out.push_str(&value),
                (_, Some(default)) => out.push_str(default),
                (None, None) => {
                    return Err(ExpandError {
                        line,
                        message: format!("environment variable {name} is not set (write ${{{name}:-default}} to give a default)"),
                    })
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("node-1".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_set_variables_and_defaults() {
        let text =
            "a: ${HOST}\nb: ${MISSING:-fallback}\nc: ${EMPTY:-used}\nd: $${HOST}\ne: cost $5\n";
        assert_eq!(
            expand(text, env).unwrap(),
            "a: node-1\nb: fallback\nc: used\nd: ${HOST}\ne: cost $5\n"
        );
    }

    #[test]
    fn unset_without_default_names_the_line() {
        let err = expand("a: 1\nb: ${NOPE}\n", env).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("NOPE is not set"), "{err}");
    }

    #[test]
    fn comments_are_not_expanded() {
        assert_eq!(
            expand("a: x # uses ${NOPE}\n# ${NOPE}\n", env).unwrap(),
            "a: x # uses ${NOPE}\n# ${NOPE}\n"
        );
        assert_eq!(
            expand("a: \"#${HOST}\"\n", env).unwrap(),
            "a: \"#node-1\"\n"
        );
    }

    #[test]
    fn malformed_references_are_errors() {
        assert!(expand("a: ${HOST\n", env)
            .unwrap_err()
            .message
            .contains("unterminated"));
        assert!(expand("a: ${BAD NAME}\n", env)
            .unwrap_err()
            .message
            .contains("invalid variable name"));
    }
}
