"""Tag recommender: a contextual-bandit agent that learns tags from viewer feedback.

numpy-only (safe to import in the API process; nothing here imports torch):
    features    hashed content/tag features (``build_content_features``)
    vocabulary  the tag vocabulary with popularity counts and cold start
    rewards     viewer feedback -> per-tag rewards (``FeedbackEvent``)
    inference   ``TagScorer``: load an exported model, ``recommend`` k tags
    evaluation  off-policy evaluation (IPS / SNIPS) of logged decisions
    synthetic   deterministic synthetic tagging data

torch (training worker, CLI, benchmarks only):
    agent       ``Agent``: the model, ``update`` and ``export_scorer``
    checkpoint  ``save``/``load`` training checkpoints as bytes
    simulate    ``main``: ``t2m recommender simulate``

This module deliberately imports none of them, so ``import recommender.inference``
never pulls in torch.
"""
