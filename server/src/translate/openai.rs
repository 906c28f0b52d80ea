//! Any OpenAI-compatible chat-completions endpoint (OpenAI itself, and local LLM servers such
//! as llama.cpp, Ollama or vLLM): `POST {base}/chat/completions` with `{"model", "messages",
//! "temperature"}`, answered by `{"choices": [{"message": {"content"}}]}`. The model is told
//! to answer with the translation only; it detects nothing, so Kefu detects offline.

use serde::Deserialize;

use super::{Failure, Provider, TranslateError, Translation, body_of, json, request_failure};

/// A chat-completions endpoint used as a translator.
pub struct OpenAiChat {
    /// The API base, up to and including `/v1` (`https://api.openai.com/v1`,
    /// `http://127.0.0.1:11434/v1`).
    pub url: String,
    /// The bearer key, if the server wants one (local servers often do not).
    pub api_key: Option<String>,
    /// The model name.
    pub model: String,
    /// The outbound client (with the request timeout).
    pub client: crate::outbound::Outbound,
}

#[derive(Deserialize)]
struct Answer {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
}

/// The instruction the model gets before the text.
fn instruction(source: Option<&str>, target: &str) -> String {
    let from = match source {
        Some(source) => format!("from the language with BCP 47 tag {source} "),
        None => String::new(),
    };
    format!(
        "You are a translation engine in a customer-service chat. Translate the user's message \
         {from}into the language with BCP 47 tag {target}. Answer with the translation only: no \
         quotes, notes or explanations. Keep line breaks, numbers, URLs, order numbers and emoji \
         as they are."
    )
}

#[async_trait::async_trait]
impl Provider for OpenAiChat {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn max_chars(&self) -> usize {
        // Well inside small local models' context windows, with room for the answer.
        4_000
    }

    async fn translate_once(
        &self,
        text: &str,
        source: Option<&str>,
        target: &str,
    ) -> Result<Translation, Failure> {
        let body = serde_json::json!({
            "model": self.model,
            "messages": [
                { "role": "system", "content": instruction(source, target) },
                { "role": "user", "content": text },
            ],
            "temperature": 0,
        });
        let mut request = self
            .client
            .post(&format!(
                "{}/chat/completions",
                self.url.trim_end_matches('/')
            ))?
            .json(&body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(request_failure)?;
        let answer: Answer = json(&body_of(response).await?)?;
        let text = answer
            .choices
            .into_iter()
            .next()
            .and_then(|choice| choice.message.content)
            .map(|content| content.trim().to_owned())
            .filter(|content| !content.is_empty())
            .ok_or_else(|| TranslateError::Malformed("no message content".into()))?;
        Ok(Translation {
            text,
            detected: None,
        })
    }
}
