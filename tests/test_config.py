"""Run-file settings: defaults, round trips, and one clear line per bad setting."""
from __future__ import annotations

import dataclasses
import pickle

import pytest

from clusterdynamicsml.pipeline.config import ConfigError, PairCutoff, RunConfig


def test_template_round_trip_holds_every_default():
    cfg = RunConfig()
    text = cfg.to_toml(template=True)
    assert RunConfig.from_toml_string(text) == cfg
    assert RunConfig.from_toml_string(cfg.to_toml()) == cfg
    # every field of every section appears in the template (commented when unset)
    for section in cfg.to_dict(keep_none=True):
        assert f"[{section}]" in text
        for key in cfg.to_dict(keep_none=True)[section]:
            assert f"{key} = " in text, (section, key)


def test_from_toml_resolves_paths_against_the_run_file(tmp_path):
    sub = tmp_path / "job"
    sub.mkdir()
    (sub / "frames.xyz").write_text("1\n\nPb 0 0 0\n")
    run = sub / "run.toml"
    run.write_text('[frames]\npath = "frames.xyz"\n[dynamics]\nframes_per_bin = 4\n')
    cfg = RunConfig.from_toml(run)
    assert cfg.dynamics.frames_per_bin == 4
    assert cfg.resolve_path(cfg.frames.path) == (sub / "frames.xyz").resolve()
    assert cfg.resolved().frames.path == str((sub / "frames.xyz").resolve())
    cfg.check_paths()


def test_config_is_immutable_and_picklable():
    cfg = RunConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.dynamics.frames_per_bin = 3
    assert pickle.loads(pickle.dumps(cfg)) == cfg
    new = cfg.replace("dynamics", frames_per_bin=3)
    assert new.dynamics.frames_per_bin == 3 and cfg.dynamics.frames_per_bin == 1


@pytest.mark.parametrize(
    "text, message",
    [
        ('[dynamics]\nframes_per_bin = "two"', "run.toml: [dynamics] frames_per_bin: expected an integer, got 'two'"),
        ("[dynamics]\nframes_per_bin = 0", "run.toml: [dynamics] frames_per_bin: must be >= 1, got 0"),
        ("[dynamics]\nframs_per_bin = 2", "run.toml: [dynamics] frams_per_bin: unknown key (did you mean 'frames_per_bin'?)"),
        ("[dynamcs]\nframes_per_bin = 2", "run.toml: [dynamcs]: unknown section (did you mean [dynamics]?)"),
        ("threads = 2", "run.toml: threads: unknown key"),
        ('[clusters]\ncutoffs = { "Pb-I" = -1 }', "run.toml: [clusters] cutoffs: pair Pb-I: cutoff must be a positive"),
        ('[clusters]\ncutoffs = { "PbI" = 3.0 }', "run.toml: [clusters] cutoffs: pair 'PbI': expected two element symbols"),
        ('[clusters]\nnode = "Pb"', "run.toml: [clusters] node: expected a list of strings, got 'Pb'"),
        ('[clusters]\nnode = ["lead"]', "run.toml: [clusters] node: 'lead' is not an element symbol"),
        ("[saxs]\nq_max = 0.01", "run.toml: [saxs] q_max: must be larger than q_min"),
        ('[saxs]\nmethod = "fast"', "run.toml: [saxs] method: expected one of 'exact', 'histogram', got 'fast'"),
        ("[frames]\nbox = [1.0, 2.0]", "run.toml: [frames] box: expected 0 or 3 or 6 or 9 values, got 2"),
        ("[predict]\nenabled = 1", "run.toml: [predict] enabled: expected true or false, got 1"),
        ("[run\nname='x'", "run.toml: not valid TOML"),
    ],
)
def test_bad_settings_give_one_line_naming_the_key(tmp_path, text, message):
    path = tmp_path / "run.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        RunConfig.from_toml(path)
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


def test_missing_paths_are_named(tmp_path):
    run = tmp_path / "run.toml"
    run.write_text('[frames]\npath = "nope.xyz"\n')
    with pytest.raises(ConfigError, match=r"run.toml: \[frames\] path: not found: .*nope.xyz"):
        RunConfig.from_toml(run).check_paths()
    with pytest.raises(ConfigError, match=r"\[frames\] path: required"):
        RunConfig().check_paths()
    with pytest.raises(ConfigError, match="run file not found"):
        RunConfig.from_toml(tmp_path / "missing.toml")


def test_cutoff_levels_and_rules_dict():
    cfg = RunConfig.from_dict({"clusters": {"cutoffs": {"Pb-I": 3.4, "O-Pb": {"0": 3.0, "1": 5.0}},
                                            "shell": ["O:DMF"], "shell_levels": [1]}})
    assert PairCutoff("O", "Pb", 1, 5.0) in cfg.clusters.cutoffs
    rules = cfg.cluster_rules_dict()
    assert rules["cutoffs"][("O", "Pb")] == {0: 3.0, 1: 5.0}
    assert rules["shell"] == ["O:DMF"]
    # the nested form survives a TOML round trip
    assert RunConfig.from_toml_string(cfg.to_toml()) == cfg


def test_box_forms():
    assert RunConfig().box_value() is None
    assert RunConfig.from_dict({"frames": {"box": [10, 11, 12]}}).box_value() == [10.0, 11.0, 12.0]
    nine = RunConfig.from_dict({"frames": {"box": [10, 0, 0, 0, 10, 0, 1, 0, 10]}}).box_value()
    assert nine[2] == [1.0, 0.0, 10.0]
