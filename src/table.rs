//! Reading tabular files staff hand us (wish lists, org lists, FAQ tables),
//! from the CLI or from a chat: CSV (UTF-8 with or without BOM, UTF-16
//! with BOM, else GBK/GB18030 as Excel on Chinese Windows saves it) and
//! XLSX (the first sheet).
//!
//! Every file is hostile until read: its size, its rows (at most
//! [`MAX_ROWS`] below the header), its columns ([`MAX_COLUMNS`]) and its
//! cells ([`MAX_CELL_CHARS`]) are checked while it is read, before anything
//! is kept, and an XLSX's zip entries are checked in the central directory
//! before any of them is inflated. A sheet's declared dimension is never
//! trusted: cells are read one by one (calamine's cell reader), never as a
//! dense range (a two-cell sheet whose used range is A1:XFD1048576 would
//! ask for 549 GB). Old `.xls` and `.ods` workbooks are refused: calamine
//! materialises them densely when it opens them, with no way to stop it.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::path::Path;

use calamine::{Data, Reader};
use rust_i18n::t;

use crate::chat::files::MAX_FILE_BYTES;

/// Most data rows (below the header) a table may have: a wish batch's
/// limit ([`crate::domain::wish::MAX_WISHES`]), far above an org list.
pub const MAX_ROWS: usize = 5_000;
/// Most columns a table may use (a wish list has six).
pub const MAX_COLUMNS: usize = 50;
/// Longest cell, in characters: Excel's own limit.
pub const MAX_CELL_CHARS: usize = 32_767;
/// Largest expanded XLSX part (a 5,000 × 50 sheet is about 15 MB of XML).
pub const MAX_PART_BYTES: u64 = 64 << 20;
/// Highest compression ratio of an XLSX part past [`RATIO_GRACE_BYTES`]
/// (Apache POI's zip-bomb rule: real sheets compress 5–20×, a bomb ~1000×).
pub const MAX_RATIO: u64 = 100;
const RATIO_GRACE_BYTES: u64 = 1 << 20;
/// Most shared strings an XLSX may announce: calamine reserves room for the
/// announced count before it reads one.
const MAX_SHARED_STRINGS: u64 = 1_000_000;

/// A table: the header row and the data rows, each cell trimmed; rows with
/// no text at all are left out. `line` is the 1-based row number in the
/// file (the header is usually row 1).
#[derive(Debug, Clone)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<(usize, Vec<String>)>,
}

/// Why a file can't be read as a table. `Display` is for logs and the
/// CLI's English; [`TableError::message`] is the line for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("{0}")]
    Io(String),
    #[error("unsupported file type (use .csv or .xlsx)")]
    UnsupportedType,
    #[error("an .xls or .ods workbook: save it as .xlsx or .csv first")]
    OldWorkbook,
    #[error("not a readable XLSX file ({0})")]
    Xlsx(String),
    #[error("the file has no header row")]
    Empty,
    #[error("larger than {} MB", MAX_FILE_BYTES >> 20)]
    TooBig,
    #[error("more than {MAX_ROWS} rows below the header")]
    TooManyRows,
    #[error("row {0} uses more than {MAX_COLUMNS} columns")]
    TooManyColumns(usize),
    #[error("row {0} has a cell longer than {MAX_CELL_CHARS} characters")]
    CellTooLong(usize),
    #[error("the part {0} expands too far (over 64 MB, or 100 times its packed size)")]
    Expands(String),
}

