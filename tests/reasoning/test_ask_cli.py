"""`sem3r ask`: the cached graph, several questions per call, JSON lines, one-line errors."""

import json

import pytest

from sem3r.cli import main
from sem3r.data.synthetic import SynthConfig, generate_scene
from sem3r.errors import Sem3RError
from sem3r.reasoning import graph_cache
from sem3r.reasoning.graph_cache import CACHE_FILE
from sem3r.reasoning.lmm import (
    OpenAIEndpointConfig,
    OpenAIEndpointLMM,
    check_lmm_spec,
    make_lmm,
)
from sem3r.reasoning.scene_graph import build_scene_graph


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    scene = generate_scene(SynthConfig(seed=0, num_views=3, height=60, width=80, num_points=0)).scene
    return scene.save(tmp_path_factory.mktemp("ask") / "scene")


@pytest.fixture
def builds(monkeypatch):
    calls = []

    def counting(scene, config=None):
        calls.append(1)
        return build_scene_graph(scene, config)

    monkeypatch.setattr(graph_cache, "build_scene_graph", counting)
    return calls


def test_single_question_prints_the_count_without_a_unit_word(folder, capsys):
    assert main(["ask", str(folder), "how many chairs are there?"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "4"  # was "4 count"
    assert lines[1].startswith("4 chairs in the scene (ids ")


def test_second_ask_uses_the_cached_graph(folder, builds, capsys):
    (folder / CACHE_FILE).unlink(missing_ok=True)
    assert main(["ask", str(folder), "how many tables are there?"]) == 0
    assert len(builds) == 1 and (folder / CACHE_FILE).is_file()
    assert main(["ask", str(folder), "how tall is the desk?"]) == 0
    assert len(builds) == 1
    assert main(["ask", str(folder), "how many tables are there?", "--no-cache"]) == 0
    assert len(builds) == 1  # --no-cache builds without the cache module
    out = capsys.readouterr().out.splitlines()
    assert out[0] == out[-2] == "2"


def test_questions_file_prints_one_json_line_per_question(folder, tmp_path, capsys):
    qfile = tmp_path / "q.txt"
    qfile.write_text('how many chairs are there?\n\n   \n{"question": "how tall is the desk?", "id": 1}\n'
                     "how far is the unicorn from the door?\nwhat colour is the sofa?\n", encoding="utf-8")
    assert main(["ask", str(folder), "--questions", str(qfile)]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["question"] for r in records] == ["how many chairs are there?", "how tall is the desk?",
                                                "how far is the unicorn from the door?", "what colour is the sofa?"]
    for r in records:
        assert set(r) == {"question", "answer", "kind", "value", "unit", "explanation", "objects"}
    assert (records[0]["value"], records[0]["unit"], records[0]["answer"]) == (4, "count", "4")
    assert records[1]["unit"] == "cm" and "height" in records[1]["explanation"] and len(records[1]["objects"]) == 1
    assert records[2]["kind"] == "error" and "unicorn" in records[2]["explanation"]
    assert (records[3]["kind"], records[3]["value"]) == ("unknown", None)


def test_json_flag_for_one_question(folder, capsys):
    assert main(["ask", str(folder), "how many chairs are there?", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["question"] == "how many chairs are there?" and record["value"] == 4


@pytest.mark.parametrize("argv, message", [
    (["", ], "the question is empty"),
    (["   "], "the question is empty"),
    ([], "give a QUESTION or --questions FILE"),
    (["how many chairs?", "--questions", "q.txt"], "not both"),
])
def test_blank_or_missing_question_exits_2(folder, capsys, argv, message):
    assert main(["ask", str(folder), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sem3r: error:") and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("content, message", [
    ("\n  \n", "holds no questions"),
    ('{"question": "  "}\n', "line 1: the question is empty"),
    ('how many chairs?\n{"q": "x"}\n', 'line 2 has no "question" string'),
    ('{"question": \n', "line 1 is not valid JSON"),
])
def test_bad_questions_file_exits_2(folder, tmp_path, capsys, content, message):
    qfile = tmp_path / "q.jsonl"
    qfile.write_text(content, encoding="utf-8")
    assert main(["ask", str(folder), "--questions", str(qfile)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("spec, message", [
    ("http//bad", "malformed LMM endpoint URL"),
    ("https:bad", "malformed LMM endpoint URL"),
    ("endpoint:", "unknown LMM backend 'endpoint:'"),
    ("openai:http://[::1", "unknown LMM backend 'openai:'"),
    ("http://[::1", "malformed LMM endpoint URL"),
    ("http://localhost:99999/v1", "malformed LMM endpoint URL"),
    ("http://", "names no host"),
    ("http://exa mple.com/v1", "whitespace"),
    ("  ", "the LMM spec is empty"),
])
def test_malformed_lmm_spec_is_one_line_error(folder, capsys, spec, message):
    with pytest.raises(Sem3RError, match=message):
        check_lmm_spec(spec)
    with pytest.raises(Sem3RError, match=message):
        make_lmm(spec)
    assert main(["ask", str(folder), "how many chairs?", "--lmm", spec]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_endpoint_config_is_checked_too():
    with pytest.raises(Sem3RError, match="Invalid IPv6 URL"):
        OpenAIEndpointLMM(OpenAIEndpointConfig("http://[::1/v1"))
    assert OpenAIEndpointLMM(OpenAIEndpointConfig("http://[::1]:8000/v1")).url == "http://[::1]:8000/v1/chat/completions"
    assert check_lmm_spec("g2vlm:runs/model") == "g2vlm:runs/model"
    assert check_lmm_spec("Qwen/Qwen2-VL-2B-Instruct") == "Qwen/Qwen2-VL-2B-Instruct"
