//! Values as people type and read them: durations with units (`90s`, `10m`, `2h`, `2d`,
//! `1h 30m`; plain digits are seconds) and prices in currency units (`0.5 USD`, never the
//! micro-units the protocol counts in).

use std::time::Duration;

use souk_node::agent_file::format_amount;

/// Parses a duration: humantime's forms (`90s`, `90m`, `2h`, `2d`, `1h 30m`, `500ms`), or plain
/// seconds (`3600`). Zero is refused; the error says what was expected.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let d = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|e| e.to_string())?
    } else {
        humantime::parse_duration(s).map_err(|e| e.to_string())?
    };
    if d.is_zero() {
        return Err("a duration must be longer than zero".into());
    }
    Ok(d)
}

/// [`parse_duration`] in milliseconds, for the API (saturating: no deadline is that long).
pub(crate) fn parse_duration_ms(s: &str) -> Result<u64, String> {
    parse_duration(s).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A duration in milliseconds for people: `10m`, `1h 30m`, `2days`.
pub(crate) fn format_duration_ms(ms: u64) -> String {
    // Whole seconds unless shorter than one.
    let d = if ms >= 1000 {
        Duration::from_secs(ms / 1000)
    } else {
        Duration::from_millis(ms)
    };
    humantime::format_duration(d).to_string()
}

/// A price in currency units: `0.5 USD`.
pub(crate) fn money(micros: u64, currency: &str) -> String {
    format!("{} {currency}", format_amount(micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units() {
        let ms = |s| parse_duration_ms(s);
        assert_eq!(ms("90s"), Ok(90_000));
        assert_eq!(ms("90m"), Ok(5_400_000));
        assert_eq!(ms("3600s"), Ok(3_600_000));
        assert_eq!(ms("2h"), Ok(7_200_000));
        assert_eq!(ms("2d"), Ok(172_800_000));
        assert_eq!(ms("1h 30m"), Ok(5_400_000));
        assert_eq!(ms("15"), Ok(15_000));
        assert_eq!(ms("500ms"), Ok(500));
        for bad in ["", "h", "1x", "-1s", "0s", "0", "two days"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_print_with_units() {
        assert_eq!(format_duration_ms(600_000), "10m");
        assert_eq!(format_duration_ms(5_400_000), "1h 30m");
        assert_eq!(format_duration_ms(172_800_000), "2days");
        assert_eq!(format_duration_ms(1_500), "1s");
        assert_eq!(format_duration_ms(250), "250ms");
    }

    #[test]
    fn prices_print_in_currency_units() {
        assert_eq!(money(100_000, "USD"), "0.1 USD");
        assert_eq!(money(500_000, "EUR"), "0.5 EUR");
        assert_eq!(money(2_000_000, "USD"), "2 USD");
        assert_eq!(money(0, "USD"), "0 USD");
    }
}
