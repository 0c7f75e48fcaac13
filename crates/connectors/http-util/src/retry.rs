//! A retrying HTTP client: transient failures (connection errors, 429, 500/502/503/504, and
//! whatever the connector's own predicate adds) are retried with full-jitter exponential backoff,
//! honouring `Retry-After`, within a total time budget.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};

/// How requests are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryConfig {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Backoff ceiling of the first retry; doubles with each retry.
    pub base_backoff: Duration,
    /// Longest single wait (a longer `Retry-After` is still honoured within `retry_timeout`).
    pub max_backoff: Duration,
    /// Total time after which no further retry starts.
    pub retry_timeout: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 8,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            retry_timeout: Duration::from_secs(300),
        }
    }
}

impl RetryConfig {
    /// Waits of a few milliseconds, for tests.
    pub fn fast() -> Self {
        Self {
            max_retries: 5,
            base_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            retry_timeout: Duration::from_secs(10),
        }
    }

    /// The wait before retry number `retry` (0-based): uniformly random in
    /// `[0, min(max_backoff, base * 2^retry)]`, or `retry_after` when the server named one.
    pub fn backoff(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait;
        }
        let ceiling = self
            .base_backoff
            .saturating_mul(2u32.saturating_pow(retry.min(20)))
            .min(self.max_backoff);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=millis))
    }
}

/// Parses `Retry-After` as delta-seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// Whether a status is transient on any HTTP API.
pub fn is_transient_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// A fully read response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl HttpResponse {
    /// The body as text, lossily, cut to `limit` characters (for error messages).
    pub fn body_excerpt(&self, limit: usize) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(limit)
            .collect()
    }
}

/// A transport failure that outlived its retries.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// A streamed response body broke off (see [`HttpClient::send_streaming`]); it is not
    /// retried, since part of it was already handed over.
    #[error("{what}: the response body broke off after {received} bytes: {message}")]
    Body {
        /// What was being requested.
        what: String,
        /// Body bytes received before the failure.
        received: u64,
        /// The failure.
        message: String,
    },
    /// The request could not be sent or its response read.
    #[error("{what}: request failed after {attempts} attempt(s): {message}")]
    Transport {
        /// What was being requested (never a URL with credentials).
        what: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        message: String,
    },
    /// The client could not be built.
    #[error("http client: {0}")]
    Client(String),
}

/// A `reqwest` client with a retry policy.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    retry: RetryConfig,
}

impl HttpClient {
    /// A client with connection pooling and the given retry policy.
    pub fn new(retry: RetryConfig) -> Result<Self, HttpError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|error| HttpError::Client(error.to_string()))?;
        Ok(Self { client, retry })
    }

    /// The underlying client, to build requests.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The retry policy.
    pub fn retry_config(&self) -> &RetryConfig {
        &self.retry
    }

    /// Sends the request `build` makes, retrying transport errors, transient statuses and
    /// responses `retryable` accepts. The last response is returned whatever its status, so
    /// the caller maps API errors; only a transport failure on every attempt is an error.
    /// `what` names the call in errors and logs.
    pub async fn send<B, R>(
        &self,
        what: &str,
        build: B,
        retryable: R,
    ) -> Result<HttpResponse, HttpError>
    where
        B: Fn(&reqwest::Client) -> RequestBuilder,
        R: Fn(&HttpResponse) -> bool,
    {
        match self
            .attempt_until_settled(what, build, retryable, false)
            .await?
        {
            Attempt::Read(response) => Ok(response),
            // Not produced when success bodies are read whole; reading it is still right.
            Attempt::Live(response) => HttpStream::live(what, response).collect().await,
        }
    }
}

/// A response whose body is read a piece at a time ([`HttpClient::send_streaming`]), so a
/// large body never sits in memory whole. A successful answer's body is still on the wire;
/// any other answer was read whole (error bodies are small) to decide on retries.
#[derive(Debug)]
pub struct HttpStream {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    what: String,
    body: StreamBody,
    received: u64,
}

#[derive(Debug)]
enum StreamBody {
    Live(reqwest::Response),
    Read(Option<Bytes>),
}

impl HttpStream {
    fn live(what: &str, response: reqwest::Response) -> Self {
        Self {
            status: response.status(),
            headers: response.headers().clone(),
            what: what.to_owned(),
            body: StreamBody::Live(response),
            received: 0,
        }
    }

    fn read(what: &str, response: HttpResponse) -> Self {
        Self {
            status: response.status,
            headers: response.headers,
            what: what.to_owned(),
            body: StreamBody::Read(Some(response.body).filter(|b| !b.is_empty())),
            received: 0,
        }
    }

