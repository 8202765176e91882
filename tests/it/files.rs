//! Files from outside. A hostile import (a sheet that claims
//! A1:XFD1048576, zip bombs, a 20 MB line, too many rows or columns) gets
//! one clear line from every importer — wish lists, org lists, FAQ tables;
//! from the CLI and from a chat — and never stops the process; CSV saved by
//! Excel on Chinese Windows (GBK) is read. Both backends.

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use tuanbot::service::wishes as svc;
use tuanbot::store::{orgs, wishes};

use crate::helpers::{TestDb, output_within, script, texts};

const WISHES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/wishes.csv");
const ORGS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/orgs.csv");

/// An XLSX with these string cells (row, column, text), as Excel would
/// save it (rust_xlsxwriter also writes the `<dimension>` of the cells).
fn xlsx(cells: impl IntoIterator<Item = (u32, u16, String)>) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (r, c, t) in cells {
        sheet.write_string(r, c, t).unwrap();
    }
    book.save_to_buffer().unwrap()
}

/// The wish-list fixture as an XLSX.
fn wishes_xlsx() -> Vec<u8> {
    let text = std::fs::read_to_string(WISHES).unwrap();
    xlsx(text.lines().enumerate().flat_map(|(r, line)| {
        line.split(',')
            .enumerate()
            .map(move |(c, t)| (r as u32, c as u16, t.to_string()))
            .collect::<Vec<_>>()
    }))
}

/// Rewrite every entry of a zip through `edit(name, bytes)`.
fn rezip(bytes: &[u8], mut edit: impl FnMut(&str, Vec<u8>) -> Vec<u8>) -> Vec<u8> {
    let mut src = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for i in 0..src.len() {
        let mut entry = src.by_index(i).unwrap();
        let name = entry.name().unwrap().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        drop(entry);
        out.start_file(name.as_str(), options).unwrap();
        out.write_all(&edit(&name, data)).unwrap();
    }
    out.finish().unwrap().into_inner()
}

/// Replace `from` by `to` in the entry `part`.
fn patch(bytes: &[u8], part: &str, from: &str, to: &str) -> Vec<u8> {
    rezip(bytes, |name, data| {
        if name != part {
            return data;
        }
        let text = String::from_utf8(data).unwrap();
        assert!(text.contains(from), "{part} has no {from}: {text}");
        text.replacen(from, to, 1).into_bytes()
    })
}

/// Declare `size` as the uncompressed size of `part`, in its local header
/// and in the central directory, leaving its data as it is.
fn forge_size(bytes: &[u8], part: &str, size: u32) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let le16 = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]) as usize;
    let mut hits = 0;
    for at in 0..out.len().saturating_sub(46) {
        // (signature, offset of the size, of the name's length, of the name)
        let (size_at, len_at, name_at) = match &out[at..at + 4] {
            [0x50, 0x4b, 0x03, 0x04] => (22, 26, 30),
            [0x50, 0x4b, 0x01, 0x02] => (24, 28, 46),
            _ => continue,
        };
        let len = le16(&out, at + len_at);
        if out.get(at + name_at..at + name_at + len) == Some(part.as_bytes()) {
            out[at + size_at..at + size_at + 4].copy_from_slice(&size.to_le_bytes());
            hits += 1;
        }
    }
    assert_eq!(hits, 2, "{part}: local header and central directory");
    out
}

const SHEET: &str = "xl/worksheets/sheet1.xml";

