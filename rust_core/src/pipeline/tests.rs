use super::*;
use crate::bots::BotLists;
use crate::hit::Headers;
use crate::session::SessionStore;
use crate::ua::UaRules;
use crate::validate::{Checker, Source, TimeWindow};
use crate::wal::StorageConfig;
use serde_json::json;

const NOW: i64 = 1_795_168_800_000; // 2026-11-20T10:00:00Z
const HUMAN: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

fn engine(dir: &std::path::Path) -> Engine {
    let lists = BotLists {
        ua_keywords: vec!["bot".into()],
        spam_hosts: vec!["spam.example".into()],
        ip_blocks: vec!["203.0.113.0/24".into()],
        ..BotLists::default()
    };
    Engine {
        ua: UaParser::new(&UaRules::default(), 0).expect("ua"),
        bots: BotFilter::new(&lists).expect("bots"),
        geo: Geo::disabled(),
        sessions: SessionStore::open(dir, 1 << 24).expect("sessions").into(),
        storage: Storage::open(StorageConfig {
            data_dir: dir.to_path_buf(),
            worker_id: 0,
            fsync_interval_ms: 1000,
            strict: false,
            seal_interval_ms: 3_600_000,
            seal_rows: 1_000_000,
            idle_release_ms: 0,
        })
        .expect("storage"),
        trusted: TrustedProxies::default(),
        page_view_cap: 200,
        drops: Default::default(),
        rules: Default::default(),
    }
}

fn site() -> SiteCtx {
    SiteCtx {
        id: "site-a".into(),
        hostname: "example.com".into(),
    }
}

fn valid(kind: HitKind, source: Source, item: serde_json::Value) -> Vec<ValidHit> {
    let checker = Checker {
        source,
        batch: false,
        max_batch: 1,
        now: NOW,
        window: TimeWindow::default(),
    };
    let input = serde_json::from_value(item).expect("item");
    checker.check_all(kind, vec![input]).expect("valid")
}

/// The reason a hit was dropped, or None when it was accepted.
fn outcome(e: &Engine, kind: HitKind, origin: &Origin, item: serde_json::Value) -> Option<String> {
    let source = match origin {
        Origin::Api => Source::Api,
        Origin::Browser { .. } => Source::Browser,
    };
    let hits = valid(kind, source, item);
    let summary = e.ingest(&site(), kind, &hits, origin).expect("ingest");
    assert_eq!(summary.accepted + summary.dropped, 1);
    summary
        .reasons
        .keys()
        .next()
        .map(|r| r.as_str().to_string())
}

#[test]
fn steps_are_named_drop_or_put_and_run_in_order() {
    let names: Vec<&str> = STEPS.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        [
            "drop_by_site_rules",
            "put_user_agent",
            "drop_prefetch",
            "drop_bot_user_agent",
            "drop_referrer_spam",
            "drop_bot_browser",
            "drop_blocked_ip",
            "put_location",
            "drop_by_country",
            "put_dimensions",
            "put_tags",
            "put_event",
        ]
    );
}

#[test]
fn a_dropped_hit_carries_its_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = engine(dir.path());
    let hit = |n: u8, extra: serde_json::Value| {
        let mut v = json!({
            "url": "https://example.com/",
            "ip": format!("81.2.69.{n}"),
            "user_agent": HUMAN,
        });
        for (k, x) in extra.as_object().expect("object") {
            v[k] = x.clone();
        }
        v
    };
    let bot = "Mozilla/5.0 (compatible; Examplebot/1.0)";
    let cases = [
        ("a person", hit(1, json!({})), None),
        (
            "a bot",
            hit(2, json!({"user_agent": bot})),
            Some("ua_keyword"),
        ),
        (
            "a bot, filter off",
            hit(3, json!({"user_agent": bot, "disable_bot_filter": true})),
            None,
        ),
        (
            "an empty agent",
            hit(4, json!({"user_agent": ""})),
            Some("ua_empty"),
        ),
        (
            "referrer spam",
            hit(5, json!({"referrer": "https://spam.example/x"})),
            Some("referrer_spam"),
        ),
        (
            "a blocked IP",
            json!({"url": "https://example.com/", "ip": "203.0.113.9", "user_agent": HUMAN}),
            Some("ip_blocked"),
        ),
        (
            "another site's page",
            hit(6, json!({"url": "https://other.org/"})),
            Some("hostname_not_allowed"),
        ),
    ];
    for (label, item, want) in cases {
        let got = outcome(&e, HitKind::PageView, &Origin::Api, item);
        assert_eq!(got.as_deref(), want, "{label}");
    }
    let keep_alive = json!({"ip": "81.2.69.7", "user_agent": HUMAN});
    let got = outcome(&e, HitKind::KeepAlive, &Origin::Api, keep_alive);
    assert_eq!(got.as_deref(), Some("no_session"));

    let headers = Headers(vec![
        ("user-agent".into(), HUMAN.into()),
        ("x-purpose".into(), "preview".into()),
    ]);
    let browser = Origin::Browser {
        client: "81.2.69.8".parse().expect("ip"),
        headers: &headers,
    };
    let page = json!({"url": "https://example.com/", "user_agent": HUMAN});
    let got = outcome(&e, HitKind::PageView, &browser, page);
    assert_eq!(got.as_deref(), Some("header_prefetch"));

    let counted: BTreeMap<&str, u64> = e
        .drops
        .lock()
        .iter()
        .map(|(r, n)| (r.as_str(), *n))
        .collect();
    assert_eq!(counted.values().sum::<u64>(), 7);
    assert_eq!(counted["ua_keyword"], 1);
    e.storage.close().expect("close");
}

