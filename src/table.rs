//! Reading tabular files staff hand us: CSV (UTF-8, with or without BOM, or
//! GBK-free UTF-8 exported from WPS/Excel) and XLSX (first sheet).

use std::path::Path;

use calamine::{Data, Reader, open_workbook_auto};

/// A table: the header row and the data rows, each cell trimmed. `line` is
/// the 1-based row number in the file (the header is row 1).
#[derive(Debug, Clone)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<(usize, Vec<String>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("XLSX: {0}")]
    Xlsx(String),
    #[error("unsupported file type (use .csv or .xlsx)")]
    UnsupportedType,
    #[error("the file has no header row")]
    Empty,
}

impl Table {
    /// Read a `.csv`, `.xlsx` or `.xls` file by its extension.
    pub fn read(path: &Path) -> Result<Table, TableError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        match ext.as_str() {
            "csv" | "txt" => Table::from_csv(&std::fs::read(path)?),
            "xlsx" | "xlsm" | "xls" | "ods" => Table::from_workbook(path),
            _ => Err(TableError::UnsupportedType),
        }
    }

    pub fn from_csv(bytes: &[u8]) -> Result<Table, TableError> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(bytes);
        let mut all = Vec::new();
        for (i, record) in reader.records().enumerate() {
            let record = record?;
            all.push((i + 1, record.iter().map(|c| c.trim().to_string()).collect()));
        }
        Table::from_rows(all)
    }

    /// Read a file received in chat: `name` (its file name) picks the format.
    pub fn from_bytes(name: &str, bytes: &[u8]) -> Result<Table, TableError> {
        let ext = name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "csv" | "txt" => Table::from_csv(bytes),
            "xlsx" | "xlsm" | "xls" | "ods" => {
                let book =
                    calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes.to_vec()))
                        .map_err(|e| TableError::Xlsx(e.to_string()))?;
                Table::from_sheets(book)
            }
            _ => Err(TableError::UnsupportedType),
        }
    }

    fn from_workbook(path: &Path) -> Result<Table, TableError> {
        let book = open_workbook_auto(path).map_err(|e| TableError::Xlsx(e.to_string()))?;
        Table::from_sheets(book)
    }

    fn from_sheets<RS: std::io::Read + std::io::Seek>(
        mut book: calamine::Sheets<RS>,
    ) -> Result<Table, TableError> {
        let range = book
            .worksheet_range_at(0)
            .ok_or(TableError::Empty)?
            .map_err(|e| TableError::Xlsx(e.to_string()))?;
        let rows = range
            .rows()
            .enumerate()
            .map(|(i, r)| (i + 1, r.iter().map(cell_text).collect()))
            .collect();
        Table::from_rows(rows)
    }

    fn from_rows(mut all: Vec<(usize, Vec<String>)>) -> Result<Table, TableError> {
        all.retain(|(_, r)| r.iter().any(|c| !c.is_empty()));
        if all.is_empty() {
            return Err(TableError::Empty);
        }
        let (_, header) = all.remove(0);
        Ok(Table { header, rows: all })
    }

    /// Index of the first column whose header is one of `names`.
    pub fn column(&self, names: &[&str]) -> Option<usize> {
        self.header
            .iter()
            .position(|h| names.iter().any(|n| h.trim() == *n))
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
