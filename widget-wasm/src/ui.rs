//! The chat panel's DOM: built once inside the loader's shadow root, then updated by the chat
//! state machine. Nothing here knows about the network; text goes in through `dom::fill_text`.

use crate::chat::push_number;
use crate::dom::{add, fill_text, icon};
use crate::i18n::{Lang, Text, t};
use crate::json;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Document, Element, HtmlElement, ShadowRoot};

/// Common emoji offered by the picker.
pub const EMOJI: [&str; 16] = [
    "😀", "😂", "😊", "😍", "🤔", "😢", "👍", "👎", "👏", "🙏", "👋", "🎉", "❤️", "🔥", "✅", "📦",
];

/// The paperclip of the attach button: one stroked path in a 24×24 box (see `dom::icon`).
const PAPERCLIP: &str = "M20 11.5l-8.2 8.2a5.5 5.5 0 0 1-7.8-7.8l8.5-8.5a3.7 3.7 0 0 1 5.2 5.2l-8.5 8.5a1.8 1.8 0 0 1-2.6-2.6l7.9-7.9";
/// The emoji picker's button: a smiling face.
const SMILEY: &str =
    "M3 12a9 9 0 1 0 18 0a9 9 0 1 0-18 0M8 14.5a4.5 4.5 0 0 0 8 0M9 9.5v.5M15 9.5v.5";

/// A file carried by a message, as the panel shows it.
pub struct File {
    /// `GET /attachments/{id}` on the Kefu server.
    pub url: String,
    /// The uploader's file name (text, shown as text).
    pub name: String,
    /// A raster picture, shown inline; anything else is a download link.
    pub picture: bool,
}

/// A message the visitor wrote, kept to update its delivered/read mark.
struct Mine {
    client_id: String,
    /// Set once the server stored it.
    seq: Option<i64>,
    mark: Element,
}

/// An agent's message with text, kept to show its translation (`translation` frames name
/// messages by seq).
struct Theirs {
    seq: i64,
    /// Its text (`div.b`), filled with the original or the translation.
    text: Element,
    /// The line under the text (its time), where the toggle goes.
    meta: Element,
    /// Once translated: the "show original" / "show translation" button, and the two texts.
    translated: Option<(Element, Versions)>,
}

/// A translated message's two texts and which one is shown: the translation, until the
/// visitor asks for the original.
#[derive(Debug)]
struct Versions {
    original: String,
    translation: String,
    original_shown: bool,
}

impl Versions {
    /// The text to show, and the toggle's label (what a click shows).
    fn shown(&self) -> (&str, Text) {
        if self.original_shown {
            (&self.original, Text::ShowTranslation)
        } else {
            (&self.translation, Text::ShowOriginal)
        }
    }
}

/// Handles on the panel's elements.
pub struct Ui {
    pub doc: Document,
    pub lang: Lang,
    pub host: Element,
    pub panel: Element,
    badge: Element,
    name: Element,
    /// The answering agent's initial, next to their name.
    avatar: Element,
    state: Element,
    list: Element,
    greeting: Element,
    typing: Element,
    notice: Element,
    pub compose: Element,
    pub input: Element,
    /// The paperclip (a label, so a click opens the file picker with no code) and its input.
    attach: Element,
    pub file: Element,
    pub emoji: Element,
    pub offline: Element,
    pub prechat: Element,
    thanks: Element,
    /// The rating form, its thank-you, and "start a new conversation".
    pub rate: Element,
    /// The rating form's e-mail field for a transcript (shown when the server can send mail).
    transcript: Element,
    rated: Element,
    again: Element,
    mine: Vec<Mine>,
    theirs: Vec<Theirs>,
    /// The page's own title, restored when the visitor has read the replies.
    page_title: Option<String>,
}

const HIDDEN: (&str, &str) = ("hidden", "");
const SUBMIT: (&str, &str) = ("type", "submit");
const BUTTON: (&str, &str) = ("type", "button");

