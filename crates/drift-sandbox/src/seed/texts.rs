//! Texts of the generated org: names, message bodies, companies, tags — deliberately mixed
//! scripts (CJK, Arabic, Hebrew), emoji, HTML and awkward punctuation.

use super::{obj, ExtraKind};
use crate::org::Obj;
use serde_json::{json, Value};

pub const FIRST: &[&str] = &[
    "Casey", "Jordan", "Morgan", "Avery", "Riley", "Søren", "Chloé", "Ngozi", "Mateo", "Aiko",
    "Priya", "Олег", "Zoë", "Tomás", "Fatima",
];
pub const LAST: &[&str] = &[
    "Rivera",
    "Lee",
    "Hale",
    "Stone",
    "Okafor",
    "Østergaard",
    "Dubois",
    "Nakamura",
    "Patel",
    "O'Brien",
    "García-Márquez",
    "Schmidt",
    "Nguyen",
];
/// Whole names that are not "First Last" in Latin script.
pub const ODD_NAMES: &[&str] = &[
    "王芳",
    "佐藤 花子",
    "ياسمين حداد",
    "דנה כהן",
    "Ana 🌻 Lima",
    "<b>Bold</b> & Co",
    "  padded name  ",
    "Robert'); DROP TABLE contacts;--",
];
pub const BODIES: &[&str] = &[
    "<p>Hi there! 👋 Anything I can help with?</p>",
    "I have a question about pricing",
    "<p>Sure — which plan are you looking at? <a href='https://www.example.com/pricing'>See plans</a></p>",
    "Can I get an invoice in €? Our VAT id is DE123456789",
    "<p>Routing to sales: interested in <strong>Enterprise</strong></p>",
    "你好，我想了解一下企业版的价格。",
    "مرحبا، هل يمكنني التحدث مع مندوب المبيعات؟",
    "שלום, אני צריך עזרה עם החשבון",
    "<div><p>Line one</p><br/><ul><li>item &amp; more</li><li>&lt;script&gt;</li></ul></div>",
    "Thanks, that helps! 🙏🏽🎉",
    "ok",
    "Here's the log:\n```\nERROR 42: timeout\n```\nand a tab\there",
    "<p>Our team will reply in <em>under 5 minutes</em>.</p>",
    "Zalgo t̸̢̛e̷x̴t̵ and \u{200b}zero width",
];
pub const BOT_BODIES: &[&str] = &[
    "<p>Hello! 👋 What brings you here today?</p>",
    "<p>I can help you book a meeting with our team.</p>",
    "<p>Before we continue, what's your email?</p>",
];
pub const COLORS: &[&str] = &["0960C5", "7695A5", "2D88F3", "E84C3D"];
pub const TAGS: &[&str] = &["pricing", "follow_up", "bug", "vip", "日本"];
pub const COMPANIES: &[&str] = &[
    "Example Widgets Inc",
    "株式会社サンプル",
    "شركة المثال",
    "Ünïcode GmbH",
    "<i>Italic</i> Labs",
    "Gadgets & Gizmos LLC",
    "Northwind 🚀",
];

/// Optional message fields of one kind.
pub fn extra_fields(kind: ExtraKind) -> Value {
    match kind {
        ExtraKind::Buttons => json!({"buttons": [
            {"label": "Book a demo", "value": "demo", "type": "reply", "style": "primary"},
            {"label": "Just browsing", "value": "browse", "type": "reply"}]}),
        ExtraKind::Context(n) => json!({"context": {"ip": format!("203.0.113.{n}"),
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) ExampleBrowser/1.0"}}),
        ExtraKind::Attachment(n) => json!({"attachments": [{"id": 581_990 + n as i64,
            "fileName": "price sheet (final) 📎.pdf", "mimeType": "application/pdf",
            "url": "https://driftapi.com/attachments/581990/data"}]}),
    }
}

/// Custom contact attribute definitions (REFERENCE §7.1 types).
pub fn custom_attributes() -> Vec<Obj> {
    [
        ("STRING", "Plan Tier", "plan_tier"),
        ("NUMERIC", "Seats", "seats"),
        ("BOOLEAN", "Beta Opt-in", "beta_opt_in"),
        ("DATE", "Renewal Date", "renewal_date"),
        ("DATETIME", "Last Demo", "last_demo"),
        ("STRING", "Région préférée", "preferred_region"),
    ]
    .iter()
    .map(|(t, d, n)| obj(json!({"type": t, "displayName": d, "name": n})))
    .collect()
}
