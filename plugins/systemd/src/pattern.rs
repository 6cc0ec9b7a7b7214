//! Unit name patterns: shell globs as `systemctl list-units PATTERN` takes them (`*`, `?`,
//! `[abc]`, `[a-z]`, `[!x]`, `\` escapes), compiled once and matched without allocation.

/// One glob pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    Any,
    Star,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Glob {
    /// Compiles `pattern`; an unterminated `[` or a trailing `\` is an error.
    pub fn new(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty() {
            return Err("empty unit pattern".to_owned());
        }
        let mut tokens = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' => {
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                }
                '?' => tokens.push(Token::Any),
                '\\' => match chars.next() {
                    Some(e) => tokens.push(Token::Char(e)),
                    None => return Err(format!("unit pattern {pattern:?} ends with '\\'")),
                },
                '[' => {
                    let negated = matches!(chars.peek(), Some('!') | Some('^'));
                    if negated {
                        chars.next();
                    }
                    let mut ranges = Vec::new();
                    let mut first = true;
                    loop {
                        let Some(c) = chars.next() else {
                            return Err(format!(
                                "unit pattern {pattern:?} has an unterminated '['"
                            ));
                        };
                        if c == ']' && !first {
                            break;
                        }
                        first = false;
                        let lo = if c == '\\' {
                            chars.next().ok_or_else(|| {
                                format!("unit pattern {pattern:?} has an unterminated '['")
                            })?
                        } else {
                            c
                        };
                        let mut ahead = chars.clone();
                        if ahead.next() == Some('-') && ahead.peek().is_some_and(|&n| n != ']') {
                            chars.next();
                            let hi = chars.next().unwrap_or(lo);
                            ranges.push((lo, hi));
                        } else {
                            ranges.push((lo, lo));
                        }
                    }
                    tokens.push(Token::Class { negated, ranges });
                }
                c => tokens.push(Token::Char(c)),
            }
        }
        Ok(Glob { tokens })
    }

    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        let text: Vec<char> = name.chars().collect();
        let (mut t, mut p) = (0usize, 0usize);
        // Where to resume after the last `*`: (pattern index after it, text index).
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            let step = match self.tokens.get(p) {
                Some(Token::Star) => {
                    star = Some((p + 1, t));
                    p += 1;
                    continue;
                }
                Some(Token::Char(c)) => *c == text[t],
                Some(Token::Any) => true,
                Some(Token::Class { negated, ranges }) => {
                    ranges
                        .iter()
                        .any(|&(lo, hi)| lo <= text[t] && text[t] <= hi)
                        != *negated
                }
                None => false,
            };
            if step {
                t += 1;
                p += 1;
            } else if let Some((sp, st)) = star {
                p = sp;
                t = st + 1;
                star = Some((sp, st + 1));
            } else {
                return false;
            }
        }
        self.tokens[p..].iter().all(|tok| *tok == Token::Star)
    }
}

/// A set of patterns: a name matches when any pattern does.
#[derive(Debug, Clone, Default)]
pub struct Patterns(Vec<Glob>);

impl Patterns {
    /// Compiles every pattern; `Err` lists every bad one.
    pub fn new(patterns: &[String]) -> Result<Self, Vec<String>> {
        let mut globs = Vec::new();
        let mut problems = Vec::new();
        for p in patterns {
            match Glob::new(p) {
                Ok(g) => globs.push(g),
                Err(e) => problems.push(e),
            }
        }
        if problems.is_empty() {
            Ok(Patterns(globs))
        } else {
            Err(problems)
        }
    }

    /// Whether any pattern matches `unit`.
    pub fn matches(&self, unit: &str) -> bool {
        self.0.iter().any(|g| g.matches(unit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Glob::new(p).unwrap().matches(s)
    }

    #[test]
    fn stars_and_question_marks() {
        assert!(m("*.service", "nginx.service"));
        assert!(m("*.service", ".service"));
        assert!(!m("*.service", "nginx.socket"));
        assert!(m("ng*x*.service", "nginx-proxy.service"));
        assert!(m("getty@tty?.service", "getty@tty1.service"));
        assert!(!m("getty@tty?.service", "getty@tty12.service"));
        assert!(m("*", ""));
        assert!(m("a**b", "ab"));
        assert!(!m("a*b", "abc"));
        assert!(m("*a*a*a*", "banana-a"));
    }

    #[test]
    fn classes_and_escapes() {
        assert!(m("tty[0-9].service", "tty7.service"));
        assert!(!m("tty[0-9].service", "ttyA.service"));
        assert!(m("tty[!0-9].service", "ttyA.service"));
        assert!(m("[]]x", "]x"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("[a-]x", "-x"));
    }

    #[test]
    fn bad_patterns_are_reported_together() {
        let err =
            Patterns::new(&["ok*".into(), "bad[".into(), "trail\\".into(), "".into()]).unwrap_err();
        assert_eq!(err.len(), 3, "{err:?}");
        let p = Patterns::new(&["a*".into(), "b.service".into()]).unwrap();
        assert!(p.matches("abc") && p.matches("b.service") && !p.matches("c.service"));
    }
}
