//! What a visitor sees of a page: its visible text, normalised so that dates
//! and counters do not look like changes, and the outside hosts it loads
//! scripts and frames from.

use std::collections::BTreeSet;
use std::time::Duration;

use html5gum::{DefaultEmitter, Token, Tokenizer};
use similar::{Algorithm, TextDiff};
use url::Url;

/// The part of a page defacement detection compares.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Page {
    /// Visible text, one line per block of text, whitespace collapsed.
    pub text: String,
    /// Lower-cased words with every run of digits turned into `0`.
    pub words: Vec<String>,
    /// Hosts other than the page's own that serve its scripts and frames.
    pub outside_hosts: BTreeSet<String>,
}

/// Pages longer than this are compared on their first words only; the
/// comparison is quadratic in the worst case.
const MAX_WORDS: usize = 20_000;

/// Elements whose content is not shown.
fn hidden(name: &[u8]) -> bool {
    matches!(
        name,
        b"script" | b"style" | b"noscript" | b"template" | b"svg" | b"head"
    )
}

/// Elements that end a line of text.
fn block(name: &[u8]) -> bool {
    matches!(
        name,
        b"p" | b"div"
            | b"br"
            | b"li"
            | b"tr"
            | b"td"
            | b"th"
            | b"h1"
            | b"h2"
            | b"h3"
            | b"h4"
            | b"h5"
            | b"h6"
            | b"title"
            | b"section"
            | b"article"
            | b"header"
            | b"footer"
            | b"nav"
            | b"table"
            | b"ul"
            | b"ol"
            | b"main"
            | b"aside"
            | b"blockquote"
            | b"pre"
            | b"form"
    )
}

/// Reads a page. Plain text bodies are taken as they are.
pub fn read_page(body: &[u8], content_type: Option<&str>, page_url: &Url) -> Page {
    let html = content_type.is_none_or(|value| value.contains("html"));
    let mut text = String::new();
    let mut outside_hosts = BTreeSet::new();
    if html {
        let mut emitter = DefaultEmitter::default();
        // Script and style bodies become one string token each instead of tag soup.
        emitter.naively_switch_states(true);
        let mut hidden_depth = 0usize;
        // The title is shown in the tab and is what defacers change first.
        let mut in_title = false;
        for token in Tokenizer::new_with_emitter(body, emitter).flatten() {
            match token {
                Token::StartTag(tag) => {
                    let name: &[u8] = &tag.name;
                    if let Some(source) = outside_source(name, &tag.attributes)
                        && let Some(host) = outside_host(page_url, &source)
                    {
                        outside_hosts.insert(host);
                    }
                    if name == b"title" {
                        in_title = true;
                    } else if name == b"body" {
                        // `</head>` may be left out; the body is shown whatever came before.
                        hidden_depth = 0;
                    } else if hidden(name) && !tag.self_closing {
                        hidden_depth += 1;
                    }
                    if block(name) {
                        text.push('\n');
                    }
                }
                Token::EndTag(tag) => {
                    let name: &[u8] = &tag.name;
                    if name == b"title" {
                        in_title = false;
                    } else if hidden(name) {
                        hidden_depth = hidden_depth.saturating_sub(1);
                    }
                    if block(name) {
                        text.push('\n');
                    }
                }
                Token::String(value) if hidden_depth == 0 || in_title => {
                    text.push_str(&String::from_utf8_lossy(&value));
                }
                _ => {}
            }
        }
    } else {
        text = String::from_utf8_lossy(body).into_owned();
    }
    let text = collapse(&text);
    let words = text
        .split_whitespace()
        .take(MAX_WORDS)
        .map(normalise_word)
        .collect();
    Page {
        text,
        words,
        outside_hosts,
    }
}

/// The `src` of the elements that run code or show another site inside the page.
fn outside_source(
    name: &[u8],
    attributes: &std::collections::BTreeMap<
        html5gum::HtmlString,
        html5gum::Spanned<html5gum::HtmlString, ()>,
    >,
) -> Option<String> {
    let attribute: &[u8] = match name {
        b"script" | b"iframe" | b"frame" | b"embed" => b"src",
        b"object" => b"data",
        _ => return None,
    };
    attributes
        .iter()
        .find(|(key, _)| key.as_slice() == attribute)
        .map(|(_, value)| String::from_utf8_lossy(value).trim().to_owned())
}

/// The host of `source` when it is not the page's site. Subdomains of the
/// page's domain (cdn.example.gov for www.example.gov) belong to the site.
fn outside_host(page_url: &Url, source: &str) -> Option<String> {
    let resolved = page_url.join(source).ok()?;
    let host = resolved.host_str()?.to_ascii_lowercase();
    let own = page_url.host_str()?.to_ascii_lowercase();
    let own_domain = own.strip_prefix("www.").unwrap_or(&own);
    if host == own || host == own_domain || host.ends_with(&format!(".{own_domain}")) {
        None
    } else {
        Some(host)
    }
}

/// Whitespace runs to one space, blank lines dropped; HTML entities are
/// already decoded by the tokenizer.
fn collapse(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut first = true;
        for word in line.split_whitespace() {
            if !first {
                out.push(' ');
            }
            out.push_str(word);
            first = false;
        }
        if !first {
            out.push('\n');
        }
    }
    out
}

