//! Envelope recognition on lines in the shapes production writes (inputs-in-the-wild.md
//! sections B and D, and `testdata/wrap.py`'s shapes).

use super::*;

fn un(
    line: &[u8],
    first: Option<Envelope>,
) -> (Option<Envelope>, String, EnvTime, bool, String, String, Option<Stream>) {
    let mut s = Vec::new();
    let u = unwrap(line, &mut s, first);
    (
        u.envelope,
        String::from_utf8_lossy(u.inner).into_owned(),
        u.time,
        u.partial,
        String::from_utf8_lossy(u.name).into_owned(),
        String::from_utf8_lossy(u.host).into_owned(),
        u.stream,
    )
}

/// 2026-11-22T03:14:42Z in ms.
const T: Ts = 1_795_317_282_000;

#[test]
fn docker_json_file_records_and_split_pieces() {
    let r = un(
        br#"{"log":"10.0.0.1 - - [22/Nov/2026:04:14:42 +0100] \"GET /x HTTP/1.1\" 502 157 \"-\" \"curl\"\n","stream":"stdout","time":"2026-11-22T03:14:42.123456789Z"}"#,
        None,
    );
    assert_eq!(r.0, Some(Envelope::DockerJson));
    assert_eq!(r.1, r#"10.0.0.1 - - [22/Nov/2026:04:14:42 +0100] "GET /x HTTP/1.1" 502 157 "-" "curl""#);
    assert_eq!((r.2, r.3, r.6), (EnvTime::Utc(T + 123), false, Some(Stream::Stdout)));
    // A piece of a line Docker split at 16 KiB: no final newline.
    let p = un(br#"{"log":"2026/11/22 04:14:42 [error] 7#7: *1 upstream timed out","stream":"stderr","time":"2026-11-22T03:14:42.4Z"}"#, Some(Envelope::DockerJson));
    assert!(p.3 && p.1.ends_with("timed out"));
    let q =
        un(br#"{"log":"with a tab\u0009 and \u003c\u003e\r\n","stream":"stderr","time":"2026-11-22T03:14:42Z"}"#, None);
    assert_eq!((q.1.as_str(), q.3), ("with a tab\t and <>", false));
    // Not a Docker record: a JSON access line stays as it is.
    assert_eq!(un(br#"{"time_local":"22/Nov/2026:04:14:42 +0100","status":502}"#, None).0, None);
}

#[test]
fn docker_json_fast_path_reads_what_the_general_scanner_reads() {
    // The file's envelope known (the fast path) or not (the general scanner): the same
    // result for every layout, escape and damage.
    let lines: &[&[u8]] = &[
        br#"{"log":"10.0.0.1 - - [22/Nov/2026:04:14:42 +0100] \"GET /x HTTP/1.1\" 502 157 \"-\" \"curl\"\n","stream":"stdout","time":"2026-11-22T03:14:42.123456789Z"}"#,
        br#"{"log":"no escape at all: a split piece","stream":"stderr","time":"2026-11-22T03:14:42Z"}"#,
        br#"{"log":"a \\ backslash, a \/ slash, a tab\t, \u00e9 and \b\f\r\n","stream":"stderr","time":"2026-11-22T03:14:42Z"}"#,
        br#"{"log":"x\n","stream":"stdout","time":"2026-11-22T03:14:42.5+01:00"}   "#,
        br#"{"log":"x\n","time":"2026-11-22T03:14:42Z","stream":"stdout"}"#,
        br#"{"log":"x\n","stream":"stdin","time":"2026-11-22T03:14:42Z"}"#,
        br#"{"log":"x\n","stream":"stdout","time":"yesterday"}"#,
        br#"{"log":"x\n","stream":"stdout","time":"2026-11-22T03:14:42Z"}trailing"#,
        br#"{"log":"x\n","stream":"stdout","time":"2026-11-22T03:14:42Z","attrs":{"tag":"web"}}"#,
        br#"{"log":"unterminated\n","stream":"stdout","time":"2026-11-22T03:14:42Z"#,
        br#"{"log":"bad escape \q\n","stream":"stdout","time":"2026-11-22T03:14:42Z"}"#,
        br#"{"log":"ends in a backslash\"#,
        br#"{"log":""#,
    ];
    for l in lines {
        assert_eq!(un(l, Some(Envelope::DockerJson)), un(l, None), "{}", String::from_utf8_lossy(l));
    }
}

#[test]
fn docker_json_raw_reads_complete_records_from_their_end() {
    let raw = |l: &[u8]| docker_json_raw(l).map(|(s, r)| (String::from_utf8_lossy(r).into_owned(), Some(s)));
    let t = r#","stream":"stdout","time":"2026-11-22T03:14:42Z"}"#;
    let rec = |log: &str| format!(r#"{{"log":"{log}{t}"#).into_bytes();
    assert_eq!(raw(&rec(r#"a \"q\" b\n""#)), Some((r#"a \"q\" b"#.to_string(), Some(Stream::Stdout))));
    assert_eq!(raw(&rec(r#"crlf\r\n""#)).unwrap().0, "crlf");
    // An escaped backslash then `n` is text, not a newline: a piece of a split line.
    assert_eq!(raw(&rec(r#"piece \\n""#)), None);
    assert_eq!(raw(&rec(r#"three \\\n""#)).unwrap().0, r#"three \\"#);
    assert_eq!(raw(&rec(r#"no newline""#)), None);
    assert_eq!(
        raw(br#"{"log":"x\n","stream":"stderr","time":"2026-11-22T03:14:42Z"}  "#).unwrap().1,
        Some(Stream::Stderr)
    );
    assert_eq!(raw(br#"{"log":"x\n","time":"2026-11-22T03:14:42Z","stream":"stdout"}"#), None);
    assert_eq!(raw(br#"{"log":"x\n","stream":"stdout","time":"2026-11-22T03:14:42Z","attrs":{}}"#), None);
}

#[test]
fn cri_compose_and_docker_timestamps() {
    let r = un(b"2026-11-22T03:14:42.503711475Z stderr F 2026/11/22 04:14:42 [error] 7#7: *1 x", None);
    assert_eq!(
        (r.0, r.1.as_str(), r.2, r.3),
        (Some(Envelope::Cri), "2026/11/22 04:14:42 [error] 7#7: *1 x", EnvTime::Utc(T + 503), false)
    );
    let p = un(b"2026-11-22T03:14:42.5Z stdout P 10.0.0.1 - - [22/Nov", None);
    assert_eq!((p.0, p.3, p.6), (Some(Envelope::Cri), true, Some(Stream::Stdout)));
    assert_eq!(un(b"2026-11-22T03:14:42.5Z stdout F", None).1, "");
    let c = un(b"php-fpm-1  | [22-Nov-2026 04:14:42] WARNING: [pool www] child 12 exited on signal 9 (SIGKILL)", None);
    assert_eq!((c.0, c.4.as_str()), (Some(Envelope::Compose), "php-fpm-1"));
    assert!(c.1.starts_with("[22-Nov-2026"));
    let c1 = un(
        b"nginx_1                | 172.20.0.1 - - [20/Feb/2018:16:45:43 +0000] \"GET /foo.php HTTP/1.1\" 502 568",
        None,
    );
    assert_eq!((c1.0, c1.4.as_str()), (Some(Envelope::Compose), "nginx_1"));
    let ct = un(b"nginx-1  | 2026-11-22T03:14:42.000000001Z 10.0.0.1 - - [x]", None);
    assert_eq!((ct.1.as_str(), ct.2), ("10.0.0.1 - - [x]", EnvTime::Utc(T)));
    let d = un(
        b"2025-03-09T09:33:34.014275652Z 10.42.6.148 - - [09/Mar/2025:09:33:34 +0000] \"HEAD / HTTP/1.1\" 200 0",
        None,
    );
    assert_eq!(d.0, Some(Envelope::DockerTimestamps));
    assert!(d.1.starts_with("10.42.6.148 - -"));
    let de = un(b"2026-11-22T03:14:42.014275652Z 2026/11/22 04:14:42 [notice] 1#1: start worker processes", None);
    assert_eq!(
        (de.0, de.1.as_str()),
        (Some(Envelope::DockerTimestamps), "2026/11/22 04:14:42 [notice] 1#1: start worker processes")
    );
}

#[test]
fn syslog_rfc3164_rsyslog_journal_and_rfc5424() {
    let r = un(b"Nov 22 04:14:42 web1 nginx: 2026/11/22 04:14:42 [error] 7#7: *1 x", None);
    assert_eq!(
        (r.0, r.2, r.4.as_str(), r.5.as_str()),
        (Some(Envelope::Syslog), EnvTime::NoYear(11, 22, 15_282_000), "nginx", "web1")
    );
    assert_eq!(r.1, "2026/11/22 04:14:42 [error] 7#7: *1 x");
    let f =
        un(b"<190>Nov  2 04:14:42 web1 php-fpm[812]: [WARNING] [pool www] child 12 exited on signal 9 (SIGKILL)", None);
    assert_eq!(
        (f.0, f.4.as_str(), f.1.as_str()),
        (Some(Envelope::Syslog), "php-fpm", "[WARNING] [pool www] child 12 exited on signal 9 (SIGKILL)")
    );
    let mut s = Vec::new();
    assert_eq!(unwrap(b"Nov 22 04:14:42 web1 php-fpm[812]: [NOTICE] x", &mut s, None).pid, Some(812));
    // rsyslog's escaped newlines; nginx's `pid#tid` is no escape.
    let m = un(b"Nov 22 04:11:04 web1 nginx: 2026/11/22 04:11:04 [error] 2711#2711: *50 FastCGI sent in stderr: \"PHP message: x#012Stack trace:#012#0 {main}\" while reading", None);
    assert_eq!(m.1, "2026/11/22 04:11:04 [error] 2711#2711: *50 FastCGI sent in stderr: \"PHP message: x\nStack trace:\n#0 {main}\" while reading");
    let iso = un(b"2026-11-22T04:14:42.014352+01:00 web1 nginx: 10.0.0.1 - - [22/Nov/2026:04:14:42 +0100] \"GET / HTTP/1.1\" 200", None);
    assert_eq!((iso.0, iso.2), (Some(Envelope::Syslog), EnvTime::Utc(T + 14)));
    let jiso = un(b"2026-11-22T04:14:42+0100 web1 nginx[811]: 2026/11/22 04:14:42 [error] 811#811: x", None);
    assert_eq!((jiso.0, jiso.2, jiso.4.as_str()), (Some(Envelope::Syslog), EnvTime::Utc(T), "nginx"));
    let precise = un(b"Nov 22 04:10:59.657608 web1 php-fpm[28571]: [NOTICE] fpm is running, pid 28571", None);
    assert_eq!(precise.2, EnvTime::NoYear(11, 22, 15_059_657));
    let k = un(b"Nov 22 04:10:59 web1 kernel: [260204.602538] TCP: request_sock_TCP: Possible SYN flooding", None);
    assert_eq!(k.4, "kernel");
    let p = un(b"<187>1 2026-11-22T04:14:42.123456+01:00 web1 nginx - - - 2026/11/22 04:14:42 [error] 7#7: x", None);
    assert_eq!(
        (p.0, p.2, p.4.as_str(), p.1.as_str()),
        (Some(Envelope::Syslog5424), EnvTime::Utc(T + 123), "nginx", "2026/11/22 04:14:42 [error] 7#7: x")
    );
    let sd = un(
        b"<29>1 2026-11-22T04:14:42Z web1 php-fpm 812 - [meta sequenceId=\"1\" x=\"a\\]b\"] \xEF\xBB\xBF[WARNING] y",
        None,
    );
    assert_eq!((sd.0, sd.1.as_str()), (Some(Envelope::Syslog5424), "[WARNING] y"));
    // Lines that only start like syslog stay bare.
    for bare in [
        &b"2026/11/22 04:14:42 [error] 7#7: x"[..],
        b"10.0.0.1 - - [22/Nov/2026:04:14:42 +0100] \"GET /\" 200",
        b"[22-Nov-2026 04:14:42] NOTICE: ready",
        b"Nov 22 04:14:42 web1 no tag here",
        b"Nov 22 04:14:42 web1 1234: digits are no tag",
        b"",
    ] {
        assert_eq!(un(bare, None).0, None, "{}", String::from_utf8_lossy(bare));
    }
    let mut s = Vec::new();
    assert_eq!(
        unwrap(b"                                            Stack trace:", &mut s, Some(Envelope::Syslog)).indented,
        44
    );
}

#[test]
fn journal_export_records() {
    let r = un(br#"{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1795317282014352","PRIORITY":"3","SYSLOG_IDENTIFIER":"nginx","MESSAGE":"2026/11/22 04:14:42 [error] 7#7: a\nb","_PID":"811","_HOSTNAME":"web1"}"#, None);
    assert_eq!(
        (r.0, r.1.as_str(), r.2, r.4.as_str(), r.5.as_str()),
        (Some(Envelope::JournalJson), "2026/11/22 04:14:42 [error] 7#7: a\nb", EnvTime::Utc(T + 14), "nginx", "web1")
    );
    let b = un(
        br#"{"MESSAGE":[104,105],"_SYSTEMD_UNIT":"php8.2-fpm.service","__REALTIME_TIMESTAMP":"1795317282000000"}"#,
        None,
    );
    assert_eq!((b.1.as_str(), b.4.as_str()), ("hi", "php8.2-fpm"));
}
