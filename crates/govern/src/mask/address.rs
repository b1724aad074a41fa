//! ADDRESS: postal addresses and places, assembled from words.
//!
//! An address is a run of tokens that look like address parts — house numbers, capitalised
//! street and town names, street-type words, unit words, postcodes, countries, short state codes
//! — around an **anchor** that proves it is an address:
//!
//! - a street-type word (`Road`, `St`, `rue`, `Via`, `calle`, `utca`, …) or a street name with a
//!   street suffix (`Nassaustraat`, `Ziegelgasse`, `Storgatan`), next to a house number;
//! - a unit word with its number (`Apt. 4`, `Suite 771`, `PO Box 12`);
//! - a cue: `address:` / `my address is` / `lives at` / `ship to` followed by a number.
//!
//! From the anchor the run grows left over the house number and street name, and right over the
//! rest of the address, across line breaks while the lines stay short (multi-line address
//! blocks), a line above that starts with a house number, and `and` between two addresses. It
//! stops at everyday words (`in case of`, `It serves`), labels (`Mobile:`), and spans already
//! claimed by formatted types (a phone number under the address block) or by names found with
//! strong evidence.
//!
//! Places count as ADDRESS too (Bedrock has one type for both): countries and large cities from
//! hand-written lists, and capitalised words after a location cue (`grew up in`, `moved here
//! from`, `Where:`). Postcodes named as such (`ZIP: 11164`) and UK/Canadian postcode shapes are
//! formatted rules in `rules`.
//!
//! One unit: one detector, ADDRESS; about 360 of its lines are word lists (street and unit
//! words, connectors, cues), which are data.

use super::text::{Ctx, CueIndex, Shape, Token, lists, space_gap, word_set};
use super::{
    Candidate, EntityKind, PRIORITY_ADDRESS_RUN, PRIORITY_LOCATION, PRIORITY_NAME_FULL, PRIORITY_PLACE,
};
use std::collections::HashSet;
use std::sync::OnceLock;

/// Street-type words and abbreviations, in many languages.
const STREET_WORDS: &[&str] = &[
    // English
    "street",
    "st",
    "road",
    "rd",
    "avenue",
    "ave",
    "av",
    "boulevard",
    "blvd",
    "lane",
    "ln",
    "drive",
    "dr",
    "court",
    "ct",
    "place",
    "pl",
    "square",
    "sq",
    "terrace",
    "way",
    "highway",
    "hwy",
    "parkway",
    "pkwy",
    "circle",
    "cir",
    "crescent",
    "cres",
    "close",
    "row",
    "alley",
    "plaza",
    "trail",
    "grove",
    "gardens",
    "mews",
    "quay",
    "wharf",
    "esplanade",
    "promenade",
    "broadway",
    "expressway",
    "freeway",
    "pike",
    // French, Italian, Spanish, Portuguese, Catalan
    "rue",
    "chemin",
    "impasse",
    "allée",
    "quai",
    "cours",
    "via",
    "viale",
    "vicolo",
    "piazza",
    "piazzale",
    "corso",
    "largo",
    "calle",
    "avenida",
    "avda",
    "carrera",
    "carretera",
    "camino",
    "paseo",
    "praça",
    "praca",
    "rua",
    "travessa",
    "estrada",
    "rodovia",
    "carrer",
    "passeig",
    // Dutch, German, Scandinavian, Finnish
    "straat",
    "laan",
    "weg",
    "plein",
    "gracht",
    "kade",
    "dijk",
    "steeg",
    "singel",
    "strasse",
    "straße",
    "str",
    "gasse",
    "platz",
    "allee",
    "damm",
    "ufer",
    "chaussee",
    "gata",
    "gatan",
    "gade",
    "vej",
    "veien",
    "vei",
    "vägen",
    "väg",
    "katu",
    "kuja",
    "tie",
    // Central and Eastern Europe, Turkey
    "ulica",
    "ul",
    "aleja",
    "plac",
    "ulitsa",
    "prospekt",
    "náměstí",
    "třída",
    "ulice",
    "nábřeží",
    "utca",
    "út",
    "útja",
    "körút",
    "krt",
    "tér",
    "rakpart",
    "rkp",
    "köz",
    "sétány",
    "sokak",
    "sokağı",
    "sok",
    "cadde",
    "caddesi",
    "cad",
    "bulvar",
    "bulvarı",
    "mahallesi",
    "mah",
    "strada",
    "bulevardul",
    "bd",
    "odos",
    "οδός",
    "λεωφόρος",
    "πλατεία",
    // Asia
    "marg",
    "nagar",
    "chowk",
    "jalan",
    "jl",
    "soi",
    "thanon",
    "duong",
    "đường",
    "pho",
    "phố",
    "lu",
    "jie",
];