/// Lower case, and every run of digits as one `0`: "26.11.2026" and
/// "27.11.2026", or "1,204 visitors" and "1,318 visitors", are the same words.
fn normalise_word(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut in_digits = false;
    for character in word.chars() {
        if character.is_numeric() {
            if !in_digits {
                out.push('0');
            }
            in_digits = true;
        } else {
            in_digits = false;
            out.extend(character.to_lowercase());
        }
    }
    out
}

/// How alike two pages' words are, from 0 (nothing shared) to 1 (the same).
pub fn similarity(baseline: &[String], current: &[String]) -> f64 {
    if baseline.is_empty() && current.is_empty() {
        return 1.0;
    }
    let baseline: Vec<&str> = baseline.iter().map(String::as_str).collect();
    let current: Vec<&str> = current.iter().map(String::as_str).collect();
    let diff = TextDiff::configure()
        .algorithm(Algorithm::Myers)
        .timeout(Duration::from_millis(500))
        .diff_slices(&baseline, &current);
    f64::from(diff.ratio())
}

/// A unified diff of the visible text, for the alert's evidence.
pub fn text_diff(baseline: &str, current: &str) -> String {
    TextDiff::configure()
        .timeout(Duration::from_millis(500))
        .diff_lines(baseline, current)
        .unified_diff()
        .context_radius(2)
        .header("baseline", "current")
        .to_string()
}

/// Defacement phrases, one per line, `#` for comments; the bundled list is
/// a starting point the team edits.
#[derive(Debug, Clone)]
pub struct Phrases {
    phrases: Vec<String>,
}

/// The bundled list: English, Ukrainian, Russian and Polish, from defacements
/// of government sites (the January 2022 message among them).
pub const BUNDLED_PHRASES: &str = include_str!("../data/defacement-phrases.txt");

impl Phrases {
    pub fn parse(text: &str) -> Phrases {
        let phrases = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(str::to_lowercase)
            .collect();
        Phrases { phrases }
    }

    pub fn bundled() -> Phrases {
        Phrases::parse(BUNDLED_PHRASES)
    }

    pub fn len(&self) -> usize {
        self.phrases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.phrases.is_empty()
    }

    /// The phrases found in a page's text.
    pub fn found_in(&self, text: &str) -> BTreeSet<String> {
        let lower = text.to_lowercase();
        self.phrases
            .iter()
            .filter(|phrase| lower.contains(phrase.as_str()))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(html: &str) -> Page {
        read_page(
            html.as_bytes(),
            Some("text/html; charset=utf-8"),
            &Url::parse("https://www.mfa.gov.ua/news").expect("url"),
        )
    }

    #[test]
    fn visible_text_leaves_out_scripts_styles_and_tags() {
        let read = page(
            "<html><head><title>Ministry</title><style>p{color:red}</style></head>\
             <body><p>Welcome &amp; hello</p><script>var x = '<p>no</p>';</script><div>Second   line</div></body></html>",
        );
        assert_eq!(read.text, "Ministry\nWelcome & hello\nSecond line\n");
        assert_eq!(
            read.words,
            ["ministry", "welcome", "&", "hello", "second", "line"]
        );
    }

    #[test]
    fn a_head_left_open_does_not_hide_the_body() {
        assert_eq!(
            page("<html><head><title>T</title><body><p>Shown</p>").text,
            "T\nShown\n"
        );
    }

    #[test]
    fn outside_script_and_frame_hosts_are_collected_own_site_is_not() {
        let read = page(
            "<script src=\"/app.js\"></script><script src=\"https://cdn.mfa.gov.ua/x.js\"></script>\
             <script src=\"//evil.example/x.js\"></script><iframe src=\"https://Frames.Example/\"></iframe>\
             <img src=\"https://images.example/a.png\">",
        );
        assert_eq!(
            read.outside_hosts.into_iter().collect::<Vec<_>>(),
            ["evil.example", "frames.example"]
        );
    }

    #[test]
    fn dates_and_counters_do_not_change_the_words() {
        let monday = page("<p>Updated 26.11.2026 19:48, 1,204 visitors</p>");
        let tuesday = page("<p>Updated 27.11.2026 08:01, 1,318 visitors</p>");
        assert_eq!(monday.words, tuesday.words);
        assert!((similarity(&monday.words, &tuesday.words) - 1.0).abs() < f64::EPSILON);
    }

    #[test]
    fn a_replaced_page_is_not_similar() {
        let before = page(
            "<h1>Ministry of Foreign Affairs</h1><p>News about the ministry and its work abroad.</p>",
        );
        let after = page(
            "<h1>Ukrainian! All your personal data has been uploaded</h1><p>Be afraid and expect the worst.</p>",
        );
        assert!(similarity(&before.words, &after.words) < 0.2);
    }

    #[test]
    fn phrases_are_found_case_insensitively_in_several_scripts() {
        let phrases = Phrases::bundled();
        assert!(phrases.len() > 20);
        let found = phrases.found_in("Українець! ... БІЙТЕСЯ І ЧЕКАЙТЕ ГІРШОГО. Hacked By someone");
        assert!(
            found.contains("бійтеся і чекайте гіршого") && found.contains("hacked by"),
            "{found:?}"
        );
        assert!(
            phrases
                .found_in("The ministry hosted a cyber security conference")
                .is_empty()
        );
    }
}
