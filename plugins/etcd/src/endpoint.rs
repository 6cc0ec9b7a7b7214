//! A configured etcd client URL, split into the parts events carry.

use ureq::http::Uri;

/// One etcd client URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL as configured, without a trailing `/`.
    pub url: String,
    /// Host name or address (`server.address`).
    pub host: String,
    /// Port (`server.port`), the scheme's default when the URL has none.
    pub port: u16,
}

impl Endpoint {
    /// Parses an `http://` or `https://` URL with a host.
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        let url = text.trim().trim_end_matches('/');
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("{text:?} is not a URL: {e}"))?;
        let default_port = match uri.scheme_str() {
            Some("http") => 80,
            Some("https") => 443,
            _ => return Err(format!("{text:?} must start with http:// or https://")),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("{text:?} has no host"))?;
        if uri.path() != "/" && !uri.path().is_empty() {
            return Err(format!(
                "{text:?} must not have a path (the collector adds /health and /metrics)"
            ));
        }
        Ok(Endpoint {
            url: url.to_owned(),
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: uri.port_u16().unwrap_or(default_port),
        })
    }

    /// The URL of `path` (which starts with `/`) on this endpoint.
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_and_ports() {
        let e = Endpoint::parse("http://127.0.0.1:2379/").unwrap();
        assert_eq!(
            (e.url.as_str(), e.host.as_str(), e.port),
            ("http://127.0.0.1:2379", "127.0.0.1", 2379)
        );
        let e = Endpoint::parse("https://[::1]").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 443));
        assert_eq!(e.join("/health"), "https://[::1]/health");
    }

    #[test]
    fn rejects_other_schemes_paths_and_garbage() {
        assert!(Endpoint::parse("unix:///run/etcd.sock").is_err());
        assert!(Endpoint::parse("127.0.0.1:2379").is_err());
        assert!(Endpoint::parse("http://h:1/v3").is_err());
        assert!(Endpoint::parse("http://").is_err());
    }
}