/// Each hostile file: (file name, bytes, the line the user gets, zh-CN).
fn hostile() -> Vec<(&'static str, Vec<u8>, String)> {
    let spaces = |n: usize| " ".repeat(n);
    let mut wide = "学校".to_string();
    wide.push_str(&",列".repeat(50));
    wide.push('\n');
    let mut long_list = String::from("学校,学生,心愿\n");
    for i in 0..=tuanbot::table::MAX_ROWS {
        long_list.push_str(&format!("一小,学生{i},字典\n"));
    }
    // 20 MB, under the download limit by a little.
    let twenty = tuanbot::chat::files::MAX_FILE_BYTES - 16;
    vec![
        // The file: two cells, used range A1:XFD1048576.
        (
            "two-cells.xlsx",
            xlsx([
                (0, 0, "学校".to_string()),
                (1_048_575, 16_383, "x".to_string()),
            ]),
            "第 1048576 行超过 50 列".to_string(),
        ),
        // 50 MB of spaces inside the sheet: packed about a thousand to one.
        (
            "bomb.xlsx",
            patch(&wishes_xlsx(), SHEET, "</worksheet>", &{
                let mut s = spaces(50 << 20);
                s.push_str("</worksheet>");
                s
            }),
            format!("表格解压后大得反常（{SHEET}）"),
        ),
        // A part that declares 1 GB.
        (
            "declared.xlsx",
            forge_size(&wishes_xlsx(), SHEET, 1 << 30),
            format!("表格解压后大得反常（{SHEET}）"),
        ),
        // A part that declares 2 KB and inflates to 800 KB: the zip reader
        // stops at the declared size.
        (
            "lying.xlsx",
            forge_size(
                &patch(&wishes_xlsx(), SHEET, "</worksheet>", &{
                    let mut s = spaces(800 << 10);
                    s.push_str("</worksheet>");
                    s
                }),
                SHEET,
                2048,
            ),
            "不是能读的 .xlsx 文件".to_string(),
        ),
        // A shared-string table announcing a trillion strings (calamine
        // would reserve room for them first).
        (
            "strings.xlsx",
            {
                let book = wishes_xlsx();
                let mut sst = String::new();
                zip::ZipArchive::new(Cursor::new(&book))
                    .unwrap()
                    .by_name("xl/sharedStrings.xml")
                    .unwrap()
                    .read_to_string(&mut sst)
                    .unwrap();
                let at = sst.find("uniqueCount=\"").unwrap() + 13;
                let n = &sst[at..at + sst[at..].find('"').unwrap()];
                patch(
                    &book,
                    "xl/sharedStrings.xml",
                    &format!("uniqueCount=\"{n}\""),
                    "uniqueCount=\"1000000000000\"",
                )
            },
            "表格解压后大得反常（xl/sharedStrings.xml）".to_string(),
        ),
        // 20 MB on one line: ten million columns.
        (
            "line.csv",
            "a,".repeat(twenty / 2).into_bytes(),
            "第 1 行超过 50 列".to_string(),
        ),
        // 20 MB in one cell.
        (
            "cell.csv",
            "字".repeat(twenty / 3).into_bytes(),
            "第 1 行有一格超过 32767 个字".to_string(),
        ),
        (
            "rows.csv",
            long_list.clone().into_bytes(),
            "表格超过 5000 行（不含表头）".to_string(),
        ),
        (
            "rows.xlsx",
            xlsx(long_list.lines().enumerate().flat_map(|(r, l)| {
                l.split(',')
                    .enumerate()
                    .map(move |(c, t)| (r as u32, c as u16, t.to_string()))
                    .collect::<Vec<_>>()
            })),
            "表格超过 5000 行（不含表头）".to_string(),
        ),
        (
            "columns.csv",
            wide.into_bytes(),
            "第 1 行超过 50 列".to_string(),
        ),
        (
            "old.xls",
            b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1".to_vec(),
            "旧版 .xls".to_string(),
        ),
    ]
}

