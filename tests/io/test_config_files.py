"""YAML configuration files: broken syntax names its line, validation errors read as one line."""

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from microsr.errors import InputError
from microsr.io.config_files import read_yaml, validation_message

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Stage(Strict):
    name: str
    iterations: int = Field(ge=1)
    learning_rate: float


class Network(Strict):
    features: int = 32
    blocks: int = 4


class Folder(Strict):
    lr_dir: str
    hr_dir: str


class Run(Strict):
    network: Network = Network()
    stages: list[Stage]
    folders: dict[str, Folder] = {}
    folder: Folder | None = None
    output_dir: str = "runs"

    @model_validator(mode="after")
    def _some_stage(self):
        if not self.stages:
            raise ValueError("give at least one stage")
        return self


def message(data: dict, schema=Run) -> str:
    with pytest.raises(ValidationError) as caught:
        schema.model_validate(data)
    return validation_message(caught.value, "run.yaml", schema)


# --- read_yaml -------------------------------------------------------------------------------------

def test_reads_the_mapping(tmp_path):
    (tmp_path / "run.yaml").write_text("output_dir: runs/a\nstages:\n  - {name: s1, iterations: 10}\n")
    assert read_yaml(tmp_path / "run.yaml") == {"output_dir": "runs/a", "stages": [{"name": "s1", "iterations": 10}]}


def test_empty_file_is_an_empty_mapping(tmp_path):
    (tmp_path / "run.yaml").write_text("# nothing set yet\n")
    assert read_yaml(tmp_path / "run.yaml") == {}


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"^config .*nope.yaml does not exist: check the path$"):
        read_yaml(tmp_path / "nope.yaml")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(InputError, match="is a folder: give the YAML file inside it"):
        read_yaml(tmp_path)


@pytest.mark.parametrize("text,where", [
    ("a: 1\nb: [1, 2\nc: 3\n", r"line 3, column 2: expected ',' or '\]'.*flow sequence started on line 2"),
    ("a: 1\n b: 2\n", "line 2, column 3: mapping values are not allowed here"),
    ('a: 1\nb: "unclosed\nc: 2\n', r"line 4, column 1: .*quoted scalar started on line 2"),
])
def test_broken_syntax_names_line_and_column(tmp_path, text, where):
    (tmp_path / "run.yaml").write_text(text)
    with pytest.raises(InputError, match=rf"^config .*run.yaml is not valid YAML: {where}.*; check the "
                                         "indentation"):
        read_yaml(tmp_path / "run.yaml")


def test_tab_indentation_is_named(tmp_path):
    (tmp_path / "run.yaml").write_text("network:\n  features: 8\n\tblocks: 2\n")
    with pytest.raises(InputError, match=r"line 3, column 1: found character '\\t'.*indent with spaces, not tabs"):
        read_yaml(tmp_path / "run.yaml")


@pytest.mark.parametrize("text, message", [
    ("output_dir: a\nnetwork: {features: 8}\noutput_dir: b\n",
     r"run.yaml: line 3: key 'output_dir' is given twice \(first on line 1\)"),
    ("network: {features: 8, features: 16}\n", r"line 1: key 'features' is given twice \(first on line 1\)"),
], ids=["on two lines", "on one line"])
def test_key_given_twice(tmp_path, text, message):
    (tmp_path / "run.yaml").write_text(text)
    with pytest.raises(InputError, match=message):
        read_yaml(tmp_path / "run.yaml")


def test_merge_key_may_be_overridden(tmp_path):
    (tmp_path / "run.yaml").write_text("base: &base {features: 8, blocks: 2}\nnetwork:\n  <<: *base\n  blocks: 4\n")
    assert read_yaml(tmp_path / "run.yaml")["network"] == {"features": 8, "blocks": 4}


@pytest.mark.parametrize("text,kind", [("- a\n- b\n", "list"), ("just words\n", "str")])
def test_top_level_must_be_a_mapping(tmp_path, text, kind):
    (tmp_path / "run.yaml").write_text(text)
    with pytest.raises(InputError, match=rf"holds a {kind} at the top level, not 'key: value' lines"):
        read_yaml(tmp_path / "run.yaml")


