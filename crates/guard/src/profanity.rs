//! The built-in English profanity list behind `words.profanity = true` (Bedrock's managed
//! `PROFANITY` word list).
//!
//! Written for this crate, not taken from a package. It holds common swear words and obvious
//! slurs with their usual inflections (matching is whole-word, so every form is listed). Words
//! whose everyday meaning dominates are deliberately left out, because a guard that blocks
//! "Moby Dick", "a chink in the armour", "blue tits", "cum laude", "a finger prick test" or a
//! retarded ignition is worse than one that lets a mild insult through: dick, cock, prick, tit,
//! chink, coon, dyke, fag, homo, cum, bugger, retarded, damn, hell, crap, bloody, badass.
//! Operators add such words to `words.custom` when their domain warrants it.

#[rustfmt::skip]
pub(crate) const PROFANITY: &[&str] = &[
    // fuck
    "fuck", "fucks", "fucked", "fucker", "fuckers", "fucking", "fuckin", "fuckhead", "fuckheads",
    "fuckface", "fuckwit", "fuckwits", "fuckup", "fuckups", "motherfucker", "motherfuckers",
    "motherfucking", "motherfuckin", "clusterfuck", "mindfuck", "fuckall", "fuckoff", "stfu",
    "gtfo",
    // shit
    "shit", "shits", "shitty", "shittier", "shitting", "shitted", "shite", "shithead", "shitheads",
    "shithole", "shitholes", "shitstorm", "shitshow", "bullshit", "bullshitting", "bullshitter",
    "horseshit", "dipshit", "dipshits", "apeshit", "batshit", "chickenshit",
    // ass / arse
    "ass", "asses", "asshole", "assholes", "asshat", "asshats", "assclown", "asswipe", "jackass",
    "jackasses", "dumbass", "dumbasses", "smartass", "fatass", "arse", "arses", "arsehole",
    "arseholes",
    // bitch, bastard, cunt, twat
    "bitch", "bitches", "bitching", "bitchy", "bitched", "sonofabitch", "bastard", "bastards",
    "cunt", "cunts", "cunty", "twat", "twats",
    // genital insults and sexual insults
    "dickhead", "dickheads", "dickwad", "dickface", "cocksucker", "cocksuckers", "cocksucking",
    "wanker", "wankers", "wank", "wanking", "wanked", "tosser", "tossers", "bellend", "bellends",
    "knobhead", "knobheads", "bollocks", "pussy", "pussies", "slut", "sluts", "slutty", "whore",
    "whores", "whoring", "skank", "skanks", "skanky", "douche", "douchebag", "douchebags", "jizz",
    "numbnuts",
    // piss
    "piss", "pissed", "pisses", "pissing", "pisser", "pissoff",
    // blasphemy (strong forms only)
    "goddamn", "goddamned", "goddamnit", "goddammit",
    // slurs
    "nigger", "niggers", "nigga", "niggas", "faggot", "faggots", "fagot", "tranny", "trannies",
    "retard", "retards", "spic", "spics", "kike", "kikes", "wetback", "wetbacks", "gook", "gooks",
    "raghead", "ragheads", "towelhead", "towelheads", "beaner", "beaners", "paki", "pakis", "wop",
    "wops", "dago", "dagos", "honky", "honkies", "sandnigger", "sandniggers", "shemale", "shemales",
];
