"""Words the sample generator builds people, rooms and messages from.

Chosen to exercise what real exports carry: accents, CJK, right-to-left scripts, emoji,
text that looks like markup or mail headers, and the ``***Disclaimer`` convention.
"""

# ruff: noqa: RUF001  (look-alike letters and full-width punctuation are the point here)

from __future__ import annotations

FIRST_NAMES: tuple[str, ...] = (
    "John",
    "Ann",
    "Peter",
    "Maria",
    "José",
    "Zoë",
    "Søren",
    "Ólafur",
    "François",
    "Łukasz",
    "Chloé",
    "Björn",
    "Ngozi",
    "Priya",
    "Wei",
    "Yuki",
    "محمد",
    "فاطمة",
    "דוד",
    "שרה",
    "Ιωάννης",
    "Дмитрий",
    "Ahmed",
    "Élodie",
    "Mei",
    "Kenji",
    "Aisha",
    "Oğuz",
    "Siobhán",
    "Raúl",
)

LAST_NAMES: tuple[str, ...] = (
    "Doe",
    "Smith",
    "Müller",
    "Álvarez",
    "Kierkegård",
    "Þórsson",
    "Dubois",
    "Wójcik",
    "Nakamura",
    "李",
    "田中",
    "王",
    "علي",
    "الحسن",
    "כהן",
    "לוי",
    "Παπαδόπουλος",
    "Иванов",
    "O'Brien",
    "van der Berg",
    "Okafor",
    "Sharma",
    "García-Márquez",
    "Yılmaz",
    "Nguyễn",
)

EXTERNAL_COMPANIES: tuple[tuple[str, str | None], ...] = (
    ("OTHER BROKER LTD", "broker.example"),
    ("Nordic Energy Trading AS", "nordic-energy.example"),
    ("Banco Ejemplo S.A.", "bancoejemplo.example"),
    ("東京商事株式会社", "tokyo-shoji.example"),
    ("Gulf Petroleum Co. — شركة نفط الخليج", None),
    ("Müller & Söhne Rohstoffe GmbH", "mueller-soehne.example"),
    ("Independent Trader", None),
    ("Atlantic Freight <Chartering> LLC", "atlantic-freight.example"),
)

PERSISTENT_ROOM_NAMES: tuple[str, ...] = (
    "EUR Rates Axes",
    "Brent Crude Desk",
    "Power & Gas <EU>",
    "日本国債 JGB",
    "نفط الخليج",
    "Soft Commodities ☕🍫",
    "US IG Credit",
    "Freight — Capesize",
    "Métaux précieux",
    "TTF Winter Strip",
    'NatGas "Henry Hub"',
    "ESG Credits 🌱",
)

GROUP_ROOM_NAMES: tuple[str, ...] = (
    "Ad hoc: Brent spreads",
    "Q4 axes",
    "Lunch? 🍣",
    "Block trade follow-up",
    "Settlement",
)

INSTRUMENTS: tuple[str, ...] = (
    "5y EUR",
    "10y USD",
    "Brent Feb27",
    "WTI Mar27",
    "TTF Q1-27",
    "Henry Hub Jan",
    "Gold Dec",
    "EUA Dec27",
    "JGB 10y",
    "Cape 5TC Q2",
    "Cocoa May",
    "Coffee KC Jul",
)

PHRASES: tuple[str, ...] = (
    "morning all",
    "any axes today?",
    "can you show me a level?",
    "done, thanks 👍",
    "will revert shortly",
    "Ça marche, à demain",
    "شكرا جزيلا، سأعود إليك",
    "תודה, נדבר מחר",
    "了解しました。よろしくお願いします。",
    "спасибо, договорились",
    "market looks heavy 📉 into the close",
    "see <b>this</b> &amp; that",
    "line one\nline two\n\tindented line three",
    "  leading and trailing spaces  ",
    "price is 100 < 101 && 102 > 99",
)

SPECIAL_TEXTS: dict[str, str] = {
    "html": "<script>alert('pwned')</script>",
    "headers": "ok\r\nBcc: everyone@victim.example\r\nSubject: hijack",
    "emoji": "👨‍👩‍👧 family emoji and flags 🇬🇧🇯🇵 and skin tone 👍🏽",
    "rtl": "mixed RTL: price עומד על 2.315 היום",
    "cjk": "谢谢，收到",
}

FILE_NAMES: tuple[str, ...] = (
    "Q4 axes.xlsx",
    "term sheet.pdf",
    "Résumé 2026.docx",
    "価格表.csv",
    "تقرير.pdf",
    "run sheet (final) v2.xlsx",
    "<evil>.html",
    "chart 📈.png",
)

DISCLAIMER_TEXT = (
    "This conversation is recorded and archived by {firm} for regulatory purposes. "
    "Messages are not an offer or a solicitation."
)

PREFIX_DISCLAIMER_TEXT = "***Disclaimer: {firm} chats are monitored and retained."

SYSTEM_TEXTS: tuple[str, ...] = (
    "{name} changed the room topic to “{room}”",
    "{name} was made a moderator",
    "{name} invited an external participant",
    "Room history is retained under the firm's policy",
)