#[test]
fn site_filters_drop_with_the_filter_kind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = engine(dir.path());
    let filters = [("path".to_string(), "/admin/*".to_string())];
    let rules = crate::rules::build(1, &["example.com".into()], &filters).expect("rules");
    e.set_rules("site-a", rules);
    let item =
        json!({"url": "https://example.com/admin/x", "ip": "81.2.69.1", "user_agent": HUMAN});
    let got = outcome(&e, HitKind::PageView, &Origin::Api, item);
    assert_eq!(got.as_deref(), Some("filter_path"));
    e.storage.close().expect("close");
}

#[test]
fn an_event_gets_its_name_duration_and_metadata() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = engine(dir.path());
    let item = json!({
        "url": "https://example.com/p", "ip": "81.2.69.1", "user_agent": HUMAN,
        "event_name": "  signup ", "event_duration": "42.9",
        "tags": {"plan": "free", "n": 1}, "event_meta": {"plan": "pro"},
    });
    let hits = valid(HitKind::Event, Source::Api, item);
    let rules = e.rules_for(&site());
    let origin = Origin::Api;
    let p = e.prepare(Draft::new(
        &site(),
        &rules,
        HitKind::Event,
        &hits[0],
        &origin,
    ));
    assert_eq!(p.drop, None);
    assert_eq!(p.hit.event_name, "signup");
    assert_eq!(p.hit.event_duration, 42);
    assert_eq!(p.hit.event_meta_keys, ["n", "plan"]);
    assert_eq!(p.hit.event_meta_values, ["1", "pro"]);
    assert_eq!(p.hit.time, NOW);
    e.storage.close().expect("close");
}

#[test]
fn a_path_only_url_is_on_the_site_hostname() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = engine(dir.path());
    let prepared = |e: &Engine, item: serde_json::Value| {
        let hits = valid(HitKind::PageView, Source::Api, item);
        let rules = e.rules_for(&site());
        e.prepare(Draft::new(
            &site(),
            &rules,
            HitKind::PageView,
            &hits[0],
            &Origin::Api,
        ))
    };
    // What a server SDK sends from a handler: the request's path and query.
    let item = json!({"url": "/blog?x=1", "ip": "81.2.69.1", "user_agent": HUMAN,
                      "referrer": "/previous"});
    let p = prepared(&e, item.clone());
    assert_eq!(p.drop, None);
    assert_eq!(p.hit.dims.hostname, "example.com");
    assert_eq!(p.hit.request.hostname, "example.com");
    assert_eq!(
        (p.hit.path.as_str(), p.hit.request.path.as_str()),
        ("/blog", "/blog")
    );
    // The referrer is the site itself, as "https://example.com/previous" would be.
    assert_eq!(
        (
            p.hit.dims.referrer.as_str(),
            p.hit.dims.referrer_name.as_str()
        ),
        ("", "")
    );
    let absolute = json!({"url": "https://example.com/blog?x=1", "ip": "81.2.69.1",
                          "user_agent": HUMAN, "referrer": "https://example.com/previous"});
    let a = prepared(&e, absolute);
    assert_eq!(
        (
            &a.hit.dims.hostname,
            &a.hit.dims.referrer,
            &a.hit.dims.channel
        ),
        (
            &p.hit.dims.hostname,
            &p.hit.dims.referrer,
            &p.hit.dims.channel
        )
    );
    // The site's rules see it under the site's hostname: allowed by the hostname list (with
    // an alternative domain too), refused by a hostname filter on the site's own name.
    let alternatives = ["example.com".to_string(), "alt.example".to_string()];
    e.set_rules(
        "site-a",
        crate::rules::build(1, &alternatives, &[]).expect("rules"),
    );
    assert_eq!(prepared(&e, item.clone()).drop, None);
    let own = [("hostname".to_string(), "example.com".to_string())];
    e.set_rules(
        "site-a",
        crate::rules::build(2, &alternatives, &own).expect("rules"),
    );
    assert_eq!(
        prepared(&e, item.clone()).drop,
        Some(DropReason::FilterHostname)
    );
    // Stored through the whole pipeline under the site's hostname.
    e.set_rules(
        "site-a",
        crate::rules::build(3, &alternatives, &[]).expect("rules"),
    );
    assert_eq!(outcome(&e, HitKind::PageView, &Origin::Api, item), None);
    e.storage.close().expect("close");
}
