//! A minimal HTTP/1.1 GET, for `nevil tree` reading a running robot's `/tree`.

use std::time::Duration;

use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
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
    /// The answer's body is larger than [`MAX_BODY`]: not a tree document, and reading
    /// on would only fill the memory.
    #[error("{url}: answer larger than {limit} bytes")]
    TooLarge {
        /// The URL given.
        url: String,
        /// The most it reads.
        limit: usize,
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

/// The largest body [`get`] reads: a `/tree` document holds under a kilobyte per
/// actor, so this is tens of thousands of actors. A server that sends more (hostile or
/// broken) gets an error, not all of the memory.
pub const MAX_BODY: usize = 16 << 20;

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
/// [`ClientError`] naming the URL; [`ClientError::TooLarge`] for a body over
/// [`MAX_BODY`].
pub async fn get(url: &str, timeout: Duration) -> Result<(u16, String), ClientError> {
    get_limited(url, timeout, MAX_BODY).await
}

async fn get_limited(
    url: &str,
    timeout: Duration,
    limit: usize,
) -> Result<(u16, String), ClientError> {
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
        let body = Limited::new(response.into_body(), limit)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<LengthLimitError>() {
                    ClientError::TooLarge {
                        url: url.to_string(),
                        limit,
                    }
                } else {
                    io(e)
                }
            })?
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

    /// Found reviewing `nevil tree`'s input for fuzzing: the body was collected whole,
    /// so a server streaming without end filled the memory.
    #[tokio::test]
    async fn a_body_over_the_limit_is_an_error_not_an_allocation() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/tree", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request).await.unwrap();
            let head = "HTTP/1.1 200 OK\r\ncontent-length: 4096\r\n\r\n";
            stream.write_all(head.as_bytes()).await.unwrap();
            // The client may hang up once it has had enough.
            let _ = stream.write_all(&[b' '; 4096]).await;
        });
        let e = get_limited(&url, Duration::from_secs(30), 1024)
            .await
            .unwrap_err();
        assert!(
            matches!(e, ClientError::TooLarge { limit: 1024, .. }),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            format!("{url}: answer larger than 1024 bytes")
        );
        server.await.unwrap();
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
