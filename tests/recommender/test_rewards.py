import pytest

from recommender.features import build_content_features
from recommender.rewards import (
    ENGAGEMENT_ATTRIBUTION,
    EventType,
    LoggedDecision,
    attribute_rewards,
    engagement_reward,
    feedback_events,
    tag_feedback_reward,
    watch_fraction,
)


def test_engagement_rewards():
    assert watch_fraction(15_000, 30.0) == pytest.approx(0.5)
    assert watch_fraction(90_000, 30.0) == 1.0
    assert watch_fraction(1000, None) is None
    assert watch_fraction(1000, 0.0) is None
    assert engagement_reward("view", 15_000, 30.0) == pytest.approx(0.25)
    assert engagement_reward("view", 60_000, 30.0) == pytest.approx(0.5)
    assert engagement_reward("view") == pytest.approx(0.25)  # image / document
    assert engagement_reward("like") == 1.0
    assert engagement_reward("share") == 1.0
    assert engagement_reward("dislike") == -1.0
    assert engagement_reward("skip", 3_000, 30.0) == pytest.approx(-0.45)
    assert engagement_reward("skip") == pytest.approx(-0.5)
    with pytest.raises(ValueError, match="tag event"):
        engagement_reward("tag_accept")
    with pytest.raises(ValueError, match="not a valid EventType"):
        engagement_reward("teleport")


def test_tag_feedback():
    assert tag_feedback_reward("tag_accept") == 1.0
    assert tag_feedback_reward(EventType.TAG_REJECT) == 0.0
    assert tag_feedback_reward("tag_reject", reject_reward=-0.5) == -0.5
    with pytest.raises(ValueError, match="not a tag event"):
        tag_feedback_reward("like")


def test_tag_events_are_attributed_to_their_tag_with_the_logged_propensity():
    decision = LoggedDecision(("cooking", "baking"), {"cooking": 0.9, "baking": 0.25})
    assert attribute_rewards("tag_accept", tag="Baking", decision=decision) == {
        "baking": (1.0, 0.25)
    }
    assert attribute_rewards("tag_reject", tag="cooking", decision=decision) == {
        "cooking": (0.0, 0.9)
    }
    # a tag the user picked themselves: observed regardless of the policy
    assert attribute_rewards("tag_accept", tag="bread", decision=decision) == {"bread": (1.0, 1.0)}
    with pytest.raises(ValueError, match="needs a tag"):
        attribute_rewards("tag_accept")


def test_engagement_goes_to_decision_tags_or_current_tags():
    decision = LoggedDecision(("cooking", "baking"), {"cooking": 0.9, "baking": 0.25})
    scaled = 1.0 * ENGAGEMENT_ATTRIBUTION
    assert attribute_rewards("like", decision=decision) == {
        "cooking": (scaled, 0.9),
        "baking": (scaled, 0.25),
    }
    out = attribute_rewards("view", current_tags=["Travel"], watch_time_ms=30_000, duration_s=30)
    assert out == {"travel": (pytest.approx(0.5 * ENGAGEMENT_ATTRIBUTION), 1.0)}
    assert attribute_rewards("dislike", current_tags=[]) == {}


def test_feedback_events():
    content = build_content_features("x", "y")
    events = feedback_events(content, {"a": (1.0, 0.5), "b": (0.0, 0.2)})
    assert [(e.tag, e.reward, e.propensity) for e in events] == [("a", 1.0, 0.5), ("b", 0.0, 0.2)]
    assert all(e.content is content for e in events)