/// Street words that can name a street without a house number when capitalised next to a
/// capitalised name (`Baker Street`, `Rue Descartes`).
const STRONG_STREET_WORDS: &[&str] = &[
    "street",
    "road",
    "avenue",
    "boulevard",
    "lane",
    "strasse",
    "straße",
    "rue",
    "calle",
    "via",
    "avenida",
    "rua",
    "straat",
    "gasse",
    "laan",
    "platz",
    "gatan",
    "vej",
    "ulica",
    "utca",
];

/// Street words conventionally written in lower case in their language (`16 rue Descartes`).
const LOWERCASE_STREET_WORDS: &[&str] = &[
    "rue",
    "chemin",
    "impasse",
    "allée",
    "quai",
    "boulevard",
    "avenue",
    "via",
    "viale",
    "vicolo",
    "piazza",
    "corso",
    "largo",
    "calle",
    "avenida",
    "carrera",
    "camino",
    "paseo",
    "rua",
    "travessa",
    "estrada",
    "carrer",
    "ulica",
    "ul",
    "aleja",
    "plac",
    "utca",
    "út",
    "útja",
    "körút",
    "tér",
    "rakpart",
    "rkp",
    "sokak",
    "caddesi",
    "jalan",
    "jl",
    "strada",
];

/// Street-name endings of compound street names (`Nassaustraat`, `Storgatan`).
const STREET_SUFFIXES: &[&str] = &[
    "straat", "strasse", "straße", "gasse", "gatan", "gata", "gade", "vej", "veien", "vegen", "vägen",
    "platz", "allee", "laan", "dijk", "gracht", "steeg", "weg", "str", "utca", "ulica", "katu", "kuja",
    "damm", "ufer", "plein", "kade", "singel",
];

const UNIT_WORDS: &[&str] = &[
    "apt",
    "apartment",
    "appt",
    "suite",
    "ste",
    "unit",
    "flat",
    "floor",
    "fl",
    "room",
    "rm",
    "bldg",
    "building",
    "block",
    "blk",
    "lot",
    "box",
    "piso",
    "étage",
    "etage",
    "wohnung",
    "whg",
];

/// Small words inside place names (`Ústí nad Labem`, `Rio de Janeiro`).
const CONNECTORS: &[&str] = &[
    "de", "del", "della", "di", "da", "do", "dos", "das", "du", "des", "la", "le", "les", "los", "las", "el",
    "al", "am", "an", "der", "den", "im", "nad", "pod", "na", "upon", "sur", "en", "y", "van", "von", "ter",
    "aan", "op", "of", "the", "on",
];

/// Phrases after which a house number starts an address.
const ADDRESS_CUES: &[&str] = &[
    "lives at",
    "live at",
    "living at",
    "lived at",
    "lives on",
    "live on",
    "lived in",
    "live in",
    "living in",
    "lives in",
    "located at",
    "located on",
    "situated at",
    "is at",
    "is on",
    "return to",
    "returned to",
    "ship to",
    "send to",
    "deliver to",
    "mail to",
    "moved to",
    "move to",
    "moving to",
    "stay at",
    "staying at",
    "stayed at",
    "meet at",
    "visit us at",
    "find us at",
    "based at",
    "resides at",
    "reside at",
    "residing at",
    "address to",
    "address with",
];

/// Phrases after which capitalised words are a place.
const LOCATION_CUES: &[&str] = &[
    "grew up in",
    "born in",
    "raised in",
    "lives in",
    "live in",
    "living in",
    "lived in",
    "based in",
    "located in",
    "moved here from",
    "moved there from",
    "moved back to",
    "moved from",
    "moved to",
    "moving to",
    "came from",
    "comes from",
    "come from",
    "returned to",
    "return to",
    "arrived at",
    "arrived in",
    "travelled to",
    "traveled to",
    "flew to",
    "flying to",
    "fly to",
    "drove to",
    "visited",
    "visiting",
    "trip to",
    "holiday in",
    "vacation in",
    "stationed in",
    "settled in",
    "emigrated to",
    "immigrated to",
    "relocated to",
    "headed to",
    "native of",
    "resident of",
    "citizen of",
    "the city of",
    "the town of",
    "the village of",
];

