//! Plain text: the decoded text goes through normalisation unchanged.

use super::builder::TextBuilder;

pub(crate) fn parse(text: &str, b: &mut TextBuilder) {
    b.push_str(text);
}
