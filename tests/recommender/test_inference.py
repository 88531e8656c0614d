import io
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from recommender.features import build_content_features
from recommender.inference import SCORER_FORMAT, TagScorer

from .helpers import ALL_TAGS, TOPICS, new_agent, play, topic_content

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def trained():
    agent = new_agent()
    play(agent, rounds=120, rng=np.random.default_rng(0))
    return agent


def test_api_modules_do_not_import_torch():
    code = (
        "import sys\n"
        "import recommender, recommender.inference, recommender.features\n"
        "import recommender.vocabulary, recommender.rewards, recommender.evaluation\n"
        "import recommender.prior, recommender.content, api.recommendations.scorer, api.app\n"
        "for name in ('torch', 'sentence_transformers', 'transformers'):\n"
        "    assert name not in sys.modules, name + ' imported'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_numpy_scores_equal_torch_scores_after_export(trained):
    scorer = TagScorer.from_bytes(trained.export_scorer())
    rng = np.random.default_rng(1)
    tags = [*ALL_TAGS, "brand-new-tag", "Guitar Lessons"]
    contents = [topic_content(t, rng) for t in TOPICS]
    contents.append(build_content_features("Untitled", None, "A script about oceans", "audio", 9))
    contents.append(build_content_features())
    for content in contents:
        expected = trained.scores(content, tags)
        got = scorer.score(content, tags)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    assert np.ptp(expected) > 0.1, "scores are not trivially equal"


def test_new_tag_gets_a_score_from_its_text(trained):
    scorer = trained.scorer()
    content = build_content_features("Learn guitar", "guitar lessons for beginners")
    new, unrelated = scorer.score(content, ["guitar-lessons", "zzz-qqq"])
    assert new > unrelated


def test_propensities_are_consistent(trained):
    scorer = trained.scorer()
    rng = np.random.default_rng(2)
    content = topic_content("travel", rng)
    n = len(ALL_TAGS)
    probs = scorer.inclusion_probabilities(content, None, 3, rng, n_samples=400)
    assert set(probs) == set(ALL_TAGS)
    assert sum(probs.values()) == pytest.approx(3.0)
    floor = scorer.epsilon * 3 / n
    assert all(floor - 1e-12 <= p <= 1.0 for p in probs.values())
    for _ in range(20):
        d = scorer.recommend(content, None, 3, rng)
        assert len(d.tags) == 3 and len(set(d.tags)) == 3
        assert set(d.propensities) == set(d.tags) == set(d.scores)
        assert all(floor - 1e-12 <= p <= 1.0 for p in d.propensities.values())
        assert d.n_candidates == n and d.epsilon == scorer.epsilon
    greedy = scorer.recommend(content, None, 3, explore=False)
    assert not greedy.explored and set(greedy.propensities.values()) == {1.0}
    assert greedy.tags[0] == "travel"
    assert list(greedy.scores.values()) == sorted(greedy.scores.values(), reverse=True)


def test_empirical_inclusion_frequencies_match_propensities(trained):
    scorer = trained.scorer()
    scorer.epsilon = 0.3  # make exploration visible
    rng = np.random.default_rng(3)
    content = topic_content("music", rng)
    decisions = [scorer.recommend(content, None, 2, rng) for _ in range(3000)]
    probs = scorer.inclusion_probabilities(content, None, 2, rng, n_samples=4000)
    for tag in ("music", "chess"):
        freq = np.mean([tag in d.tags for d in decisions])
        assert freq == pytest.approx(probs[tag], abs=0.03)
    explored = np.mean([d.explored for d in decisions])
    assert explored > 0.25  # at least the uniform branch (0.3 * P(set differs from greedy))
    scorer.epsilon = 0.0
    scorer.exploration_scale = 0.0
    assert not any(scorer.recommend(content, None, 2, rng).explored for _ in range(50))


def test_uniform_exploration_has_exact_propensities(trained):
    scorer = trained.scorer()
    scorer.epsilon = 1.0
    d = scorer.recommend(topic_content("music", np.random.default_rng(4)), None, 3)
    assert d.explored
    assert list(d.propensities.values()) == pytest.approx([3 / len(ALL_TAGS)] * 3)


def test_candidates_exclusions_and_small_k(trained):
    scorer = trained.scorer()
    content = topic_content("fitness", np.random.default_rng(5))
    d = scorer.recommend(content, ["Fitness", "fitness", "#chess"], k=5, exclude=["chess"])
    assert d.tags == ("fitness",) and d.propensities == {"fitness": 1.0}
    assert scorer.recommend(content, [], k=3).tags == ()
    assert scorer.recommend(content, None, k=0).tags == ()


def test_export_is_versioned(trained):
    blob = trained.export_scorer()
    scorer = TagScorer.from_bytes(blob)
    assert scorer.model_events == trained.events_seen
    assert scorer.config == trained.config.features
    assert len(blob) < 20_000_000
    with np.load(io.BytesIO(blob)) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["format"] = np.array(SCORER_FORMAT + 1)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with pytest.raises(ValueError, match="unsupported scorer format"):
        TagScorer.from_bytes(buf.getvalue())
    assert json.loads(str(arrays["meta"]))["events_seen"] == trained.events_seen


def test_untrained_numpy_scorer_matches_a_fresh_agent():
    agent = new_agent()
    fresh = agent.scorer()
    cold = TagScorer.untrained(agent.vocabulary.counts())
    content = build_content_features("Chess openings", "the sicilian defence explained")
    np.testing.assert_allclose(cold.score(content, ALL_TAGS), fresh.score(content, ALL_TAGS))
    np.testing.assert_allclose(cold.head_chol, fresh.head_chol)
    assert cold.recommend(content, None, 1, explore=False).tags == ("chess",)
    assert cold.epsilon == pytest.approx(fresh.epsilon)


def test_shown_tags_never_get_zero_propensity_even_with_ties():
    # untrained, no popularity and no text match: every candidate ties
    scorer = TagScorer.untrained({t: 0 for t in ALL_TAGS}, epsilon=0.0)
    scorer.exploration_scale = 0.0
    content = build_content_features("zzz", "qqq")
    for _ in range(10):
        d = scorer.recommend(content, None, 3, np.random.default_rng(0))
        assert all(p > 0 for p in d.propensities.values())


def test_grouped_candidates_score_like_one_list_without_duplicates_or_exclusions(trained):
    scorer = trained.scorer()
    content = topic_content("music", np.random.default_rng(8))
    shared = ("music", "chess", "travel", "finance")
    own = ("chess", "my-band", "poetry")  # "chess" in both: offered once
    grouped = scorer.recommend(
        content, k=4, explore=False, exclude=["travel"], candidate_groups=(shared, own)
    )
    flat = scorer.recommend(
        content, ["music", "chess", "finance", "my-band", "poetry"], k=4, explore=False
    )
    assert grouped.tags == flat.tags
    assert grouped.scores == pytest.approx(flat.scores)
    assert grouped.candidates == ("music", "chess", "finance", "my-band", "poetry")
    assert scorer.recommend(content, k=3, candidate_groups=((), ())).tags == ()