def test_binary_file(tmp_path):
    (tmp_path / "run.yaml").write_bytes(b"a: \x00\x01\x02")
    with pytest.raises(InputError, match="is not valid YAML .*save it as UTF-8 text"):
        read_yaml(tmp_path / "run.yaml")


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_shipped_examples_read(path):
    assert read_yaml(path)


# --- validation_message --------------------------------------------------------------------------

def test_misspelt_key_comes_first_with_a_suggestion():
    text = message({"stages": [{"name": "s1", "iterations": 10, "learning_rat": 1e-4}]})
    assert text == ("config run.yaml: unknown key 'stages.0.learning_rat' (did you mean "
                    "'stages.0.learning_rate'?); also: stages.0.learning_rate: Field required (2 problems in all)")


def test_top_level_misspelling_as_in_the_issue():
    assert message({"learning_rat": 1e-4}, Stage) == (
        "config run.yaml: unknown key 'learning_rat' (did you mean 'learning_rate'?); also: name: Field "
        "required; iterations: Field required; learning_rate: Field required (4 problems in all)")


@pytest.mark.parametrize("data,expected", [
    ({"stages": [{"name": "s", "iterations": 1, "learning_rate": 1}], "network": {"featurs": 8}},
     "unknown key 'network.featurs' (did you mean 'network.features'?)"),
    ({"stages": [{"name": "s", "iterations": 1, "learning_rate": 1}], "folder": {"lr_dri": "a", "hr_dir": "b"}},
     "unknown key 'folder.lr_dri' (did you mean 'folder.lr_dir'?)"),
    ({"stages": [{"name": "s", "iterations": 1, "learning_rate": 1}],
      "folders": {"day1": {"lr_dir": "a", "hr_dri": "b"}}},
     "unknown key 'folders.day1.hr_dri' (did you mean 'folders.day1.hr_dir'?)"),
    ({"stages": [{"name": "s", "iterations": 1, "learning_rate": 1}], "output_dri": "x"},
     "unknown key 'output_dri' (did you mean 'output_dir'?)"),
])
def test_nested_misspellings_are_suggested(data, expected):
    assert message(data).startswith(f"config run.yaml: {expected}")


def test_unknown_key_without_a_near_one():
    text = message({"stages": [{"name": "s", "iterations": 1, "learning_rate": 1}], "colour": "red"})
    assert text == "config run.yaml: unknown key 'colour'"


def test_without_schema_unknown_keys_still_come_first():
    with pytest.raises(ValidationError) as caught:
        Stage.model_validate({"learning_rat": 1e-4, "name": "s", "iterations": 1})
    assert validation_message(caught.value, "run.yaml") == (
        "config run.yaml: unknown key 'learning_rat'; also: learning_rate: Field required (2 problems in all)")


def test_wrong_value_shows_what_was_given():
    text = message({"stages": [{"name": "s", "iterations": "ten", "learning_rate": 1}]})
    assert text == ("config run.yaml: stages.0.iterations: Input should be a valid integer, unable to parse "
                    "string as an integer (got 'ten')")


def test_validator_message_keeps_its_own_words():
    assert message({"stages": []}) == "config run.yaml: give at least one stage"


def test_many_problems_stay_one_line():
    text = message({"stages": [{}, {}], "a": 1, "b": 2})
    assert "\n" not in text
    assert text.startswith("config run.yaml: unknown key 'a'; also: unknown key 'b'; stages.0.name: Field required")
    assert text.endswith("; and 4 more (8 problems in all)")


def test_source_from_the_command_line():
    with pytest.raises(ValidationError) as caught:
        Network.model_validate({"blocks": "many"})
    assert validation_message(caught.value, "from the command line", Network) == (
        "config from the command line: blocks: Input should be a valid integer, unable to parse string as an "
        "integer (got 'many')")
