use super::*;
use serde_json::json;

const NOW: i64 = 1_795_168_800_000; // 2026-11-20T10:00:00Z

#[test]
fn client_ips() {
    let cases: &[(Option<&str>, Option<&str>)] = &[
        (Some("81.2.69.1"), Some("81.2.69.1")),
        (Some(" 81.2.69.1 "), Some("81.2.69.1")),
        (Some("81.2.69.1:5678"), Some("81.2.69.1")), // Go's RemoteAddr
        (Some("[2001:db8::1]:443"), Some("2001:db8::1")),
        (Some("10.0.0.1, 81.2.69.1"), Some("81.2.69.1")), // X-Forwarded-For: the last entry
        (Some("81.2.69.1, junk"), Some("81.2.69.1")),
        (None, None),
        (Some(""), None),
        (Some("   "), None),
        (Some("not-an-ip"), None),
        (Some("999.1.1.1"), None),
        (Some("localhost"), None),
    ];
    for (value, want) in cases {
        let got = client_ip(*value).ok().map(|ip| ip.to_string());
        assert_eq!(got.as_deref(), *want, "{value:?}");
    }
}

#[test]
fn urls() {
    use Source::{Api, Browser};
    let long = format!("https://example.com/{}", "a".repeat(MAX_URL));
    let long_host = format!("https://{}.com/", "a".repeat(64));
    let cases: &[(&str, bool, Source, bool)] = &[
        // (url, required, source, accepted)
        ("https://example.com/p?q=1", true, Api, true),
        ("http://example.com", true, Browser, true),
        ("https://EXAMPLE.com./", true, Browser, true),
        ("http://81.2.69.1:8080/x", true, Browser, true),
        ("/pricing?plan=pro", true, Api, true),
        ("/pricing", true, Browser, false),
        ("", true, Api, false),
        ("  ", true, Browser, false),
        ("", false, Api, true),
        ("javascript:alert(1)", true, Api, false),
        ("ftp://example.com/file", true, Api, false),
        ("data:text/html,hi", true, Browser, false),
        ("example.com/page", true, Api, false),
        ("http://", true, Api, false),
        ("https://exa mple.com/", true, Api, false),
        (&long, true, Api, false),
        (&long_host, true, Api, false),
    ];
    for (value, required, source, ok) in cases {
        let got = url(Some(value), *required, *source);
        assert_eq!(got.is_ok(), *ok, "{value:?} {source:?}: {got:?}");
    }
}

#[test]
fn hostnames() {
    let label = "a".repeat(63);
    let long_label = format!("{label}a.com");
    let ok_label = format!("{label}.com");
    let longest = [label.as_str(); 3].join("."); // 191 characters
    let too_long = [label.as_str(); 4].join("."); // 255 characters
    let cases = [
        ("example.com", true),
        ("example.com.", true),
        ("81.2.69.1", true),
        ("", false),
        (ok_label.as_str(), true),
        (long_label.as_str(), false),
        (longest.as_str(), true),
        (too_long.as_str(), false),
    ];
    for (host, ok) in cases {
        assert_eq!(hostname(host).is_ok(), ok, "{host:?}");
    }
}

#[test]
fn screens() {
    let cases = [
        (None, true),
        (Some(0), true),
        (Some(1920), true),
        (Some(MAX_SCREEN), true),
        (Some(MAX_SCREEN + 1), false),
        (Some(-1), false),
        (Some(i64::MIN), false),
    ];
    for (value, ok) in cases {
        assert_eq!(screen(value).is_ok(), ok, "{value:?}");
    }
}

#[test]
fn event_durations() {
    let cases: Vec<(Option<Value>, Option<u32>)> = vec![
        (None, Some(0)),
        (Some(Value::Null), Some(0)),
        (Some(json!(12)), Some(12)),
        (Some(json!(4.7)), Some(4)),
        (Some(json!("30")), Some(30)),
        (Some(json!(" 7 ")), Some(7)),
        (Some(json!("")), Some(0)),
        (Some(json!(MAX_EVENT_DURATION)), Some(MAX_EVENT_DURATION)),
        (Some(json!(MAX_EVENT_DURATION + 1)), None),
        (Some(json!(-1)), None),
        (Some(json!(1e300)), None),
        (Some(json!("-5")), None),
        (Some(json!("soon")), None),
        (Some(json!(true)), None),
        (Some(json!([1])), None),
    ];
    for (value, want) in cases {
        assert_eq!(event_duration(value.as_ref()).ok(), want, "{value:?}");
    }
}

