//! Dates of SEARCH (`1-Feb-1994`, RFC 9051 §9 `date`) and the
//! date-time of APPEND and INTERNALDATE (`"17-Jul-1996 02:44:25 -0700"`,
//! `date-time`).
//!
//! Parsing is as the grammar says, month names in any case, with two
//! leniencies: a one-digit day without the leading space in a date-time
//! (`7-Jul-1996 ...`; the grammar wants ` 7` or `07`), and a leap second
//! (`:60`). Days are checked against their month. [`DateTime`] is written
//! with a two-digit day (`07-Jul-1996`, which `date-day-fixed` allows and
//! Dovecot sends).

use std::fmt;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: u16,
    /// 1 ..= 12.
    pub month: u8,
    /// 1 ..= 31.
    pub day: u8,
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        _ => 28,
    }
}

fn month(s: &[u8]) -> Option<u8> {
    MONTHS
        .iter()
        .position(|m| m.as_bytes().eq_ignore_ascii_case(s))
        .map(|i| i as u8 + 1)
}

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |acc, &d| acc * 10 + u32::from(d - b'0')))
}

impl Date {
    /// A valid date, or `None`.
    pub fn new(year: u16, month: u8, day: u8) -> Option<Date> {
        if !(1..=9999).contains(&year) || !(1..=12).contains(&month) {
            return None;
        }
        if day == 0 || day > days_in_month(i64::from(year), month) {
            return None;
        }
        Some(Date { year, month, day })
    }

    /// `date-text`: `1*2DIGIT "-" Mon "-" 4DIGIT`.
    pub fn parse(s: &[u8]) -> Option<Date> {
        let mut it = s.split(|&b| b == b'-');
        let (d, m, y) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() || d.len() > 2 || y.len() != 4 {
            return None;
        }
        Date::new(digits(y)? as u16, month(m)?, digits(d)? as u8)
    }

    /// Days since 1970-01-01 (negative before).
    pub fn days_since_epoch(&self) -> i64 {
        // Howard Hinnant's days_from_civil.
        let (y, m, d) = (
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        );
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146097 + doe - 719468
    }

    /// The date `days` after 1970-01-01 (clamped to years 1..=9999).
    pub fn from_days(days: i64) -> Date {
        let days = days.clamp(-719162, 2932896);
        let z = days + 719468;
        let era = z.div_euclid(146097);
        let doe = z - era * 146097;
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        Date {
            year: y as u16,
            month: m as u8,
            day: d as u8,
        }
    }
}

/// `1-Feb-1994`, as SEARCH dates are written.
impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}-{:04}",
            self.day,
            MONTHS[usize::from(self.month.clamp(1, 12)) - 1],
            self.year
        )
    }
}

/// A date and time with its zone, as INTERNALDATE and APPEND carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateTime {
    pub date: Date,
    pub hour: u8,
    pub minute: u8,
    /// 0 ..= 60.
    pub second: u8,
    /// Minutes east of UTC (`-0700` is -420).
    pub zone: i16,
}

