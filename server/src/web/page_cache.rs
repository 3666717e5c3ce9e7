//! The overview's rendered page, kept for a moment.
//!
//! The overview is the page a team keeps open and reloads, and its data
//! comes from caches already (see [`crate::control::freshness`]); what a
//! view still cost was Leptos rendering the same views into the same HTML.
//! Here the HTML of `GET /` is kept per person and reused while all of
//! these hold:
//!
//! - the [`Stamp`] it was rendered under is still the store's: any sync
//!   write, and any audited change (a lock, an operation's step, an account
//!   change, a sign-in), renders the page anew, on this instance and, within
//!   the freshness window, on others;
//! - its render started less than [`TTL`] ago, so relative times ("5 min
//!   ago") are never more than a second behind;
//! - it was a plain `200` without a `Set-Cookie`.
//!
//! Requests that come while the page is being rendered wait for that render
//! rather than start their own.
//!
//! A change made through this process (any request but GET, HEAD and
//! OPTIONS, see [`super::context::changes_refresh_the_stamp`], and the
//! sync) makes the next request read the stamp anew.
//!
//! Two values must differ on every response and are put in fresh on each
//! reuse: the nonce of the hydration scripts (in the body and the
//! Content-Security-Policy header) and the one-click rollback's
//! Idempotency-Key, so two page views never share an operation.

use super::{AppState, Caller};
use crate::control::freshness::Stamp;
use crate::identity::random_id;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// The longest a rendered page is reused.
pub const TTL: Duration = Duration::from_secs(1);

/// Past this many kept pages the cache starts over.
const CAPACITY: usize = 256;

/// The largest page kept; a bigger one is sent and not kept.
const MAX_PAGE: usize = 2 * 1024 * 1024;

/// Who the page was rendered for, and under which stamp.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    account: String,
    role: &'static str,
    stamp: Stamp,
}

/// The kept pages; cheap to clone.
#[derive(Clone, Default)]
pub struct PageCache {
    /// Each key's page, with when its render started. Requests for a key
    /// whose page is being rendered wait for that render instead of
    /// starting their own: when a page expires under load, one request
    /// renders it, not every open connection at once.
    pages: Arc<Mutex<HashMap<Key, (Instant, Render)>>>,
    counts: Arc<Counts>,
}

/// A page being rendered, then kept (or `None`: that render could not be
/// kept, and each request renders its own until [`TTL`] has passed).
type Render = Arc<OnceCell<Option<Arc<Kept>>>>;

/// How often a page was reused, and rendered, for `/metrics`.
#[derive(Default)]
struct Counts {
    hits: AtomicU64,
    misses: AtomicU64,
}

/// One kept page.
struct Kept {
    headers: HeaderMap,
    /// The nonce the page was rendered with, as it appears in `headers`.
    nonce: String,
    page: Template,
}

impl PageCache {
    /// The render of `key`'s page: the one started less than [`TTL`] ago,
    /// or a new one.
    fn render(&self, key: &Key) -> Render {
        let mut pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((started, render)) = pages.get(key)
            && started.elapsed() < TTL
        {
            return render.clone();
        }
        // Pages of older stamps and expired ones are never used again.
        pages.retain(|k, (started, _)| k.stamp == key.stamp && started.elapsed() < TTL);
        if pages.len() >= CAPACITY {
            pages.clear();
        }
        let render = Render::default();
        pages.insert(key.clone(), (Instant::now(), render.clone()));
        render
    }

