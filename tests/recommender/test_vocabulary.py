from recommender.features import build_content_features
from recommender.vocabulary import Vocabulary


def test_vocabulary_grows_from_users_accepts_and_seeds_but_not_rejects():
    vocab = Vocabulary()
    assert vocab.seed(["Cooking", "#travel"]) == ["cooking", "travel"]
    vocab.add_user_tags(["cooking", "Baking"])
    vocab.record_accept("baking")
    vocab.record_accept("street food")
    vocab.record_reject("never-seen")
    vocab.record_reject("travel")
    assert vocab.tags() == ["cooking", "travel", "baking", "street-food"]
    assert "never-seen" not in vocab
    assert vocab.count("baking") == 2 and vocab.count("travel") == 0
    entry = vocab.entry("travel")
    assert entry is not None and entry.seeded and entry.rejects == 1
    assert vocab.most_popular(2) == ["baking", "cooking"]
    assert vocab.popularity("baking") == 1.0
    assert 0.0 < vocab.popularity("cooking") < 1.0
    assert vocab.popularity("travel") == 0.0
    assert vocab.remove("travel") and "travel" not in vocab


def test_max_size_and_empty_tags_are_respected():
    vocab = Vocabulary(max_size=2)
    vocab.add_user_tags(["a1", "", "b2", "c3"])
    assert vocab.tags() == ["a1", "b2"]


def test_cold_start_prefers_text_similarity_then_popularity():
    vocab = Vocabulary()
    vocab.add_user_tags(["music"] * 50)
    vocab.seed(["gardening", "chess"])
    content = build_content_features("Spring gardening tips", "Planting tomatoes in the garden")
    ranked = vocab.cold_start(content, k=3)
    assert [t for t, _ in ranked][:2] == ["gardening", "music"]
    unrelated = build_content_features("Untitled", "")
    assert vocab.cold_start(unrelated, k=1)[0][0] == "music"


def test_round_trip():
    vocab = Vocabulary(max_size=10)
    vocab.add_user_tags(["x-ray", "yoga"])
    vocab.record_accept("yoga")
    vocab.seed(["zen"])
    again = Vocabulary.from_json(vocab.to_json())
    assert again.to_dict() == vocab.to_dict()
