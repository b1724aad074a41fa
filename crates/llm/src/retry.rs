//! Attempts with exponential backoff, honouring `Retry-After`.

use crate::LlmError;
use groundwork_core::LlmLimits;
use std::time::{Duration, SystemTime};

/// One failed attempt, and how long the server asked us to wait before the next.
pub(crate) struct Failure {
    pub error: LlmError,
    pub retry_after: Option<Duration>,
}

impl From<LlmError> for Failure {
    fn from(error: LlmError) -> Failure {
        Failure {
            error,
            retry_after: None,
        }
    }
}

/// Base of the exponential backoff, and its cap.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// Runs `attempt` until it succeeds, fails for good, or retries run out. Returns the value and
/// the number of attempts made.
pub(crate) fn with_retries<T>(
    limits: &LlmLimits,
    mut attempt: impl FnMut() -> Result<T, Failure>,
) -> Result<(T, u32), LlmError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let failure = match attempt() {
            Ok(value) => return Ok((value, attempts)),
            Err(failure) => failure,
        };
        if !failure.error.retryable() || attempts > limits.max_retries {
            return Err(failure.error);
        }
        let wait = match failure.retry_after {
            Some(asked) if asked > Duration::from_secs(limits.max_retry_after_secs) => {
                return Err(failure.error);
            }
            Some(asked) => asked,
            None => backoff(attempts),
        };
        std::thread::sleep(wait);
    }
}

/// [`with_retries`] for a streamed chat answer: `attempt` sets its flag once it has handed text
/// to the caller, after which a failure is `Interrupted` and never retried (delivered text cannot
/// be taken back). Returns the response with its attempt count.
pub(crate) fn chat_with_retries(
    limits: &LlmLimits,
    mut attempt: impl FnMut(&mut bool) -> Result<crate::ChatResponse, Failure>,
) -> Result<crate::ChatResponse, LlmError> {
    let mut streamed_any = false;
    let (mut response, attempts) = with_retries(limits, || {
        attempt(&mut streamed_any).map_err(|failure| {
            if streamed_any {
                Failure::from(LlmError::Interrupted(failure.error.to_string()))
            } else {
                failure
            }
        })
    })?;
    response.attempts = attempts;
    Ok(response)
}

/// 250 ms, 500 ms, 1 s, … up to 8 s, plus up to 20% jitter so that many clients refused at
/// once do not return at once.
fn backoff(attempt: u32) -> Duration {
    let base = FIRST_BACKOFF
        .saturating_mul(1 << attempt.saturating_sub(1).min(10))
        .min(MAX_BACKOFF);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    base + base.mul_f64(f64::from(nanos % 1000) / 5000.0)
}

/// `Retry-After` as seconds (`120`) or an HTTP date; `None` when absent or unreadable.
pub(crate) fn parse_retry_after(value: Option<&reqwest::header::HeaderValue>) -> Option<Duration> {
    let text = value?.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::from_secs_f64(seconds.min(86_400.0)));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(
            parse_retry_after(Some(&HeaderValue::from_static("2"))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            parse_retry_after(Some(&HeaderValue::from_static("0.5"))),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_retry_after(Some(&HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"))),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after(Some(&HeaderValue::from_static("soon"))), None);
        assert_eq!(parse_retry_after(Some(&HeaderValue::from_static("-3"))), None);
        assert_eq!(parse_retry_after(None), None);
    }

    #[test]
    fn retries_stop_at_the_limit_and_on_permanent_errors() {
        let limits = LlmLimits {
            max_retries: 2,
            ..LlmLimits::default()
        };
        let mut calls = 0;
        let result: Result<((), u32), _> = with_retries(&limits, || {
            calls += 1;
            Err(Failure {
                error: LlmError::RateLimited,
                retry_after: Some(Duration::ZERO),
            })
        });
        assert!(matches!(result, Err(LlmError::RateLimited)));
        assert_eq!(calls, 3);

        let mut calls = 0;
        let result: Result<((), u32), _> = with_retries(&limits, || {
            calls += 1;
            Err(LlmError::Http {
                status: 400,
                excerpt: String::new(),
            }
            .into())
        });
        assert!(result.is_err());
        assert_eq!(calls, 1);

        // A Retry-After longer than the limit gives up at once instead of hanging.
        let mut calls = 0;
        let result: Result<((), u32), _> = with_retries(&limits, || {
            calls += 1;
            Err(Failure {
                error: LlmError::RateLimited,
                retry_after: Some(Duration::from_secs(3600)),
            })
        });
        assert!(result.is_err());
        assert_eq!(calls, 1);
    }
}