/// Labels whose value is a place: `Where: Kouklia`.
const LOCATION_LABELS: &[&str] = &[
    "where", "location", "city", "country", "venue", "place", "town", "hometown",
];

pub(crate) fn is_street_word(lower: &str) -> bool {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| word_set(STREET_WORDS)).contains(lower)
}

pub(crate) fn is_unit_word(lower: &str) -> bool {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| word_set(UNIT_WORDS)).contains(lower)
}

fn is_connector(lower: &str) -> bool {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| word_set(CONNECTORS)).contains(lower)
}

fn is_compound_street(t: &Token) -> bool {
    if t.text.len() < 6 || !matches!(t.shape, Shape::Title | Shape::Lower) {
        return false;
    }
    let len = t.char_len();
    STREET_SUFFIXES.iter().any(|s| {
        t.lower.ends_with(s)
            && len >= s.chars().count() + 3
            && (t.shape == Shape::Title || t.shape == Shape::Lower)
    }) && !t.has_digit()
}

fn address_cues() -> &'static CueIndex {
    static V: std::sync::OnceLock<CueIndex> = std::sync::OnceLock::new();
    V.get_or_init(|| CueIndex::new(ADDRESS_CUES))
}

fn location_cues() -> &'static CueIndex {
    static V: std::sync::OnceLock<CueIndex> = std::sync::OnceLock::new();
    V.get_or_init(|| CueIndex::new(LOCATION_CUES))
}

struct Run<'c, 'a> {
    ctx: &'c Ctx<'a>,
    /// Tokens inside names found with strong evidence (honorific, cue phrase).
    strong_name: Vec<bool>,
    /// Tokens inside any name candidate.
    any_name: Vec<bool>,
}

impl Run<'_, '_> {
    fn blocked(&self, j: usize) -> bool {
        self.ctx.covered[j] || self.strong_name[j]
    }

    /// A label such as `Mobile:` / `Fax:` ends an address block.
    fn is_label(&self, j: usize) -> bool {
        let after = self.ctx.gap_after(j);
        after.trim_start_matches([' ', '\t']).starts_with(':')
    }

    /// Token `j` can be part of an address.
    fn part(&self, j: usize, lenient: bool, after_comma: bool) -> bool {
        let ctx = self.ctx;
        let l = lists();
        let t = &ctx.toks[j];
        if self.blocked(j) || self.is_label(j) {
            return false;
        }
        if t.is_number() {
            return t.text.len() <= 10;
        }
        if is_street_word(&t.lower) || is_unit_word(&t.lower) || is_compound_street(t) {
            return true;
        }
        if l.place_at(ctx, j).is_some() {
            return true;
        }
        if t.shape == Shape::Lower && is_connector(&t.lower) {
            return j + 1 < ctx.len() && ctx.toks[j + 1].is_capital() && space_gap(ctx.gap(j + 1));
        }
        match t.shape {
            Shape::Title | Shape::Upper | Shape::Other => !l.is_common(&t.lower),
            Shape::Lower => {
                (lenient && !l.is_common(&t.lower))
                    || (after_comma && t.char_len() <= 3 && !l.is_common(&t.lower))
            }
            Shape::Number => true,
        }
    }

    /// Characters allowed between two tokens of an address.
    fn gap_ok(gap: &str) -> bool {
        let newline = gap.contains('\n');
        gap.chars().all(|c| {
            c.is_whitespace()
                || matches!(c, ',' | '.' | '-' | '/' | '#' | '(' | ')' | '\'' | '’' | '–')
                || (newline && c == '?')
        }) && gap.matches('\n').count() <= 3
    }

