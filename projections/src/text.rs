//! Text that cannot deceive: the rules every free-text field of a command obeys, whatever its
//! length limit, so that what a resident reads on the board is what was signed.
//!
//! - No control characters (a line break and a tab are allowed in multi-line fields only) and no
//!   bidirectional formatting characters, which can make a title read backwards or hide a
//!   word inside another.
//! - Something visible: a letter, digit, punctuation mark or symbol that is not one of Unicode's
//!   default-ignorable characters (a title made of a zero-width space or a Hangul filler reads
//!   as empty).
//! - Unicode NFC. The signed bytes are what the log keeps, so the server cannot normalise them
//!   itself; it refuses text that is not in the normal form, and the client normalises before
//!   signing. Two texts that look alike by composition then have the same bytes.
//!
//! `confusable_pair` finds two options of one poll that look identical (Latin "Yes" against a
//! "Yеs" with a Cyrillic `е`), by the skeleton of UTS #39 (the `unicode-security` crate).

use unicode_normalization::is_nfc;
use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};
use unicode_security::general_security_profile::IdentifierType;
use unicode_security::GeneralSecurityProfile;

/// Whether a field may hold several lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lines {
    One,
    Many,
}

/// Why a text is refused, whatever the field; the caller names the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TextProblem {
    #[error("contains a control character")]
    Control,
    #[error("contains a bidirectional formatting character")]
    Bidirectional,
    #[error("shows nothing: it is only blank or invisible characters")]
    Invisible,
    #[error("is not in Unicode normalization form C (NFC); normalise it before signing")]
    NotNfc,
}

/// The explicit bidirectional formatting characters (Unicode's Bidi_Control property): embeddings,
/// overrides, isolates and the marks.
fn is_bidirectional_control(character: char) -> bool {
    matches!(
        character,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

fn is_visible(character: char) -> bool {
    let shows = matches!(
        character.general_category_group(),
        GeneralCategoryGroup::Letter
            | GeneralCategoryGroup::Number
            | GeneralCategoryGroup::Punctuation
            | GeneralCategoryGroup::Symbol
    );
    shows && character.identifier_type() != Some(IdentifierType::Default_Ignorable)
}

/// Checks the rules above; the length limits stay with each field.
pub fn check(text: &str, lines: Lines) -> Result<(), TextProblem> {
    for character in text.chars() {
        let allowed_control = lines == Lines::Many && matches!(character, '\n' | '\t');
        if character.is_control() && !allowed_control {
            return Err(TextProblem::Control);
        }
        if is_bidirectional_control(character) {
            return Err(TextProblem::Bidirectional);
        }
    }
    if !text.chars().any(is_visible) {
        return Err(TextProblem::Invisible);
    }
    if !is_nfc(text) {
        return Err(TextProblem::NotNfc);
    }
    Ok(())
}

/// A required field of 1 to `chars_max` characters that obeys `check`; the reason, if not,
/// starts with `what` ("a title").
pub fn check_field(what: &str, text: &str, lines: Lines, chars_max: usize) -> Result<(), String> {
    if text.trim().is_empty() || text.chars().count() > chars_max {
        return Err(format!("{what} has 1 to {chars_max} characters"));
    }
    check(text, lines).map_err(|problem| format!("{what} {problem}"))
}

/// The first two of `texts` (by index) that look the same: equal UTS #39 skeletons.
pub fn confusable_pair(texts: &[String]) -> Option<(usize, usize)> {
    let skeletons: Vec<String> = texts
        .iter()
        .map(|text| unicode_security::skeleton(text.trim()).collect())
        .collect();
    (0..skeletons.len()).find_map(|second| {
        (0..second)
            .find(|&first| skeletons[first] == skeletons[second])
            .map(|first| (first, second))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_that_deceives_is_refused_for_its_reason() {
        use Lines::{Many, One};
        // Each expected outcome, with the texts (and where they stand) that must meet it.
        type Texts<'a> = &'a [(&'a str, Lines)];
        let cases: &[(Result<(), TextProblem>, Texts)] = &[
            (
                Ok(()),
                &[
                    ("Repair the bridge", One),
                    ("Two lines\nand a\ttab", Many),
                    ("Caf\u{e9}", One),
                    ("Улица Ленина, 5", One),
                    ("😀", One),
                ],
            ),
            (
                Err(TextProblem::Control),
                &[
                    ("Two lines\nin a title", One),
                    ("a NUL \u{0} inside", Many),
                    ("bell \u{7}", One),
                    ("carriage\rreturn", Many),
                ],
            ),
            (
                Err(TextProblem::Bidirectional),
                &[
                    ("abc \u{202E}fed", One),
                    ("isolate \u{2067}x\u{2069}", Many),
                    ("mark \u{200F}", One),
                ],
            ),
            (
                Err(TextProblem::Invisible),
                &[
                    ("\u{200B}", One),
                    ("\u{3164}\u{3164}", One),
                    (" \u{00A0}\u{2060}\u{FEFF} ", One),
                    ("", Many),
                ],
            ),
            (Err(TextProblem::NotNfc), &[("Cafe\u{301}", One)]),
        ];
        for (expected, texts) in cases {
            for (text, lines) in *texts {
                assert_eq!(check(text, *lines), *expected, "{text:?}");
            }
        }
    }

    #[test]
    fn options_that_look_identical_are_found_and_different_ones_are_not() {
        let options = |texts: &[&str]| {
            texts
                .iter()
                .map(|text| text.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            confusable_pair(&options(&["Yes", "No", "Y\u{435}s"])),
            Some((0, 2))
        );
        assert_eq!(confusable_pair(&options(&["rn", "m"])), Some((0, 1)));
        assert_eq!(confusable_pair(&options(&["Да", "Нет", "Yes", "No"])), None);
        assert_eq!(
            confusable_pair(&options(&["Option 1", "Option l"])),
            Some((0, 1))
        );
    }
}