impl TableError {
    /// One line for the user, in `locale`.
    pub fn message(&self, locale: &str) -> String {
        let l = locale;
        match self {
            TableError::Io(e) => t!("files.table.io", locale = l, error = e).into_owned(),
            TableError::UnsupportedType => t!("files.table.unsupported", locale = l).into_owned(),
            TableError::OldWorkbook => t!("files.table.old_workbook", locale = l).into_owned(),
            TableError::Xlsx(e) => t!(
                "files.table.not_xlsx",
                locale = l,
                error = crate::service::clip(e, 60)
            )
            .into_owned(),
            TableError::Empty => t!("files.table.empty", locale = l).into_owned(),
            TableError::TooBig => {
                t!("files.too_big", locale = l, mb = MAX_FILE_BYTES >> 20).into_owned()
            }
            TableError::TooManyRows => {
                t!("files.table.too_many_rows", locale = l, max = MAX_ROWS).into_owned()
            }
            TableError::TooManyColumns(line) => t!(
                "files.table.too_many_columns",
                locale = l,
                line = line,
                max = MAX_COLUMNS
            )
            .into_owned(),
            TableError::CellTooLong(line) => t!(
                "files.table.cell_too_long",
                locale = l,
                line = line,
                max = MAX_CELL_CHARS
            )
            .into_owned(),
            TableError::Expands(part) => t!(
                "files.table.expands",
                locale = l,
                part = crate::service::clip(part, 40)
            )
            .into_owned(),
        }
    }
}

/// The formats we read, by the file name's extension.
enum Kind {
    Csv,
    Xlsx,
}

fn kind(name: &str) -> Result<Kind, TableError> {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "csv" | "txt" | "tsv" => Ok(Kind::Csv),
        "xlsx" | "xlsm" => Ok(Kind::Xlsx),
        "xls" | "ods" | "et" => Err(TableError::OldWorkbook),
        _ => Err(TableError::UnsupportedType),
    }
}

impl Table {
    /// Read a `.csv` or `.xlsx` file on this machine (the CLI's imports),
    /// within the same limits as a file received in chat.
    pub fn read(path: &Path) -> Result<Table, TableError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        kind(&name)?;
        Table::from_bytes(&name, &read_capped(path)?)
    }

    /// Read a file received in chat: `name` (its file name) picks the format.
    pub fn from_bytes(name: &str, bytes: &[u8]) -> Result<Table, TableError> {
        let kind = kind(name)?;
        if bytes.len() > MAX_FILE_BYTES {
            return Err(TableError::TooBig);
        }
        match kind {
            Kind::Csv => Table::from_csv(bytes),
            Kind::Xlsx => Table::from_xlsx(bytes),
        }
    }

    /// Read CSV bytes in whatever encoding Excel or WPS saved them.
    pub fn from_csv(bytes: &[u8]) -> Result<Table, TableError> {
        let text = decode(bytes);
        let mut rows = Rows::default();
        csv_records(&text, &mut rows)?;
        rows.finish()
    }

    fn from_xlsx(bytes: &[u8]) -> Result<Table, TableError> {
        check_zip(bytes)?;
        let err = |e: calamine::XlsxError| TableError::Xlsx(e.to_string());
        let mut book: calamine::Xlsx<_> = calamine::Xlsx::new(Cursor::new(bytes)).map_err(err)?;
        let Some(first) = book.sheet_names().first().cloned() else {
            return Err(TableError::Empty);
        };
        let mut cells = book.worksheet_cells_reader(&first).map_err(err)?;
        // Cells arrive in the XML's order, which a hostile file need not
        // keep sorted: rows are gathered by number.
        let mut by_row: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        while let Some(cell) = cells.next_cell().map_err(err)? {
            let text = cell_text(&Data::from(cell.get_value().clone()));
            if text.is_empty() {
                continue;
            }
            let (r, c) = cell.get_position();
            let (line, col) = (r as usize + 1, c as usize);
            if col >= MAX_COLUMNS {
                return Err(TableError::TooManyColumns(line));
            }
            if text.chars().count() > MAX_CELL_CHARS {
                return Err(TableError::CellTooLong(line));
            }
            if !by_row.contains_key(&r) && by_row.len() > MAX_ROWS {
                return Err(TableError::TooManyRows);
            }
            let row = by_row.entry(r).or_default();
            if row.len() <= col {
                row.resize(col + 1, String::new());
            }
            row[col] = text;
        }
        let mut rows = Rows::default();
        for (r, cells) in by_row {
            rows.add(r as usize + 1, cells)?;
        }
        rows.finish()
    }

    /// Index of the first column whose header is one of `names`.
    pub fn column(&self, names: &[&str]) -> Option<usize> {
        self.header
            .iter()
            .position(|h| names.iter().any(|n| h.trim() == *n))
    }
}