impl Ui {
    /// Builds the panel next to the loader's launcher.
    pub fn new(root: &ShadowRoot, lang: Lang) -> Result<Ui, JsValue> {
        // Plain property reads instead of web-sys getters here and below: each getter is an
        // import with its own glue, while every property shares one (`json::get`).
        let doc: Document = json::get(&crate::browser::win(), "document").unchecked_into();
        let host: Element = json::get(root, "host").unchecked_into();
        let tr = |text| t(lang, text);
        // Element's `querySelector` (the same JS call) rather than a second import for the
        // shadow root's.
        let launcher = root
            .unchecked_ref::<Element>()
            .query_selector(".launcher")?
            .ok_or("no launcher")?;
        let badge = add(&doc, &launcher, "span", "badge", &[HIDDEN], "");
        let title = tr(Text::Title);
        let panel = add(
            &doc,
            root,
            "section",
            "panel",
            &[("role", "dialog"), ("aria-label", title), HIDDEN],
            "",
        );
        let head = add(&doc, &panel, "header", "head", &[], "");
        let who = add(&doc, &head, "div", "who", &[], "");
        let avatar = add(
            &doc,
            &who,
            "span",
            "avatar",
            &[HIDDEN, ("aria-hidden", "true")],
            "",
        );
        let name = add(&doc, &who, "strong", "name", &[], title);
        let state = add(&doc, &who, "span", "state", &[], "");
        add(
            &doc,
            &head,
            "button",
            "x",
            &[BUTTON, ("aria-label", tr(Text::Close))],
            "×",
        );
        let list = add(&doc, &panel, "ol", "list", &[("aria-live", "polite")], "");
        let greeting = add(&doc, &list, "li", "greet", &[], tr(Text::Greeting));
        let typing = add(&doc, &panel, "div", "typing", &[HIDDEN], "");
        let notice = add(
            &doc,
            &panel,
            "p",
            "notice",
            &[("role", "alert"), HIDDEN],
            "",
        );

        // After a resolved conversation: rate it (a click on a star sends), or start anew.
        let rate = add(&doc, &panel, "form", "rate", &[HIDDEN], "");
        add(&doc, &rate, "p", "", &[], tr(Text::RateTitle));
        let comment = tr(Text::Comment);
        add(
            &doc,
            &rate,
            "textarea",
            "",
            &[
                ("name", "comment"),
                ("placeholder", comment),
                ("aria-label", comment),
            ],
            "",
        );
        let copy = tr(Text::Transcript);
        let transcript = add(
            &doc,
            &rate,
            "input",
            "",
            &[
                ("name", "email"),
                ("type", "email"),
                ("placeholder", copy),
                ("aria-label", copy),
                HIDDEN,
            ],
            "",
        );
        let stars = add(&doc, &rate, "div", "stars", &[], "");
        // Highest first: the row is reversed on screen, so hovering a star lights those before it.
        for score in ["5", "4", "3", "2", "1"] {
            add(
                &doc,
                &stars,
                "button",
                "",
                &[SUBMIT, ("value", score), ("aria-label", score)],
                "★",
            );
        }
        let rated = add(&doc, &panel, "p", "rated", &[HIDDEN], tr(Text::Rated));
        let again = add(
            &doc,
            &panel,
            "button",
            "new",
            &[BUTTON, HIDDEN],
            tr(Text::NewChat),
        );

        let compose = add(&doc, &panel, "form", "compose", &[], "");
        let emoji = add(&doc, &compose, "div", "emojis", &[HIDDEN], "");
        for e in EMOJI {
            add(&doc, &emoji, "button", "e", &[BUTTON, ("aria-label", e)], e);
        }
        let placeholder = tr(Text::Placeholder);
        let input = add(
            &doc,
            &compose,
            "textarea",
            "",
            &[
                ("name", "message"),
                ("rows", "1"),
                ("placeholder", placeholder),
                ("aria-label", placeholder),
            ],
            "",
        );
        let attach = add(
            &doc,
            &compose,
            "label",
            "att",
            &[("title", tr(Text::Attach)), HIDDEN],
            "",
        );
        icon(&doc, &attach, PAPERCLIP);
        let file = add(
            &doc,
            &attach,
            "input",
            "file",
            &[("type", "file"), ("aria-label", tr(Text::Attach)), HIDDEN],
            "",
        );
        let smiley = add(
            &doc,
            &compose,
            "button",
            "emo",
            &[BUTTON, ("aria-label", tr(Text::Emoji))],
            "",
        );
        icon(&doc, &smiley, SMILEY);
        add(&doc, &compose, "button", "send", &[SUBMIT], tr(Text::Send));

        let field = |form: &Element, tag: &str, name: &str, label: Text, kind: &str| {
            let label = tr(label);
            add(
                &doc,
                form,
                tag,
                "",
                &[
                    ("name", name),
                    ("type", kind),
                    ("placeholder", label),
                    ("aria-label", label),
                ],
                "",
            );
        };
        let prechat = add(&doc, &panel, "form", "prechat", &[HIDDEN], "");
        add(&doc, &prechat, "p", "", &[], tr(Text::Prechat));
        field(&prechat, "input", "name", Text::Name, "text");
        field(&prechat, "input", "email", Text::Email, "email");
        add(
            &doc,
            &prechat,
            "button",
            "send",
            &[SUBMIT],
            tr(Text::StartChat),
        );

        let offline = add(&doc, &panel, "form", "offline", &[HIDDEN], "");
        add(&doc, &offline, "p", "", &[], tr(Text::Offline));
        field(&offline, "input", "name", Text::Name, "text");
        field(&offline, "input", "contact", Text::Contact, "text");
        field(&offline, "textarea", "body", Text::Message, "text");
        add(
            &doc,
            &offline,
            "button",
            "send",
            &[SUBMIT],
            tr(Text::LeaveMessage),
        );
        let thanks = add(&doc, &panel, "p", "thanks", &[HIDDEN], tr(Text::Thanks));
        Ok(Ui {
            doc,
            lang,
            host,
            panel,
            badge,
            name,
            avatar,
            state,
            list,
            greeting,
            typing,
            notice,
            compose,
            input,
            attach,
            file,
            emoji,
            offline,
            prechat,
            thanks,
            rate,
            transcript,
            rated,
            again,
            mine: Vec::new(),
            theirs: Vec::new(),
            page_title: None,
        })
    }