    /// The counters as Prometheus text.
    pub fn render_counters(&self, out: &mut String) {
        out.push_str("# HELP flightdeck_page_cache_total Overview views served from a kept page (hit) or rendered (miss).\n");
        out.push_str("# TYPE flightdeck_page_cache_total counter\n");
        for (outcome, count) in [("hit", &self.counts.hits), ("miss", &self.counts.misses)] {
            let _ = writeln!(
                out,
                "flightdeck_page_cache_total{{outcome=\"{outcome}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
    }
}

/// Serves `GET /` for a signed-in person from the cache, or renders it and
/// keeps it. Every other request passes through.
pub(crate) async fn overview(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some((account, role)) = cacheable_for(&request) else {
        return next.run(request).await;
    };
    let Ok(stamp) = state.control.freshness().stamp().await else {
        return next.run(request).await;
    };
    let key = Key {
        account,
        role,
        stamp,
    };
    let shared = state.pages.render(&key);
    // The first request renders; those that come while it does wait for
    // its page.
    let mut pending = Some((request, next));
    let mut rendered = None;
    let kept = {
        let (pending, rendered) = (&mut pending, &mut rendered);
        shared
            .get_or_init(move || async move {
                let (request, next) = pending.take().expect("only the first caller renders");
                let (response, kept) = render(request, next).await;
                *rendered = Some(response);
                kept
            })
            .await
            .clone()
    };
    let counts = &state.pages.counts;
    if let Some(response) = rendered {
        counts.misses.fetch_add(1, Ordering::Relaxed);
        return response;
    }
    if let Some(kept) = kept {
        counts.hits.fetch_add(1, Ordering::Relaxed);
        return kept.respond();
    }
    counts.misses.fetch_add(1, Ordering::Relaxed);
    let (request, next) = pending.expect("a waiting request still has its own");
    next.run(request).await
}

/// Renders the page, and keeps it if it is a plain `200`.
async fn render(request: Request, next: Next) -> (Response, Option<Arc<Kept>>) {
    let response = next.run(request).await;
    if response.status() != StatusCode::OK || response.headers().contains_key(header::SET_COOKIE) {
        return (response, None);
    }
    let (parts, body) = response.into_parts();
    let body = match to_bytes(body, MAX_PAGE).await {
        Ok(body) => body,
        // Too big to keep (or the render failed half-way): nothing was
        // sent yet, so say so rather than send half a page.
        Err(error) => {
            tracing::error!(%error, "could not read the rendered overview");
            return (StatusCode::INTERNAL_SERVER_ERROR.into_response(), None);
        }
    };
    let kept = Kept::new(&parts.headers, &body).map(Arc::new);
    (Response::from_parts(parts, Body::from(body)), kept)
}

/// Whose page a request asks for, if the cache may answer it.
fn cacheable_for(request: &Request) -> Option<(String, &'static str)> {
    if request.method() != Method::GET || request.uri() != "/" {
        return None;
    }
    let actor = request.extensions().get::<Caller>()?.actor.as_ref()?;
    (actor.kind == crate::audit::ActorKind::User).then(|| (actor.id.clone(), actor.role.as_str()))
}

impl Kept {
    /// Keeps a rendered page, if it is HTML sent under a nonce.
    fn new(headers: &HeaderMap, body: &Bytes) -> Option<Kept> {
        let policy = headers
            .get(header::CONTENT_SECURITY_POLICY)?
            .to_str()
            .ok()?;
        let nonce = nonce_of(policy)?.to_owned();
        let html = std::str::from_utf8(body).ok()?;
        let mut headers = headers.clone();
        headers.remove(header::CONTENT_LENGTH);
        Some(Kept {
            page: Template::cut(html, &nonce),
            headers,
            nonce,
        })
    }

    /// The kept page with a fresh nonce and fresh Idempotency-Keys.
    fn respond(&self) -> Response {
        let nonce = random_id();
        let mut headers = self.headers.clone();
        if let Some(policy) = headers
            .get(header::CONTENT_SECURITY_POLICY)
            .and_then(|v| v.to_str().ok())
            .map(|policy| policy.replace(&self.nonce, &nonce))
            .and_then(|policy| HeaderValue::from_str(&policy).ok())
        {
            headers.insert(header::CONTENT_SECURITY_POLICY, policy);
        }
        let mut response = Response::new(Body::from(self.page.fill(&nonce, random_id)));
        *response.headers_mut() = headers;
        response
    }
}

/// The nonce in a Content-Security-Policy's `'nonce-…'` source.
pub(super) fn nonce_of(policy: &str) -> Option<&str> {
    let start = policy.find("'nonce-")? + "'nonce-".len();
    let len = policy[start..].find('\'')?;
    Some(&policy[start..start + len]).filter(|n| !n.is_empty())
}

/// A page cut where its per-response values go: `text[0]`, a slot,
/// `text[1]`, a slot, …, `text[n]`.
#[derive(Debug, PartialEq, Eq)]
struct Template {
    text: Vec<String>,
    slots: Vec<Slot>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Nonce,
    IdempotencyKey,
}

impl Template {
    /// Cuts `html` at every occurrence of `nonce` and at the value of every
    /// Idempotency-Key field (see [`app::api::IDEMPOTENCY_FIELD`]).
    fn cut(html: &str, nonce: &str) -> Template {
        let field = format!("name=\"{}\" value=\"", app::api::IDEMPOTENCY_FIELD);
        let mut cuts: Vec<(usize, usize, Slot)> = html
            .match_indices(nonce)
            .map(|(at, _)| (at, at + nonce.len(), Slot::Nonce))
            .collect();
        for (at, _) in html.match_indices(&field) {
            let start = at + field.len();
            if let Some(len) = html[start..].find('"') {
                cuts.push((start, start + len, Slot::IdempotencyKey));
            }
        }
        cuts.sort_by_key(|&(start, _, _)| start);
        let mut text = Vec::with_capacity(cuts.len() + 1);
        let mut slots = Vec::with_capacity(cuts.len());
        let mut from = 0;
        for (start, end, slot) in cuts {
            if start < from {
                continue;
            }
            text.push(html[from..start].to_owned());
            slots.push(slot);
            from = end;
        }
        text.push(html[from..].to_owned());
        Template { text, slots }
    }

    /// The page with `nonce` in every nonce slot and a value of
    /// `idempotency_key` in each key slot.
    fn fill(&self, nonce: &str, mut idempotency_key: impl FnMut() -> String) -> String {
        let size = self.text.iter().map(String::len).sum::<usize>() + 40 * self.slots.len();
        let mut page = String::with_capacity(size);
        for (text, slot) in self.text.iter().zip(&self.slots) {
            page.push_str(text);
            match slot {
                Slot::Nonce => page.push_str(nonce),
                Slot::IdempotencyKey => page.push_str(&idempotency_key()),
            }
        }
        page.push_str(self.text.last().map(String::as_str).unwrap_or_default());
        page
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<html><head><script nonce="N0NCE">go()</script><link nonce="N0NCE"></head><body><form><input type="hidden" name="idempotency_key" value="k1"/></form><p>N0NC</p><form><input type="hidden" name="idempotency_key" value="k2"/></form></body></html>"#;

    #[test]
    fn a_page_is_cut_at_its_nonces_and_keys_and_filled_with_new_ones() {
        let template = Template::cut(PAGE, "N0NCE");
        assert_eq!(
            template.slots,
            [
                Slot::Nonce,
                Slot::Nonce,
                Slot::IdempotencyKey,
                Slot::IdempotencyKey
            ]
        );
        // Filled with the old values, it is the page it was cut from.
        let mut old = ["k1", "k2"].into_iter().map(str::to_owned);
        assert_eq!(template.fill("N0NCE", || old.next().unwrap()), PAGE);
        let mut n = 0;
        let filled = template.fill("fresh", || {
            n += 1;
            format!("key{n}")
        });
        assert_eq!(
            filled,
            PAGE.replace("N0NCE", "fresh")
                .replace("\"k1\"", "\"key1\"")
                .replace("\"k2\"", "\"key2\"")
        );
    }

    #[test]
    fn a_page_without_slots_is_kept_whole() {
        let template = Template::cut("<p>nothing to replace</p>", "N0NCE");
        assert!(template.slots.is_empty());
        assert_eq!(
            template.fill("x", || unreachable!()),
            "<p>nothing to replace</p>"
        );
    }

    #[test]
    fn the_nonce_is_read_from_the_policy() {
        let policy = "default-src 'self'; script-src 'nonce-abc123' 'wasm-unsafe-eval'";
        assert_eq!(nonce_of(policy), Some("abc123"));
        assert_eq!(nonce_of("script-src 'self'"), None);
        assert_eq!(nonce_of("script-src 'nonce-'"), None);
    }

    #[test]
    fn kept_pages_expire_and_belong_to_one_person_and_stamp() {
        let cache = PageCache::default();
        let stamp = Stamp { audit: 1, data: 1 };
        let key = |account: &str, stamp| Key {
            account: account.to_owned(),
            role: "viewer",
            stamp,
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("script-src 'nonce-N0NCE'"),
        );
        let kept = || {
            Some(Arc::new(
                Kept::new(&headers, &Bytes::from_static(PAGE.as_bytes())).unwrap(),
            ))
        };
        assert!(cache.render(&key("1", stamp)).set(kept()).is_ok());
        assert!(cache.render(&key("1", stamp)).get().is_some());
        assert!(cache.render(&key("2", stamp)).get().is_none());
        let newer = Stamp { audit: 2, data: 1 };
        assert!(cache.render(&key("1", newer)).get().is_none());
        // A newer stamp's render dropped the older stamp's pages.
        assert!(cache.render(&key("1", stamp)).get().is_none());
        // A render started longer than the TTL ago is not used.
        assert!(cache.render(&key("3", newer)).set(kept()).is_ok());
        cache
            .pages
            .lock()
            .unwrap()
            .get_mut(&key("3", newer))
            .unwrap()
            .0 = Instant::now() - TTL;
        assert!(cache.render(&key("3", newer)).get().is_none());
    }

    #[tokio::test]
    async fn a_reused_page_gets_a_new_nonce_in_header_and_body() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("script-src 'nonce-N0NCE'"),
        );
        let kept = Kept::new(&headers, &Bytes::from_static(PAGE.as_bytes())).unwrap();
        let response = kept.respond();
        let policy = response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        let nonce = nonce_of(&policy).unwrap().to_owned();
        assert_ne!(nonce, "N0NCE");
        let body = to_bytes(response.into_body(), MAX_PAGE).await.unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert_eq!(body.matches(&nonce).count(), 2);
        assert!(!body.contains("N0NCE"));
        assert!(!body.contains("\"k1\"") && !body.contains("\"k2\""));
    }
}
