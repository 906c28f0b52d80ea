//! The chat panel's DOM: built once inside the loader's shadow root, then updated by the chat
//! state machine. Nothing here knows about the network; text goes in through `dom::fill_text`.

use crate::chat::push_number;
use crate::dom::{add, fill_text};
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

/// Handles on the panel's elements.
pub struct Ui {
    pub doc: Document,
    pub lang: Lang,
    host: Element,
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
    /// The page's own title, restored when the visitor has read the replies.
    page_title: Option<String>,
}

const HIDDEN: (&str, &str) = ("hidden", "");
const SUBMIT: (&str, &str) = ("type", "submit");
const BUTTON: (&str, &str) = ("type", "button");

impl Ui {
    /// Builds the panel next to the loader's launcher.
    pub fn new(root: &ShadowRoot, lang: Lang) -> Result<Ui, JsValue> {
        let doc = web_sys::window()
            .and_then(|w| w.document())
            .ok_or("no document")?;
        let tr = |text| t(lang, text);
        let launcher = root.query_selector(".launcher")?.ok_or("no launcher")?;
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
            "📎",
        );
        let file = add(
            &doc,
            &attach,
            "input",
            "file",
            &[("type", "file"), ("aria-label", tr(Text::Attach)), HIDDEN],
            "",
        );
        add(
            &doc,
            &compose,
            "button",
            "emo",
            &[BUTTON, ("aria-label", tr(Text::Emoji))],
            "☺",
        );
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
            host: root.host(),
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
            let own = self.page_title.get_or_insert_with(|| self.doc.title());
            let mut title = String::from("(");
            title.push_str(&number);
            title.push_str(") ");
            title.push_str(own);
            self.doc.set_title(&title);
        } else if let Some(own) = self.page_title.take() {
            self.doc.set_title(&own);
        }
    }

    fn scroll_to_end(&self) {
        self.list.set_scroll_top(self.list.scroll_height());
    }

    /// Appends a message bubble and returns its mark element.
    /// `by`: the writer's name; `None` for the visitor's own message.
    fn bubble(
        &self,
        by: Option<&str>,
        body: &str,
        file: Option<&File>,
        at: Option<f64>,
    ) -> Element {
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
        if !body.is_empty() {
            let text = add(doc, &item, "div", "b", &[], "");
            fill_text(doc, &text, body);
        }
        let meta = add(doc, &item, "div", "meta", &[], "");
        add(
            doc,
            &meta,
            "time",
            "",
            &[],
            &clock(at.unwrap_or_else(js_sys::Date::now)),
        );
        let mark = add(doc, &meta, "span", "mark", &[], "");
        self.scroll_to_end();
        mark
    }

    /// A message the visitor just sent, shown at once as "sending".
    pub fn add_pending(&mut self, client_id: &str, body: &str, file: Option<&File>) {
        let mark = self.bubble(None, body, file, None);
        mark.set_text_content(Some("…"));
        self.mine.push(Mine {
            client_id: client_id.to_string(),
            seq: None,
            mark,
        });
    }

    /// Marks the visitor's message stored; `false` when it is not on screen yet. `in_order`:
    /// the transcript is being shown in seq order, so the message moves after those before it
    /// (a message typed before a reload is drawn before the replayed history).
    pub fn confirm(&mut self, client_id: &str, seq: i64, in_order: bool) -> bool {
        match self.mine.iter_mut().find(|m| m.client_id == client_id) {
            Some(mine) => {
                mine.seq = Some(seq);
                if in_order
                    && let Some(item) = mine.mark.parent_element().and_then(|m| m.parent_element())
                {
                    let _ = self.list.append_child(&item);
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
        let mark = self.bubble(by, body, file, Some(at));
        if by.is_none() {
            mark.set_text_content(Some("✓"));
            self.mine.push(Mine {
                client_id: client_id.to_string(),
                seq: Some(seq),
                mark,
            });
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
        while let Some(last) = self.list.last_element_child() {
            if last == self.greeting {
                break;
            }
            last.remove();
        }
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
    let _ = js_sys::Reflect::set(
        field,
        &JsValue::from_str("value"),
        &JsValue::from_str(value),
    );
}

/// Moves the keyboard focus to an element of the panel.
pub fn focus(element: &Element) {
    let _ = element.unchecked_ref::<HtmlElement>().focus();
}

fn show(element: &Element, visible: bool) {
    let _ = if visible {
        element.remove_attribute("hidden")
    } else {
        element.set_attribute("hidden", "")
    };
}

/// `HH:MM` in the visitor's time zone.
fn clock(at: f64) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(at));
    let mut text = String::new();
    for (i, part) in [date.get_hours(), date.get_minutes()]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            text.push(':');
        }
        if part < 10 {
            text.push('0');
        }
        push_number(&mut text, i64::from(part));
    }
    text
}