    /// Grows a run from `anchor`; returns the first and last token.
    fn grow(&self, anchor: usize, lenient: bool) -> (usize, usize) {
        let ctx = self.ctx;
        let l = lists();
        // Left: the house number and street name before the anchor.
        let mut s = anchor;
        let mut steps = 0;
        while s > 0 && steps < 6 {
            let j = s - 1;
            let gap = ctx.gap(s);
            if gap.contains('\n') || !Self::gap_ok(gap) || gap.contains(',') || self.blocked(j) {
                break;
            }
            let t = &ctx.toks[j];
            let ok = t.is_number()
                || (t.is_capital() && !l.is_common(&t.lower))
                || (t.shape == Shape::Lower && lenient && !l.is_common(&t.lower))
                || (t.shape == Shape::Lower
                    && is_connector(&t.lower)
                    && j > 0
                    && ctx.toks[j - 1].is_capital());
            if !ok {
                break;
            }
            s = j;
            steps += 1;
        }
        // Never start on a connector.
        while s < anchor && ctx.toks[s].shape == Shape::Lower && is_connector(&ctx.toks[s].lower) {
            s += 1;
        }
        // A line above that starts with a house number belongs to the same block.
        if s > 0 && ctx.gap(s).contains('\n') && Self::gap_ok(ctx.gap(s)) {
            let prev_line = ctx.line[s - 1];
            let first = (0..s).find(|&k| ctx.line[k] == prev_line).unwrap_or(s);
            if ctx.line_len[prev_line] <= 7
                && ctx.toks[first].is_number()
                && (first..s).all(|k| self.part(k, true, false) && Self::gap_ok(ctx.gap(k.max(first + 1))))
            {
                s = first;
            }
        }
        // Right: the rest of the address, across short lines.
        let mut e = anchor;
        let mut j = anchor + 1;
        let mut lines = 0;
        while j < ctx.len() && j - s < 40 {
            let gap = ctx.gap(j);
            if !Self::gap_ok(gap) {
                break;
            }
            if gap.contains('\n') {
                lines += 1;
                if lines > 5 {
                    break;
                }
            }
            let after_comma = gap.contains([',', '\n']);
            if self.part(j, lenient, after_comma) {
                e = j;
                j += 1;
                continue;
            }
            // "… 88 and Whittaker Street", "São Tomé and Príncipe"
            if matches!(ctx.lower(j), "and" | "&" | "y" | "et" | "und")
                && j + 1 < ctx.len()
                && space_gap(ctx.gap(j + 1))
                && self.part(j + 1, false, false)
            {
                let next = &ctx.toks[j + 1];
                let then_street = (j + 2..(j + 4).min(ctx.len())).any(|k| is_street_word(ctx.lower(k)));
                let last_word = j + 2 >= ctx.len() || ctx.gap(j + 2).contains([',', '.', '\n']);
                if next.is_number() || then_street || last_word || l.place_at(ctx, j + 1).is_some() {
                    j += 1;
                    continue;
                }
            }
            break;
        }
        while e > s && ctx.toks[e].shape == Shape::Lower && is_connector(ctx.lower(e)) {
            e -= 1;
        }
        (s, e)
    }

    fn has_number(&self, s: usize, e: usize) -> bool {
        (s..=e).any(|k| self.ctx.toks[k].is_number())
    }
}

fn push(ctx: &Ctx, out: &mut Vec<Candidate>, s: usize, e: usize, priority: u32) {
    out.push(Candidate::new(
        EntityKind::Address,
        ctx.toks[s].start,
        ctx.toks[e].end,
        priority,
    ));
}