    fn tr(&self, text: Text) -> &'static str {
        t(self.lang, text)
    }

    /// Applies the site's name, greeting, colour and corner.
    pub fn set_site(&self, name: &str, greeting: Option<&str>, color: &str, left: bool) {
        // Once an agent answered, the header shows them (their avatar is up), not the site.
        if !name.is_empty() && self.avatar.has_attribute("hidden") {
            self.name.set_text_content(Some(name));
        }
        if let Some(greeting) = greeting.filter(|g| !g.is_empty()) {
            self.greeting.set_text_content(Some(greeting));
        }
        {
            let style = self.host.unchecked_ref::<HtmlElement>().style();
            let _ = style.set_property("--kefu-color", color);
            if left {
                let _ = style.set_property("right", "auto");
                let _ = style.set_property("left", "20px");
                let _ = self.host.set_attribute("data-position", "left");
            }
        }
    }

    /// Shows who answers (the agent's name once one has replied).
    pub fn set_agent(&self, name: &str) {
        self.name.set_text_content(Some(name));
        // The agent's initial in a circle: agents have no pictures yet. ASCII upper case only:
        // the Unicode case tables would cost 9 KB of the size budget.
        let mut initial = String::new();
        if let Some(first) = name.chars().next() {
            initial.push(first.to_ascii_uppercase());
        }
        self.avatar.set_text_content(Some(&initial));
        show(&self.avatar, !initial.is_empty());
    }

    /// Online: the composer, or first the pre-chat form; offline: the leave-message form.
    pub fn set_online(&self, online: bool, ask_first: bool) {
        let _ = self
            .host
            .set_attribute("data-online", if online { "true" } else { "false" });
        self.state
            .set_text_content(Some(if online { "●" } else { "○" }));
        show(&self.compose, online && !ask_first);
        show(&self.prechat, online && ask_first);
        show(
            &self.offline,
            !online && self.thanks.has_attribute("hidden"),
        );
    }

    /// Reports the transport in use (`websocket` or `http`) on the host element.
    pub fn set_transport(&self, transport: &str) {
        let _ = self.host.set_attribute("data-transport", transport);
    }

    /// Whether the panel is open.
    pub fn is_open(&self) -> bool {
        !self.panel.has_attribute("hidden")
    }

    /// Opens or closes the panel.
    pub fn show_panel(&mut self, open: bool) {
        show(&self.panel, open);
        if open {
            self.scroll_to_end();
            focus(&self.input);
        }
    }

    /// The launcher's badge and the page title show unread replies.
    pub fn set_unread(&mut self, count: u32) {
        show(&self.badge, count > 0);
        let mut number = String::new();
        push_number(&mut number, i64::from(count));
        self.badge.set_text_content(Some(&number));
        if count > 0 {
            let own = self
                .page_title
                .get_or_insert_with(|| json::text(&self.doc, "title").unwrap_or_default());
            let mut title = String::from("(");
            title.push_str(&number);
            title.push_str(") ");
            title.push_str(own);
            json::assign(&self.doc, "title", &title.into());
        } else if let Some(own) = self.page_title.take() {
            json::assign(&self.doc, "title", &own.into());
        }
    }

    fn scroll_to_end(&self) {
        json::assign(
            &self.list,
            "scrollTop",
            &json::get(&self.list, "scrollHeight"),
        );
    }

    /// Appends a message bubble; returns the line under its text (time, delivery mark) and its
    /// text element (none without a body).
    /// `by`: the writer's name; `None` for the visitor's own message.
    fn bubble(
        &self,
        by: Option<&str>,
        body: &str,
        file: Option<&File>,
        at: Option<f64>,
    ) -> (Element, Option<Element>) {
        let doc = &self.doc;
        let class = if by.is_none() { "m v" } else { "m a" };
        let item = add(doc, &self.list, "li", class, &[], "");
        if let Some(by) = by {
            add(doc, &item, "div", "by", &[], by);
        }
        if let Some(file) = file {
            let attributes = [
                ("href", file.url.as_str()),
                ("target", "_blank"),
                ("rel", "noopener noreferrer nofollow"),
            ];
            let label = if file.picture { "" } else { &file.name };
            let link = add(doc, &item, "a", "file", &attributes, label);
            if file.picture {
                let attributes = [("src", file.url.as_str()), ("alt", file.name.as_str())];
                add(doc, &link, "img", "", &attributes, "");
            }
        }
        let text = (!body.is_empty()).then(|| {
            let text = add(doc, &item, "div", "b", &[], "");
            fill_text(doc, &text, body);
            text
        });
        let meta = add(doc, &item, "div", "meta", &[], "");
        add(
            doc,
            &meta,
            "time",
            "",
            &[],
            &crate::browser::clock(at.unwrap_or_else(js_sys::Date::now)),
        );
        self.scroll_to_end();
        (meta, text)
    }

    /// Puts the delivery mark on a message of the visitor's and keeps it to update.
    fn mine(&mut self, meta: &Element, client_id: &str, seq: Option<i64>, mark: &str) {
        let mark = add(&self.doc, meta, "span", "mark", &[], mark);
        self.mine.push(Mine {
            client_id: client_id.to_string(),
            seq,
            mark,
        });
    }

    /// A message the visitor just sent, shown at once as "sending".
    pub fn add_pending(&mut self, client_id: &str, body: &str, file: Option<&File>) {
        let (meta, _) = self.bubble(None, body, file, None);
        self.mine(&meta, client_id, None, "…");
    }

    /// Marks the visitor's message stored; `false` when it is not on screen yet. `in_order`:
    /// the transcript is being shown in seq order, so the message moves after those before it
    /// (a message typed before a reload is drawn before the replayed history).
    pub fn confirm(&mut self, client_id: &str, seq: i64, in_order: bool) -> bool {
        match self.mine.iter_mut().find(|m| m.client_id == client_id) {
            Some(mine) => {
                mine.seq = Some(seq);
                if in_order {
                    // The mark's line's bubble.
                    let item = json::get(&json::get(&mine.mark, "parentNode"), "parentNode");
                    let _ = self.list.append_child(item.unchecked_ref());
                }
                if mine.mark.text_content().as_deref() != Some("✓✓") {
                    mine.mark.set_text_content(Some("✓"));
                }
                true
            }
            None => false,
        }
    }

    /// Marks the visitor's message as refused for good.
    pub fn fail(&mut self, client_id: &str, reason: Text) {
        if let Some(index) = self.mine.iter().position(|m| m.client_id == client_id) {
            let mine = self.mine.remove(index);
            mine.mark.set_text_content(Some(self.tr(reason)));
            let _ = mine.mark.set_attribute("class", "mark failed");
        }
    }

    /// A stored message from the transcript (or a live one from the agent).
    /// `by`: the writer's name; `None` for the visitor's own message.
    pub fn add_message(
        &mut self,
        by: Option<&str>,
        body: &str,
        file: Option<&File>,
        at: f64,
        seq: i64,
        client_id: &str,
    ) {
        match self.bubble(by, body, file, Some(at)) {
            (meta, _) if by.is_none() => self.mine(&meta, client_id, Some(seq), "✓"),
            (meta, Some(text)) => self.theirs.push(Theirs {
                seq,
                text,
                meta,
                translated: None,
            }),
            _ => {}
        }
    }

    /// Shows the agent's message `seq` in the visitor's language, with a toggle under it. A
    /// repeat (replayed after a reconnect) replaces the translation and keeps the visitor's
    /// choice; a message not on screen is skipped.
    pub fn translate(&mut self, seq: i64, translation: String) {
        let doc = &self.doc;
        let Some(m) = self.theirs.iter_mut().find(|m| m.seq == seq) else {
            return;
        };
        let (toggle, versions) = m.translated.get_or_insert_with(|| {
            let toggle = add(doc, &m.meta, "button", "kefu-original", &[BUTTON], "");
            let original = m.text.text_content().unwrap_or_default();
            let versions = Versions {
                original,
                translation: String::new(),
                original_shown: false,
            };
            (toggle, versions)
        });
        versions.translation = translation;
        render(doc, self.lang, &m.text, toggle, versions);
        self.scroll_to_end();
    }

    /// A click on a translated message's toggle: the original, or the translation again.
    pub fn toggle_original(&mut self, button: &Element) {
        for m in &mut self.theirs {
            if let Some((toggle, versions)) = &mut m.translated
                && toggle == button
            {
                versions.original_shown = !versions.original_shown;
                render(&self.doc, self.lang, &m.text, toggle, versions);
            }
        }
    }

    /// The agent has read the visitor's messages up to `seq`.
    pub fn mark_read(&self, up_to: i64) {
        for mine in &self.mine {
            if mine.seq.is_some_and(|seq| seq <= up_to) {
                mine.mark.set_text_content(Some("✓✓"));
            }
        }
    }

    /// Removes every message (a new visitor identity, or a conversation that is gone).
    pub fn clear(&mut self) {
        self.mine.clear();
        self.theirs.clear();
        self.list.set_text_content(None);
        let _ = self.list.append_child(&self.greeting);
    }

    /// Shows "WHO WHAT" under the transcript ("Mei is typing…", "#2 in the queue…"), or hides
    /// the line.
    pub fn typing(&self, who: Option<&str>, what: Text) {
        match who {
            Some(who) => {
                let mut text = String::from(who);
                text.push(' ');
                text.push_str(self.tr(what));
                self.typing.set_text_content(Some(&text));
                show(&self.typing, true);
            }
            None => show(&self.typing, false),
        }
    }

    /// Offers the paperclip for the site's accepted types (none: no paperclip); `busy` while
    /// a file uploads.
    pub fn set_files(&self, types: &str, busy: bool) {
        show(&self.attach, !types.is_empty());
        let _ = self.file.set_attribute("accept", types);
        let _ = self
            .attach
            .set_attribute("class", if busy { "att busy" } else { "att" });
    }

    /// Offers the transcript field when the server can send mail.
    pub fn offer_transcript(&self, on: bool) {
        show(&self.transcript, on);
    }

    /// After `resolved` (`Some(false)`): the rating form and "start a new conversation";
    /// `Some(true)`: rated, thanks; `None`: neither (open again, or a new conversation).
    pub fn resolved(&self, rated: Option<bool>) {
        show(&self.rate, rated == Some(false));
        show(&self.rated, rated == Some(true));
        show(&self.again, rated.is_some());
    }

    /// Shows or hides the emoji picker.
    pub fn toggle_emoji(&self) {
        show(&self.emoji, self.emoji.has_attribute("hidden"));
    }

    /// Shows a notice under the transcript, or hides it.
    pub fn notice(&self, text: Option<Text>) {
        show(&self.notice, text.is_some());
        if let Some(text) = text {
            self.notice.set_text_content(Some(self.tr(text)));
        }
    }

    /// The chat cannot work on this page (banned, origin not allowed, outdated widget).
    pub fn unavailable(&self) {
        self.notice(Some(Text::Unavailable));
        show(&self.compose, false);
        show(&self.offline, false);
        let _ = self.host.set_attribute("data-state", "unavailable");
    }

    /// The value of the field `name` in `form` (empty when there is none).
    pub fn value(form: &Element, name: &str) -> String {
        let mut selector = String::from("[name=");
        selector.push_str(name);
        selector.push(']');
        match form.query_selector(&selector) {
            Ok(Some(field)) => value(&field),
            _ => String::new(),
        }
    }

    /// The leave-message was stored: thank the visitor instead of the form.
    pub fn left_message(&self) {
        show(&self.offline, false);
        show(&self.thanks, true);
        self.notice(None);
    }
}

