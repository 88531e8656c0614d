import csv
import json

import pytest

from recommender import simulate
from recommender.synthetic import generate_items, write_csv


def test_small_simulation_json_parses_and_beats_random(capsys):
    code = simulate.main(["--synthetic", "300", "--events", "3000", "--json", "--seed", "1"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"policies", "events", "seconds"}
    assert result["events"] == 3000 and result["seconds"] > 0
    policies = result["policies"]
    assert set(policies) == {"agent", "random", "popularity", "supervised"}
    assert set(policies["supervised"]) == {"heldout_p1", "heldout_p3"}
    for name in ("agent", "random", "popularity"):
        assert set(policies[name]) == {"online_p1", "online_p3", "heldout_p1", "heldout_p3"}
        assert set(policies[name]["online_p1"]) == {"1000"}  # checkpoints <= --events
    agent, rand = policies["agent"], policies["random"]
    assert agent["online_p1"]["1000"] > rand["online_p1"]["1000"] + 0.2
    assert agent["heldout_p1"] > rand["heldout_p1"] + 0.2
    assert agent["heldout_p3"] > rand["heldout_p3"]
    assert 0.0 <= policies["supervised"]["heldout_p1"] <= 1.0


def test_csv_input_without_weights_and_text_output(tmp_path, capsys):
    path = tmp_path / "items.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "tags"])
        for item in generate_items(60, n_tags=6, seed=3):
            writer.writerow([item.text, " ".join(item.tags)])
        writer.writerow(["no tags here", ""])
    assert len(simulate.read_items(path)) == 60
    assert simulate.main(["--csv", str(path), "--events", "300", "--k", "2"]) == 0
    out = capsys.readouterr().out
    assert "supervised" in out and "heldout P@1" in out and "events=300" in out


def test_arguments_are_validated(capsys):
    with pytest.raises(SystemExit):
        simulate.main(["--events", "10"])  # neither --csv nor --synthetic
    with pytest.raises(SystemExit):
        simulate.main(["--synthetic", "10", "--holdout", "1.5"])
    capsys.readouterr()


def test_synthetic_data_is_deterministic(tmp_path):
    a = generate_items(80, seed=7)
    assert a == generate_items(80, seed=7)
    assert a != generate_items(80, seed=8)
    write_csv(tmp_path / "a.csv", a)
    write_csv(tmp_path / "b.csv", generate_items(80, seed=7))
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert {len(it.tags) for it in a} == {1, 2, 3}
    assert all(it.weight > 0 for it in a)
    assert max(it.weight for it in a) > 10 * min(it.weight for it in a)  # Zipf-ish
    mentioned = sum(any(t in it.text.lower() for t in it.tags) for it in a)
    assert mentioned < len(a) * 0.7, "tags must mostly be learned, not read off the text"