#[test]
fn hit_times() {
    let window = TimeWindow::new(365, 300);
    let cases: &[(&str, Option<i64>)] = &[
        ("2026-11-20T10:00:00Z", Some(NOW)),
        ("2026-11-20T12:00:00+02:00", Some(NOW)),
        ("2026-11-20T10:00:00.5Z", Some(NOW + 500)),
        ("2026-11-20T10:05:00Z", Some(NOW + 300_000)),
        (
            "2025-11-20T10:00:01Z",
            Some(NOW - 364 * DAY_MS - 86_399_000),
        ),
        ("2026-11-20T10:05:01Z", None),
        ("2025-11-20T09:59:59Z", None),
        ("0000-01-01T00:00:00Z", None),
        ("9999-12-31T23:59:59Z", None),
        ("1970-01-01T00:00:00Z", None),
        ("2026-11-20T10:00:00", None), // no timezone
        ("2026-11-20", None),
        ("20261120T100000Z", None),
        ("1795168800", None),
        ("yesterday", None),
        ("+275760-09-13T00:00:00Z", None),
        ("", None),
    ];
    for (value, want) in cases {
        assert_eq!(hit_time(value, NOW, window).ok(), *want, "{value:?}");
    }
}

fn checker(source: Source, batch: bool) -> Checker {
    Checker {
        source,
        batch,
        max_batch: 3,
        now: NOW,
        window: TimeWindow::default(),
    }
}

fn item(value: serde_json::Value) -> HitInput {
    serde_json::from_value(value).expect("item")
}

fn refusal(checker: &Checker, kind: HitKind, items: Vec<HitInput>) -> Option<String> {
    match checker.check_all(kind, items) {
        Err(CoreError::Invalid { field, .. }) => Some(field),
        Err(e) => panic!("{e}"),
        Ok(_) => None,
    }
}

#[test]
fn every_rule_names_its_field() {
    use HitKind::{Event, KeepAlive, PageView};
    let ok = json!({"url": "https://example.com/", "ip": "81.2.69.1"});
    let with = |extra: serde_json::Value| {
        let mut v = ok.clone();
        for (k, x) in extra.as_object().expect("object") {
            v[k] = x.clone();
        }
        item(v)
    };
    let api = checker(Source::Api, false);
    let browser = checker(Source::Browser, false);
    let cases: Vec<(&Checker, HitKind, HitInput, Option<&str>)> = vec![
        (&api, PageView, with(json!({})), None),
        (&api, PageView, with(json!({"ip": null})), Some("ip")),
        (&api, PageView, with(json!({"ip": "nope"})), Some("ip")),
        (&browser, PageView, with(json!({"ip": null})), None),
        (
            &api,
            PageView,
            with(json!({"url": "ftp://x.y/"})),
            Some("url"),
        ),
        (&api, PageView, with(json!({"url": null})), Some("url")),
        (&api, KeepAlive, with(json!({"url": null})), None),
        (
            &api,
            PageView,
            with(json!({"screen_width": -1})),
            Some("screen_width"),
        ),
        (
            &browser,
            PageView,
            with(json!({"screen_height": 100_001})),
            Some("screen_height"),
        ),
        (
            &api,
            PageView,
            with(json!({"referrer": "r".repeat(MAX_URL + 1)})),
            Some("referrer"),
        ),
        (
            &api,
            PageView,
            with(json!({"title": "t".repeat(MAX_TITLE * 4)})),
            None,
        ),
        (&api, Event, with(json!({})), Some("event_name")),
        (
            &api,
            Event,
            with(json!({"event_name": "a", "event_duration": -3})),
            Some("event_duration"),
        ),
        (
            &browser,
            Event,
            with(json!({"event_name": "a", "event_duration": 1e9})),
            Some("event_duration"),
        ),
        // A single hit's `time` is not honoured, so not checked either.
        (
            &api,
            PageView,
            with(json!({"time": "0000-01-01T00:00:00Z"})),
            None,
        ),
    ];
    for (i, (checker, kind, input, want)) in cases.into_iter().enumerate() {
        assert_eq!(
            refusal(checker, kind, vec![input]).as_deref(),
            want,
            "case {i}"
        );
    }
}

#[test]
fn batches_name_the_item_and_honour_its_time() {
    let batch = checker(Source::Api, true);
    let good = || item(json!({"url": "/a", "ip": "81.2.69.1", "time": "2026-11-20T09:00:00Z"}));
    let hits = batch
        .check_all(HitKind::PageView, vec![good(), good()])
        .expect("valid");
    assert_eq!(hits[1].time, NOW - 3_600_000);
    assert_eq!(hits[1].ip, Some("81.2.69.1".parse().expect("ip")));

    let late = item(json!({"url": "/a", "ip": "81.2.69.1", "time": "9999-01-01T00:00:00Z"}));
    let refused = refusal(&batch, HitKind::PageView, vec![good(), late]);
    assert_eq!(refused.as_deref(), Some("[1].time"));
    let untimed = item(json!({"url": "/a", "ip": "81.2.69.1"}));
    let hits = batch
        .check_all(HitKind::PageView, vec![untimed])
        .expect("valid");
    assert_eq!(hits[0].time, NOW, "an item without a time happened now");

    let too_many = vec![good(), good(), good(), good()];
    assert_eq!(
        refusal(&batch, HitKind::PageView, too_many).as_deref(),
        Some("body")
    );
}

#[test]
fn limits_are_exported_by_name() {
    let names: Vec<&str> = LIMITS.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "url",
            "hostname",
            "title",
            "screen",
            "event_duration",
            "event_name",
            "tags"
        ]
    );
    assert!(LIMITS.iter().all(|(_, v)| *v > 0));
}
