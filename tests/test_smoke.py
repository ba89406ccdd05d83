import clusterdynamicsml as cdml
from clusterdynamicsml.pipeline.cli import main


def test_version_cli(capsys):
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert cdml.__version__ in out
    assert ("OpenMP on" in out) or ("OpenMP off" in out)
    assert f"{cdml.get_num_threads()} threads" in out


def test_thread_knob_context_manager():
    before = cdml.get_num_threads()
    with cdml.set_num_threads(1):
        assert cdml.get_num_threads() == 1
    assert cdml.get_num_threads() == before


def test_every_public_name_resolves():
    """Each lazily exported name imports from the module the table names."""
    import importlib

    for name, module in cdml._LAZY.items():
        mod = importlib.import_module(f"clusterdynamicsml.{module}")
        assert hasattr(mod, name), f"{name} is not defined in clusterdynamicsml.{module}"
        assert getattr(cdml, name) is getattr(mod, name)
