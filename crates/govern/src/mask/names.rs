//! NAME: people's names from word-level evidence.
//!
//! A name has no format, and a capitalised word is not evidence on its own ("Capitalized words
//! like Wisdom and Discipline" are not names). So a name needs one of:
//!
//! 1. **An honorific** before it: `Mr.`, `Mrs`, `Dr.`, `Prof`, `Herr`, `Señora`…
//! 2. **A cue phrase**: `my name is`, `last name?`, `call me`, `Dear`, `said`/`says`, `directed
//!    by`, `starring`, `my partner's name`, `my kid`, sign-offs (`Regards,\nAnna`)…
//! 3. **A known given name** from a hand-written, multi-cultural gazetteer, followed by the
//!    capitalised words of a surname (`Colleen Wiley`) or standing alone. Given names that are
//!    also common words (`Will`, `May`, `Grace`) need a surname.
//! 4. **Sentence position**: a capitalised word opening a sentence and addressed (`Anna, can
//!    you…`), owning something personal (`Arne's address`), or doing what people do (`Duqyaha
//!    shouted`, `Filip lives`).
//!
//! Evidence sets the priority: honorifics and cue phrases beat address runs; a gazetteer name
//! with a surname beats a place; a lone gazetteer name loses to everything. Honorifics are not
//! part of the span (the mask keeps `Dr. [NAME]` readable), generational and degree suffixes
//! (`Jr`, `MD`) are. In text typed entirely in lower case the gazetteer matches lower-case words
//! too; in shouted (all-caps) text only cue phrases find names.
//!
//! One unit: one detector, NAME; about 350 of its lines are word lists (honorifics, relations,
//! cues, verbs), which are data.

use super::text::{Ctx, CueIndex, Shape, Token, inline_gap, lists, space_gap, word_set};
use super::{Candidate, EntityKind, PRIORITY_NAME_FULL, PRIORITY_NAME_SINGLE, PRIORITY_NAME_STRONG, address};
use std::collections::HashSet;
use std::sync::OnceLock;

const HONORIFICS: &[&str] = &[
    "mr",
    "mrs",
    "ms",
    "miss",
    "mx",
    "dr",
    "prof",
    "professor",
    "sir",
    "dame",
    "madam",
    "madame",
    "mme",
    "mlle",
    "mademoiselle",
    "monsieur",
    "herr",
    "frau",
    "señor",
    "señora",
    "señorita",
    "sra",
    "srta",
    "signor",
    "signora",
    "signorina",
    "dott",
    "rev",
    "reverend",
    "fr",
    "capt",
    "captain",
    "col",
    "colonel",
    "lt",
    "lieutenant",
    "sgt",
    "sergeant",
    "officer",
    "judge",
    "senator",
    "sen",
    "rep",
    "governor",
    "gov",
    "mayor",
    "president",
    "doctor",
    "nurse",
    "coach",
    "detective",
    "inspector",
    "agent",
];

const SUFFIXES: &[&str] = &[
    "jr", "sr", "md", "phd", "ii", "iii", "iv", "dds", "esq", "dphil", "mba", "rn", "cpa", "obe", "mbe",
];

const PARTICLES: &[&str] = &[
    "van", "von", "de", "der", "den", "da", "di", "del", "della", "dos", "das", "du", "le", "la", "bin",
    "ibn", "al", "el", "ter", "ten", "af", "zu", "mac",
];

/// Words that end a name: organisations and institutions.
const ORG_WORDS: &[&str] = &[
    "inc",
    "ltd",
    "llc",
    "llp",
    "plc",
    "corp",
    "corporation",
    "co",
    "company",
    "gmbh",
    "ag",
    "sa",
    "bv",
    "nv",
    "oy",
    "ab",
    "spa",
    "srl",
    "group",
    "software",
    "bank",
    "university",
    "college",
    "school",
    "hospital",
    "club",
    "hotel",
    "church",
    "museum",
    "airport",
    "station",
    "consulting",
    "foundation",
    "institute",
    "association",
    "society",
    "partners",
    "holdings",
    "technologies",
    "technology",
    "systems",
    "solutions",
    "services",
    "international",
    "media",
    "studios",
    "records",
    "labs",
    "ministry",
    "department",
    "council",
    "agency",
    "fc",
    "weekly",
    "times",
    "news",
    "day",
];

const DETERMINERS: &[&str] = &["my", "his", "her", "our", "their", "your"];

