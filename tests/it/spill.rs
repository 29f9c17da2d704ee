//! Held tables of more than one batch (16 Ki rows) are built a batch at a time into a
//! temporary file and read from its mapping (`aggregate::spill`). A log with 36 k failing
//! requests (half of them with their nginx line) goes through that path: every request and
//! every error line reaches the reports with its own fields, in order.

use crate::common::*;
use polars::prelude::*;

fn stamp(i: usize) -> (String, String) {
    let (h, m, s) = (i / 3600, (i / 60) % 60, i % 60);
    (format!("06/Dec/2026:{h:02}:{m:02}:{s:02} +0000"), format!("2026/12/06 {h:02}:{m:02}:{s:02}"))
}

fn client(i: usize) -> String {
    format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256)
}

#[test]
fn spilled_tables_keep_every_row_and_field() {
    let dir = tmp("spill");
    let n = 36_000;
    let (mut access, mut error) = (String::new(), String::new());
    for i in 0..n {
        let (t_acc, t_err) = stamp(i);
        let c = client(i);
        // URIs and user agents longer than 12 bytes live out of line in the string views.
        access.push_str(&format!(
            "{c} - - [{t_acc}] \"GET /item/{i}?q=spill-{i} HTTP/1.1\" 502 157 \"-\" \"agent {i} with a long tail\"\n"
        ));
        if i % 2 == 0 {
            error.push_str(&format!(
                "{t_err} [error] 4242#4242: *{i} connect() failed (111: Connection refused) while connecting to upstream, client: {c}, server: shop.test, request: \"GET /item/{i}?q=spill-{i} HTTP/1.1\", upstream: \"http://127.0.0.1:8080/item/{i}?q=spill-{i}\", host: \"shop.test\"\n"
            ));
        }
    }
    std::fs::write(dir.join("access.log"), access).unwrap();
    std::fs::write(dir.join("error.log"), error).unwrap();
    let out = dir.join("out");
    let r = analyze_in(&dir, &["access.log", "error.log"], &out);
    assert_eq!(r.code, 0, "{}", r.stderr);

    let req = read_csv(&out.join("requests.csv"));
    assert_eq!(req.len(), n);
    for (i, row) in req.iter().enumerate() {
        assert_eq!(row["uri"], format!("/item/{i}?q=spill-{i}"), "row {i}");
        assert_eq!(row["client"], client(i), "row {i}");
        assert_eq!(row["status"], "502");
        let joined = row["evidence"].split(' ').any(|e| e.starts_with("error.log:"));
        assert_eq!(joined, i % 2 == 0, "row {i}: evidence {:?}", row["evidence"]);
        if i % 2 == 0 {
            assert_eq!(row["evidence"], format!("error.log:{}", i / 2 + 1), "row {i}");
            assert_eq!(row["cause"], "backend_down", "row {i}");
        }
    }
    let err = read_csv(&out.join("errors.csv"));
    assert_eq!(err.len(), n / 2);
    for (k, row) in err.iter().enumerate() {
        assert_eq!(row["line"], (k + 1).to_string());
        assert_eq!(row["client"], client(2 * k), "error row {k}");
    }

    // events.parquet: the request rows' user agents (not in requests.csv) and stamps.
    let df = ParquetReader::new(std::fs::File::open(out.join("events.parquet")).unwrap()).finish().unwrap();
    let reqs = df.lazy().filter(col("record").eq(lit("request"))).collect().unwrap();
    assert_eq!(reqs.height(), n);
    let ua = reqs.column("user_agent").unwrap().str().unwrap().clone();
    let ts = reqs.column("ts_ms").unwrap().i64().unwrap().clone();
    let t0 = ts.get(0).unwrap();
    for i in 0..n {
        assert_eq!(ua.get(i), Some(format!("agent {i} with a long tail").as_str()), "row {i}");
        assert_eq!(ts.get(i), Some(t0 + 1000 * i as i64), "row {i}");
    }
}