    /// The next piece of the body as it arrives; `None` at its end.
    ///
    /// # Errors
    /// [`HttpError::Body`] when the connection fails before the body ends.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, HttpError> {
        let piece = match &mut self.body {
            StreamBody::Read(body) => body.take(),
            StreamBody::Live(response) => {
                response.chunk().await.map_err(|error| HttpError::Body {
                    what: self.what.clone(),
                    received: self.received,
                    message: failure_text(&error),
                })?
            }
        };
        if let Some(piece) = &piece {
            self.received += piece.len() as u64;
        }
        Ok(piece)
    }

    /// Body bytes handed out so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Reads the rest of the body into a [`HttpResponse`] (for error answers and small bodies).
    ///
    /// # Errors
    /// [`HttpError::Body`] when the connection fails before the body ends.
    pub async fn collect(mut self) -> Result<HttpResponse, HttpError> {
        let mut body = Vec::new();
        while let Some(piece) = self.chunk().await? {
            body.extend_from_slice(&piece);
        }
        Ok(HttpResponse {
            status: self.status,
            headers: self.headers,
            body: Bytes::from(body),
        })
    }
}

/// A settled attempt of [`HttpClient::send`] or [`HttpClient::send_streaming`]: a successful
/// answer with its body unread (streaming only), or an answer read whole.
enum Attempt {
    Live(reqwest::Response),
    Read(HttpResponse),
}

impl HttpClient {
    /// [`send`](Self::send) for large bodies: a successful (2xx) answer is returned as soon as
    /// its headers arrive, its body to be read with [`HttpStream::chunk`]. Connection failures,
    /// transient statuses and answers `retryable` accepts are retried as `send` does; only
    /// unsuccessful answers (whose bodies are read whole first) are shown to `retryable`. A
    /// body that breaks off after the answer was returned is the caller's to handle.
    pub async fn send_streaming<B, R>(
        &self,
        what: &str,
        build: B,
        retryable: R,
    ) -> Result<HttpStream, HttpError>
    where
        B: Fn(&reqwest::Client) -> RequestBuilder,
        R: Fn(&HttpResponse) -> bool,
    {
        Ok(
            match self
                .attempt_until_settled(what, build, retryable, true)
                .await?
            {
                Attempt::Live(response) => HttpStream::live(what, response),
                Attempt::Read(response) => HttpStream::read(what, response),
            },
        )
    }

    /// The retry loop of [`send`](Self::send) and [`send_streaming`](Self::send_streaming):
    /// sends until an answer is neither transient nor `retryable`, or the retry budget is
    /// spent. With `stream_success`, a 2xx answer is returned with its body unread; every
    /// other answer is read whole (to show it to `retryable`, and because a transport failure
    /// while reading it is retried like any other).
    async fn attempt_until_settled<B, R>(
        &self,
        what: &str,
        build: B,
        retryable: R,
        stream_success: bool,
    ) -> Result<Attempt, HttpError>
    where
        B: Fn(&reqwest::Client) -> RequestBuilder,
        R: Fn(&HttpResponse) -> bool,
    {
        let started = Instant::now();
        let mut retry = 0u32;
        loop {
            let outcome = match build(&self.client).send().await {
                Ok(response) if stream_success && response.status().is_success() => {
                    Ok(Attempt::Live(response))
                }
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    response.bytes().await.map(|body| {
                        Attempt::Read(HttpResponse {
                            status,
                            headers,
                            body,
                        })
                    })
                }
                Err(error) => Err(error),
            };
            let wait_hint = match &outcome {
                Ok(Attempt::Read(response))
                    if is_transient_status(response.status) || retryable(response) =>
                {
                    Some(retry_after(&response.headers))
                }
                Ok(_) => None,
                Err(_) => Some(None),
            };
            let Some(retry_after) = wait_hint else {
                return outcome.map_err(|error| transport(what, retry + 1, &error));
            };
            let wait = self.retry.backoff(retry, retry_after);
            if retry >= self.retry.max_retries
                || started.elapsed() + wait > self.retry.retry_timeout
            {
                return outcome.map_err(|error| transport(what, retry + 1, &error));
            }
            match &outcome {
                Ok(Attempt::Read(response)) => {
                    tracing::warn!(what, status = %response.status, retry, ?wait, "transient http answer, retrying")
                }
                Ok(Attempt::Live(_)) => {}
                Err(error) => {
                    tracing::warn!(what, error = %failure_text(error), retry, ?wait, "http request failed, retrying")
                }
            }
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }
}

fn transport(what: &str, attempts: u32, error: &reqwest::Error) -> HttpError {
    HttpError::Transport {
        what: what.to_owned(),
        attempts,
        message: failure_text(error),
    }
}