/// Write the hostile files into `dir`.
fn write_hostile(dir: &Path) -> Vec<(PathBuf, String)> {
    hostile()
        .into_iter()
        .map(|(name, bytes, line)| {
            assert!(
                bytes.len() <= tuanbot::chat::files::MAX_FILE_BYTES,
                "{name}"
            );
            let path = dir.join(name);
            std::fs::write(&path, bytes).unwrap();
            (path, line)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_files_are_refused_by_every_importer() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_hostile(dir.path());
    for db in TestDb::both().await {
        let b = db.backend;
        let store = db.store().await;
        for (path, line) in &files {
            let err = svc::import_file(&store, path, "坏批次", "zh-CN")
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains(line.as_str()), "{b}: wishes {path:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{err}");
            let err = tuanbot::app::import_orgs_file(&store, path, "zh-CN", |_, _| {})
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains(line.as_str()), "{b}: orgs {path:?}: {err}");
            let err = tuanbot::faq::read_file(path, "zh-CN").unwrap_err();
            assert!(err.contains(line.as_str()), "{b}: faq {path:?}: {err}");
        }
        let mut conn = store.conn().await.unwrap();
        assert!(
            wishes::batch_by_name(&mut conn, "坏批次")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(orgs::count(&mut conn).await.unwrap(), 0, "{b}");
    }
}

/// In a chat, staff get one line per file, and the bot goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_files_in_chat_get_one_line_each() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_hostile(dir.path());
    let mut body = String::from(":admin zhang\n:as zhang 团县委小张\n:chat g1 group\n");
    for (i, (path, _)) in files.iter().enumerate() {
        body.push_str(&format!(":file {}\n/wishes import 批{i}\n", path.display()));
    }
    body.push_str(&format!(":file {WISHES}\n/wishes import 好批\n"));
    for db in TestDb::both().await {
        let t = texts(&script(&db, &body, true).await);
        assert_eq!(t.len(), files.len() + 1, "{}: {t:#?}", db.backend);
        for ((path, line), reply) in files.iter().zip(&t) {
            assert_eq!(
                reply.lines().count(),
                1,
                "{}: {path:?}: {reply}",
                db.backend
            );
            assert!(
                reply.starts_with("读不了这个文件：") && reply.contains(line.as_str()),
                "{}: {path:?}: {reply}",
                db.backend
            );
        }
        assert!(
            t[files.len()].contains("已导入「好批」：800 个微心愿"),
            "{t:?}"
        );
    }
}

/// The binary itself, on the files that used to abort it: an error line
/// and exit code 1, not a signal.
#[tokio::test]
async fn the_cli_refuses_hostile_files_and_exits_normally() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_hostile(dir.path());
    for db in TestDb::both().await {
        for (path, line) in files.iter().take(2) {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tuanbot"));
            cmd.env_remove("TELOXIDE_TOKEN")
                .env("TUANBOT_DATABASE_URL", &db.url)
                .env("TUANBOT_LOG", "warn")
                .current_dir(std::env::temp_dir())
                .args(["import", "wishes"])
                .arg(path)
                .args(["--batch", "坏批次"]);
            let out = output_within(&mut cmd, "tuanbot import wishes");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{}: {stderr}", db.backend);
            assert!(stderr.contains(line.as_str()), "{}: {stderr}", db.backend);
        }
    }
}