/// A form field's value (inputs and text areas alike).
pub fn value(field: &Element) -> String {
    json::text(field, "value").unwrap_or_default()
}

/// Sets a form field's value.
pub fn set_value(field: &Element, value: &str) {
    json::assign(field, "value", &value.into());
}

/// Moves the keyboard focus to an element of the panel.
pub fn focus(element: &Element) {
    let _ = element.unchecked_ref::<HtmlElement>().focus();
}

/// Fills a translated message's text and its toggle's label.
fn render(doc: &Document, lang: Lang, text: &Element, toggle: &Element, versions: &Versions) {
    let (shown, label) = versions.shown();
    text.set_text_content(None);
    fill_text(doc, text, shown);
    toggle.set_text_content(Some(t(lang, label)));
}

fn show(element: &Element, visible: bool) {
    let _ = if visible {
        element.remove_attribute("hidden")
    } else {
        element.set_attribute("hidden", "")
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_translation_shows_first_and_the_toggle_swaps() {
        let mut versions = Versions {
            original: "Hello".into(),
            translation: "您好".into(),
            original_shown: false,
        };
        assert_eq!(t(Lang::Zh, versions.shown().1), "显示原文");
        assert!(matches!(versions.shown(), ("您好", Text::ShowOriginal)));
        versions.original_shown = true;
        assert!(matches!(versions.shown(), ("Hello", Text::ShowTranslation)));
        assert_eq!(t(Lang::En, versions.shown().1), "Show translation");
    }
}