const RELATIONS: &[&str] = &[
    "kid",
    "kids",
    "son",
    "daughter",
    "wife",
    "husband",
    "partner",
    "mother",
    "mom",
    "mum",
    "father",
    "dad",
    "brother",
    "sister",
    "friend",
    "boss",
    "colleague",
    "coworker",
    "uncle",
    "aunt",
    "cousin",
    "grandma",
    "grandpa",
    "grandmother",
    "grandfather",
    "granddaughter",
    "grandson",
    "nephew",
    "niece",
    "fiance",
    "fiancé",
    "fiancee",
    "fiancée",
    "girlfriend",
    "boyfriend",
    "child",
    "baby",
    "manager",
    "neighbour",
    "neighbor",
    "teacher",
    "doctor",
    "lawyer",
    "assistant",
    "roommate",
    "landlord",
    "landlady",
    "tenant",
    "spouse",
    "stepson",
    "stepdaughter",
    "stepmother",
    "stepfather",
    "supervisor",
    "employee",
    "client",
    "patient",
    "student",
    "classmate",
    "buddy",
    "ex",
];

/// After one of these phrases, the next capitalised word starts a name.
const CUES: &[&str] = &[
    "call me",
    "calls me",
    "called me",
    "known as",
    "named",
    "i am",
    "i m",
    "dear",
    "hi",
    "hello",
    "hey",
    "said",
    "says",
    "asked",
    "told",
    "replied",
    "answered",
    "wrote",
    "shouted at",
    "shouted",
    "yelled at",
    "whispered to",
    "spoke to",
    "spoke with",
    "talked to",
    "speak to",
    "speak with",
    "talk to",
    "met with",
    "married",
    "thanked",
    "emailed",
    "texted",
    "phoned",
    "introduced",
    "follow up with",
    "directed by",
    "written by",
    "composed by",
    "produced by",
    "performed by",
    "painted by",
    "sung by",
    "created by",
    "designed by",
    "edited by",
    "translated by",
    "narrated by",
    "illustrated by",
    "photographed by",
    "starring",
    "co-starring",
    "featuring",
    "feat",
    "attn",
    "signed",
    "regards",
    "sincerely",
    "cheers",
];

/// Sign-off cues may have the name on the next line.
const SIGN_OFFS: &[&str] = &[
    "regards",
    "sincerely",
    "cheers",
    "thanks",
    "best",
    "love",
    "signed",
    "yours",
];

/// A name opening a sentence and followed by a comma and one of these is being addressed.
const VOCATIVE_NEXT: &[&str] = &[
    "can", "could", "would", "will", "please", "i", "you", "do", "did", "are", "is", "have", "thanks",
    "thank", "what", "where", "when", "how", "why", "listen", "look", "wait", "come", "let", "we", "it",
    "this", "that", "hi", "hello", "good",
];

/// `X's <one of these>` marks X as a person.
const POSSESSED: &[&str] = &[
    "address",
    "kid",
    "kids",
    "son",
    "daughter",
    "wife",
    "husband",
    "partner",
    "phone",
    "number",
    "email",
    "house",
    "home",
    "car",
    "birthday",
    "mother",
    "mom",
    "mum",
    "father",
    "dad",
    "brother",
    "sister",
    "friend",
    "family",
    "account",
    "name",
    "child",
    "children",
    "boss",
    "office",
    "apartment",
    "flat",
    "room",
    "parents",
    "baby",
    "girlfriend",
    "boyfriend",
    "wedding",
    "funeral",
    "passport",
    "ssn",
    "salary",
    "health",
    "medical",
    "diagnosis",
    "signature",
    "mobile",
    "cell",
];

/// A capitalised word followed by one of these (as the subject) is a person.
const SUBJECT_VERBS: &[&str] = &[
    "said",
    "says",
    "told",
    "asked",
    "shouted",
    "yelled",
    "whispered",
    "replied",
    "smiled",
    "laughed",
    "cried",
    "lives",
    "lived",
    "married",
    "studied",
    "wrote",
    "grew",
];

/// Words before `name` that make it something other than a person's name.
const NOT_PERSON_NAME: &[&str] = &[
    "user", "file", "domain", "company", "business", "product", "brand", "street", "host", "screen",
    "display", "account", "code", "project", "team", "band", "song", "album", "pet", "dog", "cat", "app",
    "model", "field", "column", "table", "bank", "store", "shop", "course", "event", "group",
];

fn is_honorific(lower: &str) -> bool {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| word_set(HONORIFICS)).contains(lower)
}

fn is_org_word(lower: &str) -> bool {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| word_set(ORG_WORDS)).contains(lower)
}

