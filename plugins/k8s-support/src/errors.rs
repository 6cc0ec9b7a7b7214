//! Error text for health reasons and logs.

/// `error` and every `source()` below it, joined with `": "` (health reasons must say why,
/// not just what).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot list pods")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn joins_sources() {
        let e = Outer(std::io::Error::other("connection refused"));
        assert_eq!(error_chain(&e), "cannot list pods: connection refused");
    }
}
