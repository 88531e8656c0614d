"""Sentence splitting: abbreviations and decimals stay inside their sentence."""

from __future__ import annotations

import pytest

from pipeline.stages.narrate.sentences import split_sentences


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Dr. Smith met Mr. Jones. They talked.", ["Dr. Smith met Mr. Jones.", "They talked."]),
        ("Use a tool, e.g. a hammer. Then stop.", ["Use a tool, e.g. a hammer.", "Then stop."]),
        ("The U.S. Army grew 3.5 percent. Good.", ["The U.S. Army grew 3.5 percent.", "Good."]),
        ("Prices rose 2.75% vs. last year.", ["Prices rose 2.75% vs. last year."]),
        ("J. R. R. Tolkien wrote it. Yes!", ["J. R. R. Tolkien wrote it.", "Yes!"]),
        ("It is No. 5 on the list. Really?", ["It is No. 5 on the list.", "Really?"]),
        ("Pears etc. are fruit. Buy some etc. Then go.",
         ["Pears etc. are fruit.", "Buy some etc.", "Then go."]),
        ("So do I. Then we left.", ["So do I.", "Then we left."]),
        ("Er kam z.B. gestern. Dann ging er.", ["Er kam z.B. gestern.", "Dann ging er."]),
        ("Wait... what? No!", ["Wait...", "what?", "No!"]),
        ("今天天气很好。我们去公园吧！好吗？", ["今天天气很好。", "我们去公园吧！", "好吗？"]),
        ("東京は大きい。 Dr. 田中です。", ["東京は大きい。", "Dr. 田中です。"]),
        ("مرحبا بكم. كيف حالك؟ أنا بخير.", ["مرحبا بكم.", "كيف حالك؟", "أنا بخير."]),
    ],
)  # fmt: skip
def test_sentences_end_where_the_sentence_ends(text: str, sentences: list[str]):
    assert split_sentences(text) == sentences