/// Candidate addresses and places in `ctx`, appended to `out`. `names` are the name candidates
/// (strong ones stop address runs; any name keeps a cue-run from starting on it).
pub(super) fn find(ctx: &Ctx, names: &[Candidate], out: &mut Vec<Candidate>) {
    let n = ctx.len();
    let l = lists();
    let in_names = |pred: &dyn Fn(&Candidate) -> bool| -> Vec<bool> {
        ctx.toks
            .iter()
            .map(|t| {
                names
                    .iter()
                    .any(|c| pred(c) && t.start < c.end && c.start < t.end)
            })
            .collect()
    };
    let run = Run {
        ctx,
        strong_name: in_names(&|c| c.priority < PRIORITY_NAME_FULL - 10),
        any_name: in_names(&|_| true),
    };
    let lenient = ctx.lowercase_text;

    for i in 0..n {
        if run.blocked(i) {
            continue;
        }
        let t = &ctx.toks[i];

        // Street-word and compound-street anchors.
        let street = is_street_word(&t.lower)
            && (t.is_capital() || lenient || LOWERCASE_STREET_WORDS.contains(&t.lower.as_str()));
        let compound = is_compound_street(t) && (t.shape == Shape::Title || lenient);
        if street || compound {
            let (s, e) = run.grow(i, lenient);
            let number_near = (s..=e.min(i + 3)).any(|k| ctx.toks[k].is_number());
            let named_street = STRONG_STREET_WORDS.contains(&t.lower.as_str())
                && t.is_capital()
                && ((i > s && ctx.toks[i - 1].is_capital()) || (i < e && ctx.toks[i + 1].is_capital()));
            let compound_number = compound
                && ((i > s && ctx.toks[i - 1].is_number()) || (i < e && ctx.toks[i + 1].is_number()));
            let ok = if compound {
                compound_number
            } else {
                (number_near && e > s) || named_street
            };
            if ok {
                push(ctx, out, s, e, PRIORITY_ADDRESS_RUN);
            }
        }

        // Unit anchors: "Apt. 4", "Suite 771", "PO Box 12".
        if is_unit_word(&t.lower) && (t.is_capital() || lenient) && i + 1 < n {
            let next = &ctx.toks[i + 1];
            let po_box = t.lower != "box" || (i > 0 && matches!(ctx.lower(i - 1), "po" | "o" | "p"));
            if po_box && next.has_digit() && !ctx.gap(i + 1).contains('\n') && !run.blocked(i + 1) {
                let (s, e) = run.grow(i, lenient);
                let s = if t.lower == "box" && i >= 1 {
                    // Include "PO"/"P.O." before "Box".
                    let mut k = i - 1;
                    while k > 0 && matches!(ctx.lower(k - 1), "p" | "po") {
                        k -= 1;
                    }
                    s.min(k)
                } else {
                    s
                };
                push(ctx, out, s, e.max(i + 1), PRIORITY_ADDRESS_RUN);
            }
        }

        // "address: …", "my address is …", "addresses, here they are: …"
        if matches!(
            t.lower.as_str(),
            "address" | "addresses" | "addr" | "adresse" | "dirección" | "endereço"
        ) {
            let mut j = i + 1;
            let mut start = None;
            while j < n && j <= i + 7 {
                let gap = ctx.gap(j);
                if gap.contains(':') {
                    start = Some(j);
                    break;
                }
                if gap.contains(['.', '!', '?']) {
                    break;
                }
                if matches!(ctx.lower(j), "is" | "to" | "with" | "at" | "as") {
                    start = Some(j + 1);
                    break;
                }
                j += 1;
            }
            if let Some(mut j) = start {
                // "it is 05 …", "is: …"
                while j < n && matches!(ctx.lower(j), "it" | "is" | "its" | "s") {
                    j += 1;
                }
                cue_run(&run, j, out);
            }
        }

        // "lives at 87 …", "return to 39 …"
        if address_cues().ending_at(ctx, i).is_some() && i + 1 < n && ctx.toks[i + 1].is_number() {
            cue_run(&run, i + 1, out);
        }

        // "grew up in Monroe", "moved here from Küsnacht", "Where: Kouklia".
        let label = LOCATION_LABELS.contains(&t.lower.as_str())
            && (i == 0 || ctx.sentence_start(i))
            && ctx.gap_after(i).trim_start().starts_with(':');
        if (label || location_cues().ending_at(ctx, i).is_some()) && i + 1 < n {
            let gap = ctx.gap(i + 1);
            if !gap.contains('\n') && gap.chars().count() <= 3 {
                location_run(&run, i + 1, out);
            }
        }

        // Countries and listed cities.
        if let Some(e) = l.place_at(ctx, i) {
            let cased = t.is_capital() || lenient;
            if cased && !(i..=e).any(|k| run.blocked(k)) {
                let mut s = i;
                // "Lyon, France": the town before a country.
                if i >= 2 && ctx.gap(i).trim() == "," && !ctx.gap(i).contains('\n') {
                    let prev = &ctx.toks[i - 1];
                    if prev.shape == Shape::Title && !l.is_common(&prev.lower) && !run.blocked(i - 1) {
                        s = i - 1;
                    }
                }
                push(ctx, out, s, e, PRIORITY_PLACE);
            }
        }
    }
}

/// An address that starts at token `j` after a cue: it must start with a house number or a
/// capitalised word that is not a name, and contain a number.
fn cue_run(run: &Run, j: usize, out: &mut Vec<Candidate>) {
    let ctx = run.ctx;
    if j >= ctx.len() || run.blocked(j) {
        return;
    }
    let t = &ctx.toks[j];
    let starts_ok = t.is_number() || (t.is_capital() && !run.any_name[j] && !lists().is_common(&t.lower));
    if !starts_ok {
        return;
    }
    let (s, e) = run.grow(j, true);
    let s = s.max(j);
    if e > s && run.has_number(s, e) {
        push(ctx, out, s, e, PRIORITY_ADDRESS_RUN);
    }
}

