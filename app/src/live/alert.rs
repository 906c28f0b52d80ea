//! Getting the agent's attention when a visitor writes: a short chime, and a browser
//! notification while the console's tab is hidden (only if the agent allowed notifications).

use super::Live;
use leptos::prelude::WithUntracked;
use protocol::ConversationId;
use wasm_bindgen::JsCast;

/// The chime's pitch and length.
const CHIME_HZ: f32 = 880.0;
const CHIME_SECONDS: f64 = 0.18;

/// A visitor wrote in (or started) `conversation`.
pub fn notify(live: Live, conversation: ConversationId) {
    chime();
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    if !document.hidden()
        || web_sys::Notification::permission() != web_sys::NotificationPermission::Granted
    {
        return;
    }
    let (title, body) = live.desk.with_untracked(|desk| {
        let thread = desk.threads.get(&conversation);
        (
            thread.map(|t| t.visitor_label()).unwrap_or_default(),
            thread
                .and_then(|t| t.last_words())
                .map(|m| m.body.chars().take(140).collect::<String>())
                .unwrap_or_default(),
        )
    });
    let options = web_sys::NotificationOptions::new();
    options.set_body(&body);
    // One notification per conversation: a newer message replaces the older one.
    options.set_tag(&format!("kefu-{}", conversation.0));
    let _ = web_sys::Notification::new_with_options(&title, &options);
}

/// Asks for notification permission; browsers allow it only from a click.
pub fn ask_permission() {
    if web_sys::Notification::permission() == web_sys::NotificationPermission::Default {
        let _ = web_sys::Notification::request_permission();
    }
}

/// A soft sine beep through Web Audio (no sound file to fetch).
fn chime() {
    let Ok(context) = web_sys::AudioContext::new() else {
        return;
    };
    let (Ok(oscillator), Ok(gain)) = (context.create_oscillator(), context.create_gain()) else {
        return;
    };
    let now = context.current_time();
    oscillator.frequency().set_value(CHIME_HZ);
    let volume = gain.gain();
    volume.set_value(0.08);
    let _ = volume.exponential_ramp_to_value_at_time(0.0001, now + CHIME_SECONDS);
    let destination: web_sys::AudioNode = context.destination().unchecked_into();
    if oscillator.connect_with_audio_node(&gain).is_ok()
        && gain.connect_with_audio_node(&destination).is_ok()
    {
        let _ = oscillator.start();
        let _ = oscillator.stop_with_when(now + CHIME_SECONDS);
    }
    // Close the context once the beep is over, or browsers run out of audio contexts.
    leptos::prelude::set_timeout(
        move || {
            let _ = context.close();
        },
        std::time::Duration::from_millis(500),
    );
}
