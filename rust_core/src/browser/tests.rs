use super::*;

const SITE: &str = "00000000-0000-4000-8000-000000000000";

fn site(hostnames: &[&str]) -> Arc<BrowserSite> {
    Arc::new(BrowserSite {
        id: SITE.into(),
        hostname: "shop.test".into(),
        scripts_disabled: false,
        hostnames: hostnames.iter().map(|h| h.to_string()).collect(),
    })
}

fn body(extra: &str) -> Vec<u8> {
    format!(
        r#"{{"website_id":"{SITE}","event_type":"page_view","url":"https://shop.test/p?q=1","path":"/p"{extra}}}"#
    )
    .into_bytes()
}

fn refused_field(body: &[u8]) -> String {
    match parse_collect(body) {
        Err(r) => r.field,
        Ok(c) => panic!("accepted {c:?}"),
    }
}

#[test]
fn collect_refusals_name_the_field() {
    let cases: [(&[u8], &str); 18] = [
        (br#"{"event_type":"page_view"}"#, "website_id"),
        (br#"{"website_id":42}"#, "website_id"),
        (br#"{"website_id":"  "}"#, "website_id"),
        (&body(r#","event_type":"click""#), "event_type"),
        (&body(r#","url":"/relative""#), "url"),
        (&body(r#","url":"javascript:alert(1)""#), "url"),
        (&body(r#","url":"https://[::1/""#), "url"),
        (&body(r#","path":"blog""#), "path"),
        (&body(r#","referrer":5"#), "referrer"),
        (&body(r#","screen_width":"wide""#), "screen_width"),
        (&body(r#","screen_height":-1"#), "screen_height"),
        (&body(r#","screen_width":true"#), "screen_width"),
        (&body(r#","properties":[1,2]"#), "properties"),
        (&body(r#","utm_source":["x"]"#), "utm_source"),
        (b"[]", "body"),
        (b"  ", "body"),
        (b"\xff\xfe{}", "body"),
        (br#"{"website_id": "#, "body"),
    ];
    for (b, field) in cases {
        assert_eq!(refused_field(b), field, "{}", String::from_utf8_lossy(b));
    }
    let custom = body(r#","event_type":"custom","properties":{"name":7}"#);
    assert_eq!(refused_field(&custom), "properties.name");
    let big = body(&format!(r#","title":"{}""#, "x".repeat(MAX_COLLECT_BODY)));
    assert_eq!(refused_field(&big), "body");
}

#[test]
fn collect_event_types_map_onto_kinds() {
    let c = parse_collect(&body(
        r#","title":" T ","screen_width":1280.0,"screen_height":720"#,
    ))
    .unwrap();
    assert_eq!((c.website_id.as_str(), c.kind), (SITE, HitKind::PageView));
    assert_eq!(c.item.title.as_deref(), Some("T"));
    assert_eq!(
        (c.item.screen_width, c.item.screen_height),
        (Some(1280), Some(720))
    );
    assert_eq!(c.item.referrer.as_deref(), Some(""));

    let c = parse_collect(&body(r#","event_type":"close_tab""#)).unwrap();
    assert_eq!(c.kind, HitKind::KeepAlive);
    assert!(c.item.event_name.is_none());

    let c = parse_collect(&body(
        r#","event_type":"scroll_50","properties":{"depth":80}"#,
    ))
    .unwrap();
    assert_eq!(c.kind, HitKind::Event);
    assert_eq!(c.item.event_name.as_deref(), Some("scroll_50"));
    assert_eq!(c.item.non_interactive, Some(true));
    assert_eq!(c.item.event_meta.unwrap()["depth"], 80);

    let props = r#","event_type":"custom","properties":{"name":" signup ","plan":"pro","deep":{"x":1},"n":null}"#;
    let c = parse_collect(&body(props)).unwrap();
    assert_eq!(c.item.event_name.as_deref(), Some("signup"));
    assert_eq!(c.item.non_interactive, None);
    let meta = c.item.event_meta.unwrap();
    assert_eq!(meta.keys().collect::<Vec<_>>(), ["plan"]);
}

#[test]
fn collect_bodies_read_as_their_json_value_reads() {
    // Escapes in names and values are decoded; a repeated name keeps its last value.
    let c = parse_collect(&body(
        r#","ti\u0074le":"a\"b","title":"c\u00e9","title":"d\"e""#,
    ))
    .unwrap();
    assert_eq!(c.item.title.as_deref(), Some("d\"e"));
    // Fields the rules do not read are still parsed as JSON: malformed or out-of-range values
    // there refuse the body, nested ones are fine.
    for (extra, ok) in [
        (r#","x":{"y":[1,{"z":null}]},"ok":true"#, true),
        (r#","x":1e400"#, false),
        (r#","screen_width":1e400"#, false),
        (r#","title":[1e400]"#, false),
        (r#","x":"\ud800""#, false),
        (r#","x":[1,]"#, false),
    ] {
        let got = parse_collect(&body(extra));
        assert_eq!(got.is_ok(), ok, "{extra}: {got:?}");
        if let Err(r) = got {
            assert_eq!(r.field, "body", "{extra}");
            assert!(
                r.message.starts_with("malformed JSON: "),
                "{extra}: {}",
                r.message
            );
        }
    }
    // Trailing text, a non-object, null fields.
    assert_eq!(refused_field(&[body(""), b" x".to_vec()].concat()), "body");
    let r = parse_collect(b" [1]").unwrap_err();
    assert_eq!(
        (r.field.as_str(), r.message.as_str()),
        ("body", "must be a JSON object")
    );
    let r = parse_collect(&body(r#","url":null"#)).unwrap_err();
    assert_eq!(
        (r.field.as_str(), r.message.as_str()),
        ("url", "is required")
    );
    let r = parse_collect(&body(r#","title":{"a":1}"#)).unwrap_err();
    assert_eq!(
        (r.field.as_str(), r.message.as_str()),
        ("title", "must be a string")
    );
}

#[test]
fn utm_fields_join_the_query_unless_present() {
    let url = |extra: &str| parse_collect(&body(extra)).unwrap().item.url.unwrap();
    assert_eq!(
        url(r#","utm_source":"tw","utm_campaign":"a b""#),
        "https://shop.test/p?q=1&utm_source=tw&utm_campaign=a+b"
    );
    assert_eq!(
        url(r#","url":"https://shop.test/?utm_source=nl#top","utm_source":"tw","utm_medium":"x""#),
        "https://shop.test/?utm_source=nl&utm_medium=x#top"
    );
    assert_eq!(
        url(r#","utm_medium":"","utm_source":null"#),
        "https://shop.test/p?q=1"
    );
}

fn params(pairs: &[(&str, &str)]) -> Params {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
        .collect()
}

#[test]
fn pirsch_query_to_item() {
    let q = params(&[
        ("url", "https://a.test/x"),
        ("t", "X"),
        ("ref", "https://g.test/"),
        ("w", "390"),
        ("h", "844.0"),
        ("tag_author", "kim"),
        ("tag_", "ignored"),
        ("nc", "1"),
    ]);
    let item = hit_item(&decode_query(&q)).unwrap();
    assert_eq!(item.url.as_deref(), Some("https://a.test/x"));
    assert_eq!(
        (item.screen_width, item.screen_height),
        (Some(390), Some(844))
    );
    let tags = item.tags.unwrap();
    assert_eq!(tags.len(), 1);
    assert_eq!(tags["author"], "kim");
    let item = hit_item(&decode_query(&params(&[
        ("url", "https://a.test/"),
        ("w", ""),
    ])))
    .unwrap();
    assert_eq!((item.screen_width, item.tags), (None, None));
    for (pairs, field) in [
        (vec![], "url"),
        (vec![("url", "/x")], "url"),
        (vec![("url", "https://a.test/"), ("w", "big")], "w"),
        (vec![("url", "https://a.test/"), ("w", "inf")], "w"),
        (vec![("url", "https://a.test/"), ("h", "-5")], "h"),
    ] {
        assert_eq!(
            hit_item(&decode_query(&params(&pairs))).unwrap_err().field,
            field
        );
    }
    // Names and values are decoded once more, as trail/api/http.py does.
    let q = decode_query(&params(&[("url", "https%3A%2F%2Fa.test%2F%3Fx%3D1+2")]));
    assert_eq!(query_value(&q, "url"), "https://a.test/?x=1 2");
}

#[test]
fn cors_follows_the_sites_hostnames() {
    let cases: [(&[&str], &str, Cors); 8] = [
        (&["shop.test"], "https://shop.test", Cors::Allowed),
        (&["shop.test"], "http://www.shop.test:8080", Cors::Allowed),
        (
            &["shop.test", "shop.example"],
            "https://shop.example",
            Cors::Allowed,
        ),
        (&["shop.test"], "https://evil.test", Cors::Denied),
        (&["shop.test"], "null", Cors::Denied),
        (&["shop.test"], "", Cors::Denied),
        (&[], "https://anything.test", Cors::Allowed),
        (&[], "ftp://anything.test", Cors::Denied),
    ];
    for (hosts, origin, want) in cases {
        assert_eq!(cors_for(&site(hosts), origin), want, "{origin}");
    }
}

#[test]
fn peer_addresses_and_ids() {
    for (raw, want) in [
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.1:5555", "127.0.0.1"),
        ("::1", "::1"),
        ("[::1]:80", "::1"),
        ("", "0.0.0.0"),
        ("garbage", "0.0.0.0"),
    ] {
        assert_eq!(peer_address(raw).to_string(), want, "{raw}");
    }
    assert!(is_uuid(SITE) && is_uuid(&SITE.to_uppercase()));
    assert!(!is_uuid("nope") && !is_uuid(&SITE.replace('-', "x")));
    let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
    assert_ne!(rate_key(ip("1.2.3.4")), rate_key(ip("1.2.3.5")));
    assert!(rate_key(ip("1.2.3.4")).starts_with("collect:"));
    // The digest of the IP's text form: the keys of counters written before stay the same.
    assert_eq!(rate_key(ip("1.2.3.4")), "collect:9e78ab6a95a00de2");
}

/// A query as the HTTP layer hands it to `judge`: one value per name.
fn raw<'a>(pairs: &[(&'a str, &'a str)]) -> Vec<(&'a str, Vec<&'a str>)> {
    pairs.iter().map(|&(k, v)| (k, vec![v])).collect()
}

fn request<'a>(route: Route, body: &'a [u8], query: &'a [(&'a str, Vec<&'a str>)]) -> Request<'a> {
    Request {
        route,
        body,
        query,
        origin: "https://shop.test",
    }
}

/// The order of the answers: a lookup first, then the fields, the site, the site's CORS.
#[test]
fn judge_orders_lookup_fields_site() {
    let empty = Vec::new();
    let ok = body("");
    let miss = |_: &SiteKey| Found::Miss;
    let known = |_: &SiteKey| Found::Site(site(&["shop.test"]));
    let unknown = |_: &SiteKey| Found::Unknown;

    let r = request(Route::Collect, &ok, &empty);
    let a = judge(&r, miss);
    assert!(matches!(a, Answer::Lookup(SiteKey::Id(ref id)) if id == SITE));
    let a = judge(&r, known);
    assert!(matches!(
        a,
        Answer::Ingest {
            cors: Cors::Allowed,
            kind: HitKind::PageView,
            ..
        }
    ));
    let a = judge(&r, unknown);
    assert!(matches!(a, Answer::Silent { cors: Cors::Denied }));
    let a = judge(&request(Route::Collect, b"[]", &empty), miss);
    assert!(matches!(
        a,
        Answer::Refused {
            cors: Cors::AnySite,
            ..
        }
    ));

    let q = raw(&[("url", "https://shop.test/"), ("w", "big")]);
    let a = judge(&request(Route::PirschHit, b"", &q), miss);
    assert!(
        matches!(a, Answer::Refused { cors: Cors::Denied, ref refusal } if refusal.field == "code")
    );
    let q = raw(&[("code", "abc"), ("url", "https://shop.test/"), ("w", "big")]);
    let a = judge(&request(Route::PirschHit, b"", &q), miss);
    assert!(matches!(a, Answer::Lookup(SiteKey::Code(ref c)) if c == "abc"));
    let a = judge(&request(Route::PirschHit, b"", &q), unknown);
    assert!(matches!(a, Answer::NotFound { cors: Cors::Denied }));
    let a = judge(&request(Route::PirschHit, b"", &q), known);
    assert!(
        matches!(a, Answer::Refused { cors: Cors::Allowed, ref refusal } if refusal.field == "w")
    );

    let event = |extra: &str| {
        format!(r#"{{"identification_code":"abc","url":"https://shop.test/"{extra}}}"#)
    };
    let not_browser: [&[u8]; 3] = [
        b"{",
        br#"{"url":"https://shop.test/"}"#,
        br#"{"identification_code":" "}"#,
    ];
    for b in not_browser {
        assert!(matches!(
            judge(&request(Route::PirschEvent, b, &empty), miss),
            Answer::NotBrowser
        ));
    }
    let b = event(r#","event_name":" ""#);
    let a = judge(&request(Route::PirschEvent, b.as_bytes(), &empty), known);
    assert!(matches!(a, Answer::Refused { ref refusal, .. } if refusal.field == "event_name"));
    let b = event(r#","event_name":"Download","screen_width":"wide""#);
    let a = judge(&request(Route::PirschEvent, b.as_bytes(), &empty), known);
    assert!(matches!(a, Answer::Refused { ref refusal, .. } if refusal.field == "screen_width"));
    let b = event(r#","event_name":"Download","user_agent":"x","disable_bot_filter":true,"ip":5"#);
    match judge(&request(Route::PirschEvent, b.as_bytes(), &empty), known) {
        Answer::Ingest { item, kind, .. } => {
            assert_eq!(kind, HitKind::Event);
            assert_eq!(item.event_name.as_deref(), Some("Download"));
            assert!(item.user_agent.is_none() && item.disable_bot_filter.is_none());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn directory_forgets_on_a_new_stamp() {
    let dir = Directory::default();
    let key = SiteKey::Code("abc".into());
    assert!(matches!(dir.find(&key, 1), Found::Miss));
    dir.put(key.clone(), Some((*site(&[])).clone()), 1);
    assert!(matches!(dir.find(&key, 1), Found::Site(_)));
    assert!(matches!(dir.find(&key, 2), Found::Miss));
    dir.put(SiteKey::Id("x".into()), None, 2);
    assert!(matches!(
        dir.find(&SiteKey::Id("x".into()), 2),
        Found::Unknown
    ));
    assert!(matches!(dir.find(&key, 2), Found::Miss));
}

#[test]
fn unquote_plus_decodes_as_python_does() {
    for (raw, want) in [
        ("plain", "plain"),
        ("", ""),
        ("a+b", "a b"),
        ("a%20b+c", "a b c"),
        ("%E2%82%AC", "€"),
        ("%2B", "+"),
        ("100%", "100%"),
        ("%ZZ", "%ZZ"),
        ("%FF", "\u{FFFD}"),
        ("€", "€"),
    ] {
        assert_eq!(unquote_plus(raw), want, "{raw}");
    }
}

/// A deterministic pseudo-random sequence for the comparisons below.
fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// Random text over an alphabet rich in what the fast paths look at.
fn random_text(next: &mut impl FnMut() -> u64, alphabet: &[&str], max: u64) -> String {
    (0..next() % max)
        .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
        .collect()
}

#[test]
fn unquote_plus_agrees_with_percent_decoding() {
    let reference = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    let alphabet = [
        "%", "+", "2", "F", "f", "a", "Z", "%2", "%2F", "%C3", "%A9", "%E2", "%82", "%AC", "%FF",
        "é", "€", "/", " ", "x",
    ];
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let s = random_text(&mut next, &alphabet, 12);
        assert_eq!(unquote_plus(&s), reference(&s), "{s:?}");
    }
}

#[test]
fn plain_origins_get_the_general_reading() {
    let alphabet = [
        "https://", "http://", "HTTPS://", "www.", "shop", "test", ".", "-", ":8080", "/", "@",
        "[::1]", "Shop", " ", "é", "1", "",
    ];
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    for _ in 0..20_000 {
        let origin = random_text(&mut next, &alphabet, 7);
        if let Some(host) = plain_origin_host(&origin) {
            assert_eq!(host, origin_host(&origin), "{origin:?}");
        }
        for hosts in [&[][..], &["shop.test"][..], &["shop.test", "test"][..]] {
            let general = {
                let host = origin_host(&origin);
                !host.is_empty() && (hosts.is_empty() || hosts.contains(&host.as_str()))
            };
            let want = if general { Cors::Allowed } else { Cors::Denied };
            assert_eq!(
                cors_for(&site(hosts), &origin),
                want,
                "{origin:?} {hosts:?}"
            );
        }
    }
    assert_eq!(
        plain_origin_host("https://www.shop.test"),
        Some("shop.test")
    );
    assert_eq!(plain_origin_host("https://shop.test:8080"), None); // the general reading's
}

#[test]
fn ip_text_is_the_display_form() {
    let mut next = xorshift(0x1234_5678_9abc_def1);
    let mut buf = [0u8; 64];
    for i in 0..20_000 {
        let ip = if i % 4 == 3 {
            let bits = (u128::from(next()) << 64 | u128::from(next())) >> (next() % 128);
            IpAddr::from(std::net::Ipv6Addr::from(bits))
        } else {
            IpAddr::from(std::net::Ipv4Addr::from((next() as u32) >> (next() % 32)))
        };
        let len = ip_text(ip, &mut buf);
        assert_eq!(std::str::from_utf8(&buf[..len]).unwrap(), ip.to_string());
    }
}

#[test]
fn screen_sizes_in_digits_read_as_numbers_do() {
    let general = |text: &str| match text.parse::<f64>() {
        Ok(v) if v.is_finite() => screen_value("w", v.trunc()),
        _ => Err(refuse("w", "must be a number")),
    };
    let mut next = xorshift(0x0bad_cafe_dead_beef);
    for _ in 0..20_000 {
        let text = random_text(&mut next, &["0", "1", "9", "2", "5"], 12);
        let q = vec![("w".to_string(), vec![text.clone()])];
        let got = query_screen(&q, "w").map_err(|r| r.message);
        let want = if text.is_empty() {
            Ok(None)
        } else {
            general(&text).map_err(|r| r.message)
        };
        assert_eq!(got, want, "{text:?}");
    }
}