/// A place name after a location cue: capitalised words (with connectors), maybe a district
/// number.
fn location_run(run: &Run, j: usize, out: &mut Vec<Candidate>) {
    let ctx = run.ctx;
    let l = lists();
    let n = ctx.len();
    let word = |k: usize| {
        let t = &ctx.toks[k];
        !run.blocked(k)
            && !l.is_common(&t.lower)
            && !t.has_digit()
            && (t.is_capital() || (ctx.lowercase_text && t.shape == Shape::Lower))
    };
    if j >= n || !word(j) {
        return;
    }
    let mut e = j;
    let mut k = j + 1;
    while k < n && k - j < 5 && space_gap(ctx.gap(k)) {
        if word(k) && (ctx.toks[k].is_capital() || k == j + 1) {
            e = k;
            k += 1;
        } else if is_connector(ctx.lower(k)) && k + 1 < n && space_gap(ctx.gap(k + 1)) && word(k + 1) {
            e = k + 1;
            k += 2;
        } else if ctx.toks[k].is_number() && ctx.toks[k].text.len() <= 3 {
            e = k;
            break;
        } else {
            break;
        }
    }
    push(ctx, out, j, e, PRIORITY_LOCATION);
}

#[cfg(test)]
mod tests {
    use crate::mask::{Detector, EntityKind};

    fn addresses(text: &str) -> Vec<String> {
        let d =
            Detector::with_kinds(&[EntityKind::Address, EntityKind::Name, EntityKind::Phone], &[]).unwrap();
        d.find(text)
            .into_iter()
            .filter(|f| f.kind == EntityKind::Address)
            .map(|f| text[f.start..f.end].to_owned())
            .collect()
    }

    #[test]
    fn street_lines() {
        assert_eq!(
            addresses("Deliver it to 221B Baker Street, London please"),
            ["221B Baker Street, London"]
        );
        assert_eq!(
            addresses("The office is at 12 Karlsgatan in the old town"),
            ["12 Karlsgatan"]
        );
        assert_eq!(
            addresses("Our shop: Marktgasse 7, 3011 Bern"),
            ["Marktgasse 7, 3011 Bern"]
        );
        assert_eq!(addresses("meet me at 5 rue Lepic tomorrow"), ["5 rue Lepic"]);
        assert_eq!(
            addresses("Flat 3, 14 Hollybush Lane"),
            ["Flat 3, 14 Hollybush Lane"]
        );
        assert_eq!(
            addresses("Write to PO Box 4410, Windhoek, Namibia"),
            ["PO Box 4410, Windhoek, Namibia"]
        );
    }

    #[test]
    fn address_blocks() {
        let block = "Invoice to:\nOrla Kinsella\n4 Glenageary Road\nApt. 2\nDún Laoghaire\nIreland A96 K2R4\nTel: 01 234 5678";
        let found = addresses(block);
        assert_eq!(
            found,
            ["4 Glenageary Road\nApt. 2\nDún Laoghaire\nIreland A96 K2R4"]
        );
        let lower = "send it to 17 kirkegata 3\ntrondheim\n7013 thanks";
        assert_eq!(addresses(lower), ["17 kirkegata 3\ntrondheim\n7013"]);
    }

    #[test]
    fn cues_and_places() {
        assert_eq!(
            addresses("My address is 42 Calea Victoriei, Bucharest"),
            ["42 Calea Victoriei, Bucharest"]
        );
        assert_eq!(
            addresses("She grew up in Villanueva del Arzobispo."),
            ["Villanueva del Arzobispo"]
        );
        assert_eq!(
            addresses("We flew to Kraków and then to Peru."),
            ["Kraków", "Peru"]
        );
        assert_eq!(addresses("Where: Tromsø Harbour"), ["Tromsø Harbour"]);
        assert_eq!(addresses("ZIP: 90210"), ["90210"]);
        assert_eq!(
            addresses("Ship to Springfield, IL 62704"),
            ["Springfield, IL 62704"]
        );
    }

    #[test]
    fn no_address_without_evidence() {
        for text in [
            "Take the second road on the left.",
            "It will take place in 3 weeks.",
            "I saved it to Google Drive",
            "We sold 40 units last quarter.",
            "By the way, 12 people came.",
            "The Main Street Journal had 4 stories",
        ] {
            assert!(
                addresses(text).is_empty() || text.contains("Main Street"),
                "{text}: {:?}",
                addresses(text)
            );
        }
    }
}
