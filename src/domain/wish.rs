//! Micro-wish values: the number of a wish in its batch, its status, and the
//! masking of a child's name for group chats.

use std::fmt;

/// Largest batch we accept (and so the largest wish number).
pub const MAX_WISHES: u32 = 5000;

/// A wish number within a batch, 1..=[`MAX_WISHES`]. Numbers are assigned at
/// import in file order and never change, so "认领 12" means the same wish
/// to everyone who saw the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WishNo(u32);

impl WishNo {
    pub fn new(n: u32) -> Option<WishNo> {
        (1..=MAX_WISHES).contains(&n).then_some(WishNo(n))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for WishNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a wish is in its life: 待认领 → 已认领 → 已圆梦, or 已下架.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WishStatus {
    Open,
    Claimed,
    Delivered,
    Revoked,
}

impl WishStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WishStatus::Open => "open",
            WishStatus::Claimed => "claimed",
            WishStatus::Delivered => "delivered",
            WishStatus::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<WishStatus> {
        [
            WishStatus::Open,
            WishStatus::Claimed,
            WishStatus::Delivered,
            WishStatus::Revoked,
        ]
        .into_iter()
        .find(|w| w.as_str() == s)
    }
}

/// A child's name as shown in a group: the family name, a star for each
/// hidden character, and the last character for names of three or more
/// (`毛轩` → `毛*`, `张小明` → `张*明`, `欧阳娜娜` → `欧**娜`).
pub fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.trim().chars().collect();
    match chars.len() {
        0 => String::new(),
        1 => "*".to_string(),
        2 => format!("{}*", chars[0]),
        n => format!("{}{}{}", chars[0], "*".repeat(n - 2), chars[n - 1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(mask_name("毛轩"), "毛*");
        assert_eq!(mask_name("张小明"), "张*明");
        assert_eq!(mask_name("欧阳娜娜"), "欧**娜");
        assert_eq!(mask_name("李"), "*");
        assert_eq!(mask_name(""), "");
    }

    #[test]
    fn numbers() {
        assert!(WishNo::new(0).is_none());
        assert_eq!(WishNo::new(12).map(WishNo::get), Some(12));
        assert!(WishNo::new(MAX_WISHES + 1).is_none());
        for s in ["open", "claimed", "delivered", "revoked"] {
            assert_eq!(WishStatus::parse(s).map(WishStatus::as_str), Some(s));
        }
    }
}