/// A regular file's bytes, refused past [`MAX_FILE_BYTES`] without reading
/// more than that.
pub fn read_capped(path: &Path) -> Result<Vec<u8>, TableError> {
    let io = |e: std::io::Error| TableError::Io(e.to_string());
    let file = std::fs::File::open(path).map_err(io)?;
    if !file.metadata().map_err(io)?.is_file() {
        return Err(TableError::Io("not a regular file".into()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(TableError::TooBig);
    }
    Ok(bytes)
}

/// The rows kept so far, with the row cap applied as they come.
#[derive(Default)]
struct Rows(Vec<(usize, Vec<String>)>);

impl Rows {
    fn add(&mut self, line: usize, cells: Vec<String>) -> Result<(), TableError> {
        if cells.iter().all(|c| c.is_empty()) {
            return Ok(());
        }
        // The header and MAX_ROWS rows below it.
        if self.0.len() > MAX_ROWS {
            return Err(TableError::TooManyRows);
        }
        self.0.push((line, cells));
        Ok(())
    }

    fn finish(mut self) -> Result<Table, TableError> {
        if self.0.is_empty() {
            return Err(TableError::Empty);
        }
        let (_, header) = self.0.remove(0);
        Ok(Table {
            header,
            rows: self.0,
        })
    }
}

/// Text from bytes: UTF-8 (a BOM dropped) when the bytes are valid UTF-8,
/// UTF-16 when a BOM says so, else GB18030 (a superset of GBK, what Excel
/// on Chinese Windows writes for "CSV (逗号分隔)", and Notepad for "ANSI").
pub fn decode(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        return text.into();
    }
    if let Some((encoding, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, _) = encoding.decode_without_bom_handling(&bytes[bom..]);
        return text;
    }
    let (text, _) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
    text
}

/// The delimiter: a tab when the first line has tabs and no comma (Excel's
/// "Unicode text" and `.tsv`), else a comma.
fn delimiter(text: &str) -> u8 {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if first.contains('\t') && !first.contains(',') {
        b'\t'
    } else {
        b','
    }
}

/// Parse CSV `text` into `rows`, one field at a time (csv-core), refusing
/// a record that uses more than [`MAX_COLUMNS`] columns or a cell over
/// [`MAX_CELL_CHARS`] before either is kept: a 20 MB line of commas costs
/// no more memory than the text itself. Records are numbered as the `csv`
/// crate numbers them (it is csv-core underneath).
fn csv_records(text: &str, rows: &mut Rows) -> Result<(), TableError> {
    use csv_core::{ReadFieldResult, ReaderBuilder};
    let mut reader = ReaderBuilder::new().delimiter(delimiter(text)).build();
    let mut input = text.as_bytes();
    let mut field = vec![0u8; 4096];
    let mut len = 0;
    let mut record: Vec<String> = Vec::new();
    let mut column = 0;
    let mut line = 1;
    loop {
        let (result, read, wrote) = reader.read_field(input, &mut field[len..]);
        input = &input[read..];
        len += wrote;
        match result {
            // All input handed over; the next call (with nothing) ends it.
            ReadFieldResult::InputEmpty => {}
            ReadFieldResult::OutputFull => {
                if field.len() > MAX_CELL_CHARS * 4 {
                    return Err(TableError::CellTooLong(line));
                }
                field.resize(field.len() * 2, 0);
            }
            ReadFieldResult::Field { record_end } => {
                // csv-core splits on ASCII bytes only: valid UTF-8 in,
                // valid UTF-8 out.
                let cell = String::from_utf8_lossy(&field[..len]);
                let cell = cell.trim();
                len = 0;
                if !cell.is_empty() {
                    if column >= MAX_COLUMNS {
                        return Err(TableError::TooManyColumns(line));
                    }
                    if cell.chars().count() > MAX_CELL_CHARS {
                        return Err(TableError::CellTooLong(line));
                    }
                }
                if column < MAX_COLUMNS {
                    record.push(cell.to_string());
                }
                column += 1;
                if record_end {
                    rows.add(line, std::mem::take(&mut record))?;
                    column = 0;
                    line += 1;
                }
            }
            ReadFieldResult::End => return Ok(()),
        }
    }
}

/// Check an XLSX's zip entries in its central directory, before anything is
/// inflated: no part may expand past [`MAX_PART_BYTES`], or past
/// [`MAX_RATIO`] times its packed size once over 1 MB (the zip reader
/// stops any part at its declared size, so a part cannot lie its way
/// past this), and the shared-string table may not announce more strings
/// than [`MAX_SHARED_STRINGS`].
fn check_zip(bytes: &[u8]) -> Result<(), TableError> {
    let err = |e: zip::result::ZipError| TableError::Xlsx(e.to_string());
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(err)?;
    let mut shared = None;
    for i in 0..zip.len() {
        let entry = zip.by_index_data(i).map_err(err)?;
        let (size, packed) = (entry.size(), entry.compressed_size().max(1));
        let name = entry.name().map_err(err)?.into_owned();
        if size > MAX_PART_BYTES || (size > RATIO_GRACE_BYTES && size / packed > MAX_RATIO) {
            return Err(TableError::Expands(name));
        }
        if name.to_ascii_lowercase().ends_with("sharedstrings.xml") {
            shared = Some((i, name));
        }
    }
    let Some((i, name)) = shared else {
        return Ok(());
    };
    let part = zip.by_index(i).map_err(err)?;
    match announced_strings(std::io::BufReader::new(part)) {
        Some(n) if n > MAX_SHARED_STRINGS => Err(TableError::Expands(name)),
        _ => Ok(()),
    }
}

/// The `uniqueCount` the shared-string table's root element announces.
fn announced_strings(part: impl std::io::BufRead) -> Option<u64> {
    use quick_xml::events::Event;
    let mut xml = quick_xml::Reader::from_reader(part);
    let mut buf = Vec::new();
    loop {
        match xml.read_event_into(&mut buf).ok()? {
            Event::Start(e) | Event::Empty(e) => {
                let count = e.try_get_attribute("uniqueCount").ok()??;
                return count.value.trim().parse().ok();
            }
            Event::Eof => return None,
            _ => buf.clear(),
        }
    }
}

fn cell_text(c: &Data) -> String {
    match c {
        Data::Empty => String::new(),
        Data::String(s) => s.trim().to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Int(i) => i.to_string(),
        Data::Bool(b) => b.to_string(),
        other => other.to_string().trim().to_string(),
    }
}

/// Cell `i` of a row, empty when the row is short.
pub fn cell(row: &[String], i: Option<usize>) -> &str {
    i.and_then(|i| row.get(i)).map(String::as_str).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str) -> Result<Table, TableError> {
        Table::from_csv(text.as_bytes())
    }

    #[test]
    fn rows_are_numbered_as_the_csv_crate_numbers_them() {
        let text = "a,b\n\n1,\"two\nlines\"\n,\n3,4\r\n\"\",\"\"\n5\n";
        let ours = csv(text).unwrap();
        let mut theirs = Vec::new();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        for (i, r) in reader.records().enumerate() {
            let r: Vec<String> = r.unwrap().iter().map(|c| c.trim().to_string()).collect();
            if r.iter().any(|c| !c.is_empty()) {
                theirs.push((i + 1, r));
            }
        }
        assert_eq!(ours.header, theirs[0].1);
        assert_eq!(ours.rows, theirs[1..].to_vec());
        assert_eq!(ours.rows[0].1, ["1", "two\nlines"]);
    }

    #[test]
    fn encodings_excel_saves_are_read() {
        let text = "学校,学生\n永清镇中心小学,姚轩\n";
        let gbk = encoding_rs::GBK.encode(text).0;
        let bom = [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat();
        let mut utf16 = vec![0xFF, 0xFE];
        for u in text.replace(',', "\t").encode_utf16() {
            utf16.extend_from_slice(&u.to_le_bytes());
        }
        for bytes in [text.as_bytes(), &gbk, &bom, &utf16] {
            let t = Table::from_csv(bytes).unwrap();
            assert_eq!(t.header, ["学校", "学生"]);
            assert_eq!(t.rows, [(2, vec!["永清镇中心小学".into(), "姚轩".into()])]);
        }
    }

    #[test]
    fn limits_are_checked_as_the_file_is_read() {
        let mut wide = "x,".repeat(MAX_COLUMNS);
        assert!(csv(&wide).is_ok(), "exactly {MAX_COLUMNS} columns");
        wide.push('y');
        assert_eq!(csv(&wide).unwrap_err(), TableError::TooManyColumns(1));
        // Empty cells past the limit are not columns in use.
        assert!(csv(&format!("a,b{}\n1,2\n", ",".repeat(10_000))).is_ok());
        let long = "a\n".repeat(MAX_ROWS + 1);
        assert_eq!(csv(&long).unwrap().rows.len(), MAX_ROWS);
        assert_eq!(
            csv(&format!("{long}a\n")).unwrap_err(),
            TableError::TooManyRows
        );
        // Blank lines are not rows.
        assert!(csv(&format!("{long}\n,\n \n")).is_ok());
        let cell = "字".repeat(MAX_CELL_CHARS);
        assert!(csv(&format!("h\n{cell}\n")).is_ok());
        assert_eq!(
            csv(&format!("h\n{cell}字\n")).unwrap_err(),
            TableError::CellTooLong(2)
        );
        assert_eq!(csv("\n ,\n").unwrap_err(), TableError::Empty);
    }

    #[test]
    fn file_types_by_name() {
        let x = b"a\n".as_slice();
        assert!(Table::from_bytes("名单.CSV", x).is_ok());
        assert!(Table::from_bytes("名单.tsv", x).is_ok());
        for old in ["a.xls", "a.ods", "a.et"] {
            assert_eq!(
                Table::from_bytes(old, x).unwrap_err(),
                TableError::OldWorkbook
            );
        }
        assert_eq!(
            Table::from_bytes("a.pdf", x).unwrap_err(),
            TableError::UnsupportedType
        );
        assert!(matches!(
            Table::from_bytes("a.xlsx", b"not a zip"),
            Err(TableError::Xlsx(_))
        ));
        let big = vec![b'a'; MAX_FILE_BYTES + 1];
        assert_eq!(
            Table::from_bytes("a.csv", &big).unwrap_err(),
            TableError::TooBig
        );
    }

    #[test]
    fn every_error_has_a_line_in_both_languages() {
        for e in [
            TableError::Io("x".into()),
            TableError::UnsupportedType,
            TableError::OldWorkbook,
            TableError::Xlsx("x".into()),
            TableError::Empty,
            TableError::TooBig,
            TableError::TooManyRows,
            TableError::TooManyColumns(3),
            TableError::CellTooLong(3),
            TableError::Expands("xl/worksheets/sheet1.xml".into()),
        ] {
            for l in crate::i18n::SUPPORTED {
                let m = e.message(l);
                assert!(!m.starts_with("files.") && !m.contains("%{"), "{l}: {m}");
                assert_eq!(m.lines().count(), 1, "{m}");
            }
        }
        assert_eq!(
            TableError::TooManyRows.message("zh-CN"),
            "表格超过 5000 行（不含表头），请分成几个文件。"
        );
    }
}
