//! A minimal HTTP/1.1 GET, for `nevil tree` reading a running robot's `/tree`.

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// Why a GET failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not `http://HOST:PORT[/PATH]`.
    #[error("{url}: not a URL like http://127.0.0.1:9464/tree ({why})")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Connecting, sending or receiving failed.
    #[error("{url}: {source}")]
    Io {
        /// The URL given.
        url: String,
        /// What failed.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No answer within the timeout.
    #[error("{url}: no answer within {0:?}", .timeout)]
    Timeout {
        /// The URL given.
        url: String,
        /// How long it waited.
        timeout: Duration,
    },
}

/// `base` with `/tree` appended unless it names a path already.
pub fn tree_url(base: &str) -> String {
    let rest = base.strip_prefix("http://").unwrap_or(base);
    if rest.contains('/') && !rest.ends_with('/') {
        base.to_string()
    } else {
        format!("{}/tree", base.trim_end_matches('/'))
    }
}

/// GETs `url` (plain http only) and returns the status code and the body as text.
///
/// # Errors
///
/// [`ClientError`] naming the URL.
pub async fn get(url: &str, timeout: Duration) -> Result<(u16, String), ClientError> {
    let bad = |why| ClientError::Url {
        url: url.to_string(),
        why,
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("only http:// is served"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(bad("no host"));
    }
    let io = |source: Box<dyn std::error::Error + Send + Sync>| ClientError::Io {
        url: url.to_string(),
        source,
    };
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(authority)
            .await
            .map_err(|e| io(e.into()))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| io(e.into()))?;
        tokio::spawn(connection);
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, authority)
            .body(Empty::<Bytes>::new())
            .map_err(|e| io(e.into()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| io(e.into()))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| io(e.into()))?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ClientError::Timeout {
            url: url.to_string(),
            timeout,
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_url_appends_the_path_to_a_base() {
        assert_eq!(
            tree_url("http://127.0.0.1:9464"),
            "http://127.0.0.1:9464/tree"
        );
        assert_eq!(
            tree_url("http://127.0.0.1:9464/"),
            "http://127.0.0.1:9464/tree"
        );
        assert_eq!(tree_url("http://h:1/tree"), "http://h:1/tree");
    }

    #[tokio::test]
    async fn bad_urls_are_named() {
        let e = get("https://x:1/", Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(e.to_string().starts_with("https://x:1/: not a URL"), "{e}");
        let e = get("http:///tree", Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no host"), "{e}");
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_error_naming_the_url() {
        // Bind then drop: the port is very likely closed right after.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/tree");
        let e = get(&url, Duration::from_secs(5)).await.unwrap_err();
        assert!(e.to_string().starts_with(&url), "{e}");
    }
}