fn cue_index() -> &'static CueIndex {
    static INDEX: OnceLock<CueIndex> = OnceLock::new();
    INDEX.get_or_init(|| CueIndex::new(CUES))
}

/// A word that may start a name after a cue: capitalised (or lower case in lower-case text),
/// not an everyday word, no digits.
fn name_start(ctx: &Ctx, t: &Token) -> bool {
    let shape_ok = match t.shape {
        Shape::Title => true,
        Shape::Upper => ctx.uppercase_text,
        Shape::Lower => ctx.lowercase_text,
        _ => false,
    };
    shape_ok
        && !t.has_digit()
        && t.char_len() >= 2
        && !lists().is_common(&t.lower)
        && !is_honorific(&t.lower)
        && !is_org_word(&t.lower)
}

/// A word that may continue a name as (part of) a surname.
fn surname_word(ctx: &Ctx, j: usize) -> bool {
    let t = &ctx.toks[j];
    t.shape == Shape::Title
        && name_start(ctx, t)
        && !address::is_street_word(&t.lower)
        && !address::is_unit_word(&t.lower)
        && lists().countries.longest_at(ctx, j).is_none()
}

/// Extends a name that starts at `first` over surname words, particles and a suffix.
fn extend(ctx: &Ctx, first: usize) -> usize {
    let l = lists();
    let n = ctx.len();
    let mut last = first;
    let mut added = 0;
    while added < 3 {
        let j = last + 1;
        if j >= n || ctx.covered[j] {
            break;
        }
        let gap = ctx.gap(j);
        if !(space_gap(gap) || gap == "-") {
            break;
        }
        let t = &ctx.toks[j];
        if ctx.lowercase_text {
            if t.shape == Shape::Lower
                && !l.is_common(&t.lower)
                && t.char_len() >= 2
                && !t.has_digit()
                && !address::is_street_word(&t.lower)
                && !address::is_unit_word(&t.lower)
                && !l.is_given(&t.lower)
            {
                last = j;
            }
            break;
        }
        if surname_word(ctx, j) {
            last = j;
            added += 1;
            continue;
        }
        if PARTICLES.contains(&t.lower.as_str())
            && j + 1 < n
            && space_gap(ctx.gap(j + 1))
            && surname_word(ctx, j + 1)
        {
            last = j + 1;
            added += 1;
            continue;
        }
        break;
    }
    let j = last + 1;
    if j < n && !ctx.covered[j] {
        let gap = ctx.gap(j);
        let t = &ctx.toks[j];
        if (space_gap(gap) || gap.trim() == ",")
            && SUFFIXES.contains(&t.lower.as_str())
            && t.shape != Shape::Lower
        {
            last = j;
        }
    }
    last
}

fn push(ctx: &Ctx, out: &mut Vec<Candidate>, first: usize, last: usize, priority: u32) {
    if (first..=last).any(|k| ctx.covered[k]) {
        return;
    }
    out.push(Candidate::new(
        EntityKind::Name,
        ctx.toks[first].start,
        ctx.toks[last].end,
        priority,
    ));
}

/// The gap between a cue and the name after it: no sentence end, no line break (except after a
/// sign-off).
fn cue_gap_ok(gap: &str, sign_off: bool) -> bool {
    if gap.contains(['.', '!', ';', '(', ')', '[', ']', '@', '/']) {
        return false;
    }
    if gap.contains('\n') {
        return sign_off && gap.matches('\n').count() <= 2;
    }
    gap.chars().count() <= 4
}