/// GBK (Excel's "CSV (逗号分隔)" on Chinese Windows), UTF-16 (its "Unicode
/// text", tab-separated) and UTF-8 with a BOM are all read.
#[tokio::test]
async fn csv_in_gbk_utf16_and_utf8_bom_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let utf8 = std::fs::read_to_string(WISHES).unwrap();
    let (gbk, _, bad) = encoding_rs::GBK.encode(&utf8);
    assert!(!bad && std::str::from_utf8(&gbk).is_err());
    let gbk_path = dir.path().join("心愿-gbk.csv");
    std::fs::write(&gbk_path, &gbk).unwrap();
    let mut utf16 = vec![0xFF, 0xFE];
    for u in utf8.replace(',', "\t").encode_utf16() {
        utf16.extend_from_slice(&u.to_le_bytes());
    }
    let utf16_path = dir.path().join("心愿.txt");
    std::fs::write(&utf16_path, utf16).unwrap();
    let bom_path = dir.path().join("心愿-bom.csv");
    std::fs::write(
        &bom_path,
        [b"\xEF\xBB\xBF".as_slice(), utf8.as_bytes()].concat(),
    )
    .unwrap();
    let orgs_text = std::fs::read_to_string(ORGS).unwrap();
    let orgs_path = dir.path().join("组织-gbk.csv");
    std::fs::write(&orgs_path, encoding_rs::GB18030.encode(&orgs_text).0).unwrap();
    for db in TestDb::both().await {
        let b = db.backend;
        let store = db.store().await;
        for (i, path) in [&gbk_path, &utf16_path, &bom_path].into_iter().enumerate() {
            let name = format!("批{i}");
            let n = svc::import_file(&store, path, &name, "zh-CN")
                .await
                .unwrap_or_else(|e| panic!("{b}: {path:?}: {e}"));
            assert_eq!(n, 800, "{b}: {path:?}");
            let mut conn = store.conn().await.unwrap();
            let batch = wishes::batch_by_name(&mut conn, &name)
                .await
                .unwrap()
                .unwrap();
            let w = wishes::wish(&mut conn, batch.id, 2).await.unwrap().unwrap();
            assert_eq!(
                (w.school.as_str(), w.child.as_str(), w.item.as_str()),
                ("白沙乡中心小学", "毛轩", "成语辞典1本"),
                "{b}: {path:?}"
            );
        }
        let s = tuanbot::app::import_orgs_file(&store, &orgs_path, "zh-CN", |_, _| {})
            .await
            .unwrap();
        assert_eq!(s.inserted, 54, "{b}");
        // In a chat too.
        let t = texts(
            &script(
                &db,
                &format!(
                    ":admin zhang\n:as zhang 团县委小张\n:chat g1 group\n:file {}\n/wishes import 聊天批\n",
                    gbk_path.display()
                ),
                true,
            )
            .await,
        );
        assert!(
            t[0].contains("已导入「聊天批」：800 个微心愿"),
            "{b}: {t:?}"
        );
    }
}

/// A sheet whose `<dimension>` claims the whole grid is read by its cells;
/// tables at exactly the limits are read.
#[tokio::test]
async fn sheets_are_read_by_their_cells_up_to_the_limits() {
    let dir = tempfile::tempdir().unwrap();
    let book = wishes_xlsx();
    let lying = patch(
        &book,
        SHEET,
        "<dimension ref=\"A1:F801\"/>",
        "<dimension ref=\"A1:XFD1048576\"/>",
    );
    let lying_path = dir.path().join("整表.xlsx");
    std::fs::write(&lying_path, lying).unwrap();
    let mut full = String::from("学校,学生,心愿");
    full.push_str(&",备用".repeat(tuanbot::table::MAX_COLUMNS - 3));
    full.push('\n');
    for i in 0..tuanbot::table::MAX_ROWS {
        full.push_str(&format!("一小,学生{i},字典\n"));
    }
    // Empty columns past the limit (trailing commas) don't count.
    full = full.replacen('\n', &format!("{}\n", ",".repeat(20)), 1);
    let full_path = dir.path().join("满.csv");
    std::fs::write(&full_path, full).unwrap();
    for db in TestDb::both().await {
        let store = db.store().await;
        let n = svc::import_file(&store, &lying_path, "整表", "zh-CN")
            .await
            .unwrap();
        assert_eq!(n, 800, "{}", db.backend);
        let n = svc::import_file(&store, &full_path, "满", "zh-CN")
            .await
            .unwrap();
        assert_eq!(n, tuanbot::table::MAX_ROWS, "{}", db.backend);
    }
    let orgs = tuanbot::table::Table::read(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/orgs.xlsx"
    )))
    .unwrap();
    assert_eq!(orgs.rows.len(), 54);
}