impl DateTime {
    /// The content of a `date-time` without its quotes:
    /// `17-Jul-1996 02:44:25 -0700`, ` 7-Jul-1996 ...`, `07-Jul-...`.
    pub fn parse(s: &[u8]) -> Option<DateTime> {
        let s = s.strip_prefix(b" ").unwrap_or(s);
        let mut it = s.split(|&b| b == b' ');
        let (date, time, zone) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() {
            return None;
        }
        let date = Date::parse(date)?;
        let mut t = time.split(|&b| b == b':');
        let (h, m, sec) = (t.next()?, t.next()?, t.next()?);
        if t.next().is_some() || h.len() != 2 || m.len() != 2 || sec.len() != 2 {
            return None;
        }
        let (hour, minute, second) = (digits(h)?, digits(m)?, digits(sec)?);
        if hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        if zone.len() != 5 {
            return None;
        }
        let sign = match zone[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let (zh, zm) = (digits(&zone[1..3])?, digits(&zone[3..5])?);
        if zm > 59 {
            return None;
        }
        Some(DateTime {
            date,
            hour: hour as u8,
            minute: minute as u8,
            second: second as u8,
            zone: sign * (zh * 60 + zm) as i16,
        })
    }

    /// Seconds since the epoch (UTC).
    pub fn timestamp(&self) -> i64 {
        self.date.days_since_epoch() * 86400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            - i64::from(self.zone) * 60
    }

    /// The time `secs` after the epoch as seen in the zone `zone`
    /// (minutes east of UTC).
    pub fn from_timestamp(secs: i64, zone: i16) -> DateTime {
        let local = secs + i64::from(zone) * 60;
        let days = local.div_euclid(86400);
        let rem = local.rem_euclid(86400);
        DateTime {
            date: Date::from_days(days),
            hour: (rem / 3600) as u8,
            minute: (rem / 60 % 60) as u8,
            second: (rem % 60) as u8,
            zone,
        }
    }
}

/// `17-Jul-1996 02:44:25 -0700` (without the quotes the wire form adds).
impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let z = self.zone.unsigned_abs();
        write!(
            f,
            "{:02}-{}-{:04} {:02}:{:02}:{:02} {}{:02}{:02}",
            self.date.day,
            MONTHS[usize::from(self.date.month.clamp(1, 12)) - 1],
            self.date.year,
            self.hour,
            self.minute,
            self.second,
            if self.zone < 0 { '-' } else { '+' },
            z / 60,
            z % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dates() {
        assert_eq!(Date::parse(b"1-Feb-1994"), Date::new(1994, 2, 1));
        assert_eq!(Date::parse(b"01-feb-1994"), Date::new(1994, 2, 1));
        assert_eq!(Date::parse(b"29-Feb-2000"), Date::new(2000, 2, 29));
        assert_eq!(Date::parse(b"29-Feb-1900"), None);
        assert_eq!(Date::parse(b"31-Apr-2020"), None);
        assert_eq!(Date::parse(b"0-Jan-2020"), None);
        assert_eq!(Date::parse(b"1-Foo-2020"), None);
        assert_eq!(Date::parse(b"1-Jan-20"), None);
        assert_eq!(Date::parse(b"001-Jan-2020"), None);
        assert_eq!(Date::parse(b"1-Jan-2020-"), None);
        assert_eq!(Date::new(1994, 2, 1).unwrap().to_string(), "1-Feb-1994");
        assert_eq!(Date::new(1970, 1, 1).unwrap().days_since_epoch(), 0);
        assert_eq!(Date::new(2000, 3, 1).unwrap().days_since_epoch(), 11017);
        assert_eq!(Date::from_days(11017), Date::new(2000, 3, 1).unwrap());
        assert_eq!(Date::from_days(-1), Date::new(1969, 12, 31).unwrap());
    }

    #[test]
    fn date_times() {
        // RFC 3501 §6.3.11's example.
        let dt = DateTime::parse(b"17-Jul-1996 02:44:25 -0700").unwrap();
        assert_eq!(dt.date, Date::new(1996, 7, 17).unwrap());
        assert_eq!((dt.hour, dt.minute, dt.second, dt.zone), (2, 44, 25, -420));
        assert_eq!(dt.timestamp(), 837596665);
        assert_eq!(dt.to_string(), "17-Jul-1996 02:44:25 -0700");
        // date-day-fixed with a space, a zero, and (leniently) neither.
        for s in [
            " 7-Jul-1996 02:44:25 +0200",
            "07-Jul-1996 02:44:25 +0200",
            "7-Jul-1996 02:44:25 +0200",
        ] {
            let dt = DateTime::parse(s.as_bytes()).unwrap();
            assert_eq!(dt.to_string(), "07-Jul-1996 02:44:25 +0200");
        }
        for bad in [
            "17-Jul-1996 02:44:25",
            "17-Jul-1996 2:44:25 -0700",
            "17-Jul-1996 24:00:00 -0700",
            "17-Jul-1996 02:44:25 0700",
            "17-Jul-1996 02:44:25 -07000",
            "17-Jul-1996  02:44:25 -0700",
            "17-Jul-1996 02:44:25 -0760",
        ] {
            assert_eq!(DateTime::parse(bad.as_bytes()), None, "{bad}");
        }
        let dt = DateTime::from_timestamp(837596665, -420);
        assert_eq!(dt.to_string(), "17-Jul-1996 02:44:25 -0700");
        assert_eq!(
            DateTime::from_timestamp(0, 0).to_string(),
            "01-Jan-1970 00:00:00 +0000"
        );
        assert_eq!(
            DateTime::from_timestamp(-1, 90).to_string(),
            "01-Jan-1970 01:29:59 +0130"
        );
    }

    proptest! {
        #[test]
        fn timestamps_round_trip(secs in -2_000_000_000i64..20_000_000_000, zone in -720i16..=840) {
            let dt = DateTime::from_timestamp(secs, zone);
            prop_assert_eq!(dt.timestamp(), secs);
            prop_assert_eq!(DateTime::parse(dt.to_string().as_bytes()), Some(dt));
        }
    }
}