/// Candidate names in `ctx`, appended to `out`.
pub(super) fn find(ctx: &Ctx, out: &mut Vec<Candidate>) {
    let l = lists();
    let n = ctx.len();
    let toks = &ctx.toks;
    for i in 0..n {
        if ctx.covered[i] {
            continue;
        }
        let t = &toks[i];

        // 1. Honorific + name.
        if is_honorific(&t.lower) && t.shape != Shape::Other && i + 1 < n {
            let gap = ctx.gap(i + 1);
            let gap_ok = space_gap(gap) || (gap.starts_with('.') && (gap.len() == 1 || space_gap(&gap[1..])));
            let next = &toks[i + 1];
            // In lower-case text "sir bot" is no name: there the honorific must be an
            // abbreviation with its dot, or the name a known given name.
            let lower_ok = !ctx.lowercase_text || gap.starts_with('.') || l.is_given(&next.lower);
            if gap_ok && lower_ok && name_start(ctx, next) && !address::is_street_word(&next.lower) {
                push(ctx, out, i + 1, extend(ctx, i + 1), PRIORITY_NAME_STRONG);
            }
        }

        // 2. Cue phrases ending at token i.
        if let Some(words) = cue_index().ending_at(ctx, i)
            && i + 1 < n
        {
            let sign_off = SIGN_OFFS.contains(&words[0].as_str());
            let next = &toks[i + 1];
            if cue_gap_ok(ctx.gap(i + 1), sign_off) && name_start(ctx, next) {
                push(ctx, out, i + 1, extend(ctx, i + 1), PRIORITY_NAME_STRONG);
                // "said Honoré to James": a second person joined by `to`/`and`.
                let last = extend(ctx, i + 1);
                if last + 2 < n
                    && matches!(ctx.lower(last + 1), "to" | "and")
                    && space_gap(ctx.gap(last + 2))
                    && name_start(ctx, &toks[last + 2])
                {
                    push(ctx, out, last + 2, extend(ctx, last + 2), PRIORITY_NAME_STRONG);
                }
            }
        }
        // Sign-offs with a comma: "Thanks, Maria" / "Best,\nTom".
        if SIGN_OFFS.contains(&t.lower.as_str()) && i + 1 < n {
            let gap = ctx.gap(i + 1);
            if gap.contains([',', '\n']) && cue_gap_ok(gap, true) && name_start(ctx, &toks[i + 1]) {
                let last = extend(ctx, i + 1);
                if last + 1 == n || ctx.gap(last + 1).contains(['\n', '.', ',']) {
                    push(ctx, out, i + 1, last, PRIORITY_NAME_STRONG);
                }
            }
        }

        // 3. "name is X", "last name? X", "partner's name X".
        if matches!(
            t.lower.as_str(),
            "name" | "names" | "surname" | "firstname" | "lastname" | "nickname" | "alias"
        ) && !(i > 0 && NOT_PERSON_NAME.contains(&ctx.lower(i - 1)))
        {
            let mut j = i + 1;
            if j < n && ctx.lower(j) == "s" && inline_gap(ctx.gap(j)) {
                j += 1;
            }
            while j < n && matches!(ctx.lower(j), "is" | "was" | "are") && !ctx.gap(j).contains(['\n', '.']) {
                j += 1;
            }
            if j < n && cue_gap_ok(ctx.gap(j), false) && name_start(ctx, &toks[j]) {
                push(ctx, out, j, extend(ctx, j), PRIORITY_NAME_STRONG);
            }
        }

        // 4. "my partner's name X", "my kid X", "her husband, X".
        if DETERMINERS.contains(&t.lower.as_str()) && i + 2 < n && RELATIONS.contains(&ctx.lower(i + 1)) {
            let mut j = i + 2;
            if ctx.lower(j) == "s" && inline_gap(ctx.gap(j)) && ctx.lower(j + 1) == "name" {
                j += 2;
            } else if ctx.lower(j) == "name" {
                j += 1;
            }
            if matches!(ctx.lower(j), "is" | "was" | "named" | "called") {
                j += 1;
            }
            if j < n && cue_gap_ok(ctx.gap(j), false) && name_start(ctx, &toks[j]) {
                push(ctx, out, j, extend(ctx, j), PRIORITY_NAME_STRONG);
            }
        }

        // 5. Sentence position: addressed, owning, acting.
        if t.shape == Shape::Title && name_start(ctx, t) && l.place_at(ctx, i).is_none() {
            let sentence_start = ctx.sentence_start(i);
            // "Anna, can you…"
            if sentence_start && i + 1 < n {
                let gap = ctx.gap(i + 1);
                if gap.trim_end() == "," && VOCATIVE_NEXT.contains(&ctx.lower(i + 1)) {
                    push(ctx, out, i, i, PRIORITY_NAME_FULL);
                }
            }
            // "Arne's address"
            if i + 2 < n
                && matches!(ctx.gap(i + 1), "'" | "’")
                && ctx.lower(i + 1) == "s"
                && space_gap(ctx.gap(i + 2))
                && POSSESSED.contains(&ctx.lower(i + 2))
            {
                let first = if i > 0
                    && space_gap(ctx.gap(i))
                    && toks[i - 1].shape == Shape::Title
                    && name_start(ctx, &toks[i - 1])
                {
                    i - 1
                } else {
                    i
                };
                push(ctx, out, first, i, PRIORITY_NAME_FULL);
            }
            // "Duqyaha shouted", "Filip lives", "Ana Lopes said"
            if sentence_start || ctx.gap(i).contains([',', '"', '“']) {
                let mut last = i;
                if i + 1 < n && space_gap(ctx.gap(i + 1)) && surname_word(ctx, i + 1) {
                    last = i + 1;
                }
                if last + 1 < n
                    && space_gap(ctx.gap(last + 1))
                    && SUBJECT_VERBS.contains(&ctx.lower(last + 1))
                {
                    push(ctx, out, i, last, PRIORITY_NAME_FULL);
                }
            }
        }

        // 6. Gazetteer.
        let given = match t.shape {
            Shape::Title => l.given.contains(&t.lower) || l.is_ambiguous_given(&t.lower),
            Shape::Lower => ctx.lowercase_text && l.is_given(&t.lower) && t.char_len() >= 3,
            _ => false,
        };
        // Hyphenated given names: Jean-Pierre, Ji-ho.
        let compound = t.shape == Shape::Title
            && i + 1 < n
            && ctx.gap(i + 1) == "-"
            && l.is_given(&format!("{}-{}", t.lower, ctx.lower(i + 1)));
        // The second half of a double-barrelled word (`Hubbard-Thomas`) is not a first name.
        let second_half = i > 0 && ctx.gap(i) == "-" && toks[i - 1].is_capital();
        if (given || compound) && !second_half {
            let from = if compound { i + 1 } else { i };
            let last = extend(ctx, from);
            let ambiguous = !compound && l.is_ambiguous_given(&t.lower);
            if last > from {
                push(ctx, out, i, last, PRIORITY_NAME_FULL);
            } else if !ambiguous && t.shape != Shape::Upper {
                let priority = if compound {
                    PRIORITY_NAME_FULL
                } else {
                    PRIORITY_NAME_SINGLE
                };
                push(ctx, out, i, last, priority);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::mask::{Detector, EntityKind};

    fn names(text: &str) -> Vec<String> {
        let d = Detector::with_kinds(&[EntityKind::Name], &[]).unwrap();
        d.find(text)
            .into_iter()
            .filter(|f| f.kind == EntityKind::Name)
            .map(|f| text[f.start..f.end].to_owned())
            .collect()
    }

    #[test]
    fn honorifics_and_cues() {
        assert_eq!(
            names("Please forward this to Mrs. Okonkwo-Bello today."),
            ["Okonkwo-Bello"]
        );
        assert_eq!(names("Dr Halvorsen will see you now"), ["Halvorsen"]);
        assert_eq!(names("Hi, my name is Tomasz Wierzbicki."), ["Tomasz Wierzbicki"]);
        assert_eq!(names("What is your surname? Oyelaran"), ["Oyelaran"]);
        assert_eq!(names("Everyone calls me Bongani"), ["Bongani"]);
        assert_eq!(names("The film was directed by Ingeborg Rask"), ["Ingeborg Rask"]);
        assert_eq!(names("\"Not now,\" says Quispe."), ["Quispe"]);
        assert_eq!(names("Kind regards,\nAnnelise"), ["Annelise"]);
        assert_eq!(names("Please add my daughter Zuzanna to the plan"), ["Zuzanna"]);
    }

    #[test]
    fn gazetteer_and_surnames() {
        assert_eq!(
            names("I met Priya Raghunathan at the fair"),
            ["Priya Raghunathan"]
        );
        assert_eq!(names("Send it to Giulia."), ["Giulia"]);
        assert_eq!(names("Kwame Mensah Jr. arrived"), ["Kwame Mensah Jr"]);
        assert_eq!(names("Jean-Pierre Dubois signed"), ["Jean-Pierre Dubois"]);
        // Common-word given names need a surname.
        assert!(names("Will you grant me access? May I?").is_empty());
        assert_eq!(names("We hired Grace Adeyemi"), ["Grace Adeyemi"]);
        // Lower-case chat text.
        assert_eq!(names("can you ask sergio ramalho about it"), ["sergio ramalho"]);
    }

    #[test]
    fn sentence_position() {
        assert_eq!(names("Okwuosa, can you send me the report?"), ["Okwuosa"]);
        assert_eq!(names("I found Tamsin's address in the file."), ["Tamsin"]);
        assert_eq!(names("Brannigan shouted across the room."), ["Brannigan"]);
    }

    #[test]
    fn no_names_in_plain_capitalised_words() {
        for text in [
            "Capitalized words like Wisdom and Discipline are often mistaken with names.",
            "The Quarterly Report is due on Monday.",
            "CAN I SPEAK TO A REAL PERSON?!?!",
            "Please call me at your earliest convenience.",
            "My name appears twice on the statement.",
            "Company name: Northwind Traders",
        ] {
            assert!(names(text).is_empty(), "{text}: {:?}", names(text));
        }
    }
}
