//! Protocol frames as plain JS objects. The browser's own `JSON` parses and prints them, so the
//! widget carries no JSON library of its own (it must stay inside its size budget).

use alloc::string::String;
use js_sys::{Array, JSON, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};

/// Parses a JSON text; `None` when it is not JSON.
pub fn parse(text: &str) -> Option<JsValue> {
    JSON::parse(text).ok()
}

/// Prints a value as JSON text.
pub fn stringify(value: &JsValue) -> String {
    JSON::stringify(value)
        .ok()
        .and_then(|text| text.as_string())
        .unwrap_or_default()
}

/// `value[key]`, or `undefined`.
pub fn get(value: &JsValue, key: &str) -> JsValue {
    Reflect::get(value, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// Sets `value[key]`: properties without a binding of their own (one import for all).
pub fn assign(value: &JsValue, key: &str, to: &JsValue) {
    // Setting a property of a DOM object or a plain object does not throw.
    let _ = Reflect::set(value, &JsValue::from_str(key), to);
}

/// `value[key]` as a string.
pub fn text(value: &JsValue, key: &str) -> Option<String> {
    get(value, key).as_string()
}

/// `value[key]` as an integer (every integer the server sends is below 2^53).
pub fn int(value: &JsValue, key: &str) -> Option<i64> {
    get(value, key).as_f64().map(|n| n as i64)
}

/// `value[key]` as a boolean.
pub fn flag(value: &JsValue, key: &str) -> Option<bool> {
    get(value, key).as_bool()
}

/// `value` when it is an array, else an empty one.
pub fn items(value: &JsValue) -> Array {
    if Array::is_array(value) {
        value.clone().unchecked_into()
    } else {
        Array::new()
    }
}

/// Builds an object field by field.
pub struct Obj(Object);

impl Obj {
    /// An empty object.
    pub fn new() -> Obj {
        Obj(Object::new())
    }

    /// A frame: an object whose `type` is `kind`.
    pub fn frame(kind: &str) -> Obj {
        Obj::new().set("type", kind)
    }

    /// Sets `key` to `value`.
    pub fn set(self, key: &str, value: impl Into<JsValue>) -> Obj {
        self.put(key, value.into())
    }

    /// Sets `key` when there is a value.
    pub fn maybe(self, key: &str, value: Option<impl Into<JsValue>>) -> Obj {
        self.put(key, value.map_or(JsValue::UNDEFINED, Into::into))
    }

    // One non-generic body for every value type keeps the wasm small. An undefined value is
    // left out (JSON has no undefined).
    fn put(self, key: &str, value: JsValue) -> Obj {
        if !value.is_undefined() {
            // Setting a property on a plain object cannot fail.
            let _ = Reflect::set(&self.0, &JsValue::from_str(key), &value);
        }
        self
    }

    /// The finished object.
    pub fn value(self) -> JsValue {
        self.0.into()
    }
}

/// An array of values.
pub fn array(values: impl IntoIterator<Item = JsValue>) -> JsValue {
    values.into_iter().collect::<Array>().into()
}
