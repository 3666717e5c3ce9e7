//! Times as the pages show them: "3 h ago", "14:02 UTC", "1 min 20 s".
//!
//! The view models carry times as RFC 3339 UTC text (the store writes
//! `2026-11-20T09:00:00.000000Z`). Parsing that here keeps a date library
//! out of the browser bundle.

/// Seconds since the Unix epoch of an RFC 3339 UTC time (`…Z` or `…+00:00`).
pub fn unix_seconds(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let zone = text[19..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    if !matches!(zone, "Z" | "z" | "+00:00") || !(1..=12).contains(&month) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Now, in seconds since the Unix epoch: the browser's clock after
/// hydration, the server's while rendering.
pub fn now_unix() -> i64 {
    #[cfg(target_arch = "wasm32")]
    {
        (js_sys::Date::now() / 1000.0) as i64
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

/// How long ago `text` was, seen from `now`: "just now", "5 min ago", "3 h ago", "2 d ago".
pub fn ago(text: &str, now: i64) -> String {
    let Some(then) = unix_seconds(text) else {
        return text.to_owned();
    };
    match now - then {
        s if s < 60 => "just now".to_owned(),
        s if s < 3600 => format!("{} min ago", s / 60),
        s if s < 86_400 => format!("{} h ago", s / 3600),
        s => format!("{} d ago", s / 86_400),
    }
}

/// The absolute time in words: "2026-11-20 09:00:05 UTC".
pub fn utc(text: &str) -> String {
    match (text.get(0..10), text.get(11..19)) {
        (Some(date), Some(clock)) if unix_seconds(text).is_some() => format!("{date} {clock} UTC"),
        _ => text.to_owned(),
    }
}

/// A short absolute time: "14:02 UTC" today, else "2026-11-19 14:02 UTC".
pub fn short_utc(text: &str, now: i64) -> String {
    let Some(then) = unix_seconds(text) else {
        return text.to_owned();
    };
    let clock = &text[11..16];
    if then.div_euclid(86_400) == now.div_euclid(86_400) {
        format!("{clock} UTC")
    } else {
        format!("{} {clock} UTC", &text[0..10])
    }
}

/// The time between two instants in words: "45 s", "3 min 20 s", "2 h 5 min".
pub fn duration(start: &str, end: &str) -> Option<String> {
    let seconds = unix_seconds(end)? - unix_seconds(start)?;
    (seconds >= 0).then(|| match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => match s % 60 {
            0 => format!("{} min", s / 60),
            r => format!("{} min {r} s", s / 60),
        },
        s => match (s % 3600) / 60 {
            0 => format!("{} h", s / 3600),
            m => format!("{} h {m} min", s / 3600),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_stores_times_and_refuses_other_text() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            unix_seconds("2026-11-20T09:00:05.123456Z"),
            Some(1_795_165_205)
        );
        assert_eq!(unix_seconds("2000-03-01T00:00:00+00:00"), Some(951_868_800));
        assert_eq!(unix_seconds("2026-11-20T09:00:05+02:00"), None);
        assert_eq!(unix_seconds("yesterday"), None);
    }

    #[test]
    fn says_how_long_ago_in_the_largest_whole_unit() {
        let t = "2026-11-20T09:00:00.000000Z";
        let then = unix_seconds(t).unwrap();
        assert_eq!(ago(t, then + 59), "just now");
        assert_eq!(ago(t, then + 5 * 60 + 59), "5 min ago");
        assert_eq!(ago(t, then + 3 * 3600 + 10), "3 h ago");
        assert_eq!(ago(t, then + 2 * 86_400), "2 d ago");
        assert_eq!(utc(t), "2026-11-20 09:00:00 UTC");
        assert_eq!(short_utc(t, then + 3600), "09:00 UTC");
        assert_eq!(short_utc(t, then + 86_400), "2026-11-20 09:00 UTC");
    }

    #[test]
    fn durations_read_naturally_and_negative_ones_are_not_shown() {
        let at = |s: &str| format!("2026-11-20T{s}Z");
        assert_eq!(duration(&at("09:00:00"), &at("09:00:45")).unwrap(), "45 s");
        assert_eq!(
            duration(&at("09:00:00"), &at("09:03:20")).unwrap(),
            "3 min 20 s"
        );
        assert_eq!(
            duration(&at("09:00:00"), &at("11:05:00")).unwrap(),
            "2 h 5 min"
        );
        assert_eq!(duration(&at("09:00:00"), &at("08:00:00")), None);
    }
}