/// Only the kind and the causes: reqwest's own text carries the URL, whose query string may
/// hold a token or a SOQL filter value.
fn failure_text(error: &reqwest::Error) -> String {
    let mut parts = vec![if error.is_connect() {
        "connection failed".to_owned()
    } else if error.is_timeout() {
        "timed out".to_owned()
    } else {
        "transport error".to_owned()
    }];
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_and_honours_retry_after() {
        let config = RetryConfig {
            max_retries: 3,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(250),
            retry_timeout: Duration::from_secs(1),
        };
        for retry in 0..40 {
            assert!(config.backoff(retry, None) <= Duration::from_millis(250));
        }
        assert_eq!(
            config.backoff(0, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
    }

    #[test]
    fn parses_retry_after_forms() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[tokio::test]
    async fn retries_transient_answers_then_gives_the_last_one_back() {
        use sluice_fake_salesforce::{FakeSalesforce, Fault};
        let fake = FakeSalesforce::start(0).await.unwrap();
        let token = fake.issue_access_token();
        let url = format!("{}/services/data/v58.0/sobjects", fake.url());
        fake.inject([
            Fault::Unavailable {
                retry_after: Some(0),
            },
            Fault::RequestLimitExceeded,
        ]);
        let client = HttpClient::new(RetryConfig::fast()).unwrap();
        let limit_exceeded = |r: &HttpResponse| {
            r.status == StatusCode::FORBIDDEN
                && r.body_excerpt(500).contains("REQUEST_LIMIT_EXCEEDED")
        };
        let ok = client
            .send("list", |c| c.get(&url).bearer_auth(&token), limit_exceeded)
            .await
            .unwrap();
        assert_eq!(ok.status, StatusCode::OK);
        assert_eq!(fake.stats().faults_served, 2);

        // Without the predicate a 403 is final; past the retry budget the 503 is returned.
        fake.inject([Fault::RequestLimitExceeded]);
        let refused = client
            .send("list", |c| c.get(&url).bearer_auth(&token), |_| false)
            .await
            .unwrap();
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        fake.inject([Fault::Unavailable { retry_after: None }; 10]);
        let gave_up = client
            .send("list", |c| c.get(&url).bearer_auth(&token), |_| false)
            .await
            .unwrap();
        assert_eq!(gave_up.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(fake.stats().faults_served, 2 + 1 + 6);

        let closed = HttpClient::new(RetryConfig {
            max_retries: 1,
            ..RetryConfig::fast()
        })
        .unwrap();
        let error = closed
            .send(
                "probe",
                |c| c.get("http://127.0.0.1:9/x?token=secret"),
                |_| false,
            )
            .await
            .unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with("probe: request failed after 2 attempt(s)"),
            "{text}"
        );
        assert!(!text.contains("secret"), "{text}");
    }

    #[tokio::test]
    async fn streaming_sends_retry_the_first_answer_and_hand_the_body_over_in_pieces() {
        use sluice_fake_salesforce::{FakeSalesforce, Fault};
        let fake = FakeSalesforce::start(0).await.unwrap();
        let token = fake.issue_access_token();
        let url = format!(
            "{}/services/data/v58.0/sobjects/Account/describe",
            fake.url()
        );
        let client = HttpClient::new(RetryConfig::fast()).unwrap();
        let whole = client
            .send("describe", |c| c.get(&url).bearer_auth(&token), |_| false)
            .await
            .unwrap();
        fake.inject([
            Fault::Unavailable {
                retry_after: Some(0),
            },
            Fault::RequestLimitExceeded,
        ]);
        let limit_exceeded = |r: &HttpResponse| r.body_excerpt(500).contains("REQUEST_LIMIT");
        let mut stream = client
            .send_streaming(
                "describe",
                |c| c.get(&url).bearer_auth(&token),
                limit_exceeded,
            )
            .await
            .unwrap();
        assert_eq!(stream.status, StatusCode::OK);
        assert_eq!(fake.stats().faults_served, 2);
        let mut body = Vec::new();
        while let Some(piece) = stream.chunk().await.unwrap() {
            body.extend_from_slice(&piece);
        }
        assert_eq!(body, whole.body);
        assert_eq!(stream.received(), body.len() as u64);
        assert!(
            stream.chunk().await.unwrap().is_none(),
            "the end stays the end"
        );

        // An unsuccessful final answer comes back read, for the caller's error mapping.
        let refused = client
            .send_streaming("describe", |c| c.get(&url).bearer_auth("stale"), |_| false)
            .await
            .unwrap();
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        let refused = refused.collect().await.unwrap();
        assert!(refused.body_excerpt(500).contains("INVALID_SESSION_ID"));
        fake.inject([Fault::Unavailable { retry_after: None }; 10]);
        let gave_up = client
            .send_streaming("describe", |c| c.get(&url).bearer_auth(&token), |_| false)
            .await
            .unwrap();
        assert_eq!(gave_up.status, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn a_body_that_breaks_off_is_an_error_naming_the_bytes_received() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await.unwrap();
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789")
                .await
                .unwrap();
            socket.shutdown().await.unwrap();
        });
        let client = HttpClient::new(RetryConfig::fast()).unwrap();
        let url = format!("http://{address}/results?token=secret");
        let mut stream = client
            .send_streaming("results", |c| c.get(&url), |_| false)
            .await
            .unwrap();
        let mut body = Vec::new();
        let error = loop {
            match stream.chunk().await {
                Ok(Some(piece)) => body.extend_from_slice(&piece),
                Ok(None) => panic!("a short body ended without an error"),
                Err(error) => break error,
            }
        };
        assert_eq!(body, b"0123456789");
        let text = error.to_string();
        assert!(
            text.starts_with("results: the response body broke off after 10 bytes"),
            "{text}"
        );
        assert!(!text.contains("secret"), "{text}");
        server.await.unwrap();
    }
}
