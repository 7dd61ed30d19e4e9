"""HDF5 result files: round trip of every field, atomic writes, the documented layout and bad files."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import marketeq
from marketeq import hdf5
from marketeq.hdf5 import FORMAT, SCHEMA_VERSION, ResultFileError, read_result, write_result
from marketeq.model.rollout import Paths
from marketeq.results import Metric, RunResult

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "scenarios" / "quickstart.toml"
N_PATHS, N_STEPS = 4, 5


@pytest.fixture(scope="module")
def scenario():
    return marketeq.load_scenario(QUICKSTART)


def make_paths(rng: np.random.Generator, n_agents: int, n_paths: int = N_PATHS) -> Paths:
    B, K, N = n_paths, N_STEPS, n_agents  # the shape letters of docs/hdf5.md
    return Paths(t=np.linspace(0.0, 0.2, K + 1), W=rng.normal(size=(B, K + 1)), dW=rng.normal(size=(B, K)),
                 phi=rng.normal(size=(B, K + 1, N)), phidot=rng.normal(size=(B, K + 1, N)),
                 mu=rng.normal(size=(B, K + 1)), sigma=rng.normal(size=(B, K + 1)),
                 S=rng.normal(size=(B, K + 1)))


def make_result(scenario, *, oracle: bool, seed: int = 0, n_paths: int = N_PATHS) -> RunResult:
    rng = np.random.default_rng(seed)
    n = scenario.n_agents
    return RunResult(
        scenario=scenario,
        scenario_toml=QUICKSTART.read_text(encoding="utf-8"),
        solver="rlink",
        status="interrupted",
        provenance={"seed": 7, "device": "cpu", "dtype": "float64", "torch_threads": 4, "score": 0.25,
                    "created": "2025-01-01T00:00:00+00:00"},
        history={"step": np.array([0, 50, 100], dtype=np.int64),
                 "agents/loss": np.array([1.5, 0.5, math.nan]),
                 "market/link": rng.normal(size=3)},
        paths=make_paths(rng, n, n_paths),
        metrics={"clearing": Metric(0.125, 0.01), "S0": Metric(0.36),
                 "oracle/sigma_sup_rel_error": Metric(0.02, math.nan)},
        oracle_name="riccati" if oracle else None,
        oracle_paths=make_paths(rng, n, n_paths) if oracle else None,
        weights={"policy": {"layers.0.weight": rng.normal(size=(8, 3)).astype(np.float32),
                            "layers.0.bias": rng.normal(size=8).astype(np.float32)},
                 "market": {"linear.weight": rng.normal(size=(1, 2)), "odd/name%": np.array(1.5)}},
        message="stopped by the user",
        wall_time_s=12.5,
    )


def assert_paths_equal(got: Paths | None, want: Paths | None) -> None:
    if want is None:
        assert got is None
        return
    assert got is not None
    for name in hdf5.PATH_FIELDS:
        value = getattr(got, name)
        assert value.dtype == np.float64, name
        np.testing.assert_array_equal(value, getattr(want, name), err_msg=name)


def assert_results_equal(got: RunResult, want: RunResult) -> None:
    assert got.scenario == want.scenario
    assert got.scenario_toml == want.scenario_toml
    assert (got.solver, got.status, got.message, got.oracle_name) == (
        want.solver, want.status, want.message, want.oracle_name)
    np.testing.assert_equal(got.wall_time_s, want.wall_time_s)
    assert got.provenance == want.provenance
    assert [type(v) for v in got.provenance.values()] == [type(v) for v in want.provenance.values()]
    assert list(got.history) == list(want.history)
    for key, column in want.history.items():
        np.testing.assert_array_equal(got.history[key], column, err_msg=key)
        assert got.history[key].dtype == column.dtype
    assert list(got.metrics) == list(want.metrics)
    for key, metric in want.metrics.items():
        assert isinstance(got.metrics[key], Metric)
        np.testing.assert_equal(tuple(got.metrics[key]), tuple(metric), err_msg=key)
    assert_paths_equal(got.paths, want.paths)
    assert_paths_equal(got.oracle_paths, want.oracle_paths)
    names = lambda weights: {net: list(params) for net, params in weights.items()}  # noqa: E731
    assert names(got.weights) == names(want.weights)
    for net, params in want.weights.items():
        for key, value in params.items():
            np.testing.assert_array_equal(got.weights[net][key], value, err_msg=f"{net}/{key}")
            assert got.weights[net][key].dtype == value.dtype


@pytest.mark.parametrize("oracle", [True, False], ids=["with-oracle", "without-oracle"])
def test_round_trip_keeps_every_field(tmp_path, scenario, oracle):
    result = make_result(scenario, oracle=oracle)
    out = write_result(result, tmp_path / "run.h5")
    assert out == tmp_path / "run.h5"
    assert_results_equal(read_result(out), result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.h5"]


def test_round_trip_of_an_oracle_result_without_history_metrics_or_weights(tmp_path, scenario):
    result = make_result(scenario, oracle=False)
    result.history = {"step": np.zeros(0, dtype=np.int64)}
    result.metrics, result.weights, result.paths, result.status = {}, {}, None, "diverged"
    assert_results_equal(read_result(write_result(result, tmp_path / "empty.h5")), result)


def test_layout_is_readable_with_plain_h5py(tmp_path, scenario):
    result = make_result(scenario, oracle=True, n_paths=300)
    path = write_result(result, tmp_path / "run.h5")
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == FORMAT and f.attrs["schema_version"] == SCHEMA_VERSION
        root = f.attrs
        assert (root["status"], root["solver"], root["oracle_name"]) == ("interrupted", "rlink", "riccati")
        assert f["scenario/toml"].asstr()[()] == result.scenario_toml
        assert f["scenario/market"].attrs["steps"] == 50 and f["scenario/frictions"].attrs["lambda"] == 0.01
        assert list(f["scenario/agents/name"].asstr()[()]) == ["cautious", "balanced", "bold"]
        np.testing.assert_array_equal(f["scenario/agents/xi"][()], [-6.0, 2.0, 4.0])
        assert f["provenance"].attrs["seed"] == 7
        link = f["history/market/link"]
        assert link.dims[0].label == "step" and link.dims[0][0] == f["history/step"]
        phi = f["paths/oracle/phi"]
        assert [d.label for d in phi.dims] == ["path", "time", "agent"] and phi.shape == (300, N_STEPS + 1, 3)
        assert phi.compression == "gzip" and f["paths/solver/t"].compression is None
        assert [d.label for d in f["paths/solver/dW"].dims] == ["path", "step"]
        assert f["paths/solver/S"].dims[1][0] == f["paths/solver/t"]
        assert list(f["metrics/name"].asstr()[()]) == list(result.metrics)
        np.testing.assert_array_equal(f["metrics/value"][()], [m.value for m in result.metrics.values()])
        assert set(f["weights/market"]) == {"linear.weight", "odd%2Fname%25"}

        def no_object_data(name, obj):
            assert not (isinstance(obj, h5py.Dataset) and obj.dtype.kind == "V"), name

        f.visititems(no_object_data)


def test_only_the_hdf5_package_imports_h5py():
    importers = [p.relative_to(ROOT).as_posix() for p in (ROOT / "marketeq").rglob("*.py")
                 if "import h5py" in p.read_text(encoding="utf-8")]
    assert importers and all(name.startswith("marketeq/hdf5/") for name in importers), importers
    for path in (ROOT / "marketeq" / "hdf5").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        assert "import pickle" not in source and "pickle." not in source, path


def fail_midway(monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("simulated failure while writing metrics")

    monkeypatch.setattr(hdf5.results, "write_metrics", boom)


def test_failed_write_leaves_no_file_and_no_temporary(tmp_path, scenario, monkeypatch):
    fail_midway(monkeypatch)
    with pytest.raises(RuntimeError, match="simulated"):
        write_result(make_result(scenario, oracle=True), tmp_path / "run.h5")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_the_old_file_unchanged(tmp_path, scenario, monkeypatch):
    target = write_result(make_result(scenario, oracle=False), tmp_path / "run.h5")
    before = target.read_bytes()
    fail_midway(monkeypatch)
    with pytest.raises(RuntimeError, match="simulated"):
        write_result(make_result(scenario, oracle=True, seed=1), target)
    assert target.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["run.h5"]
    monkeypatch.undo()
    assert read_result(target).oracle_paths is None


def test_overwrite_replaces_the_old_file(tmp_path, scenario):
    target = write_result(make_result(scenario, oracle=False), tmp_path / "run.h5")
    second = make_result(scenario, oracle=True, seed=1)
    assert_results_equal(read_result(write_result(second, target)), second)


def test_write_into_a_missing_directory_is_a_one_line_error(tmp_path, scenario):
    target = tmp_path / "nowhere" / "run.h5"
    with pytest.raises(ResultFileError) as info:
        write_result(make_result(scenario, oracle=False), target)
    assert_one_line(info.value, target, "cannot be written")


def test_colliding_history_columns_are_refused_before_writing(tmp_path, scenario):
    result = make_result(scenario, oracle=False)
    result.history["agents"] = np.zeros(3)
    with pytest.raises(ResultFileError, match="collide"):
        write_result(result, tmp_path / "run.h5")
    assert list(tmp_path.iterdir()) == []


def assert_one_line(error: ResultFileError, path: Path, *fragments: str) -> None:
    message = str(error)
    assert "\n" not in message and message.startswith(str(path)), message
    for fragment in fragments:
        assert fragment in message, message


@pytest.fixture
def valid_file(tmp_path, scenario) -> Path:
    return write_result(make_result(scenario, oracle=True), tmp_path / "valid.h5")


def test_missing_file(tmp_path):
    with pytest.raises(ResultFileError) as info:
        read_result(tmp_path / "absent.h5")
    assert_one_line(info.value, tmp_path / "absent.h5", "no such file")
    assert str(copy.deepcopy(info.value)) == str(info.value)  # reducible: it can cross a process boundary


@pytest.mark.parametrize("content", [b"metric,value\nclearing,0.1\n", b""], ids=["text", "empty"])
def test_a_text_file_is_not_a_result(tmp_path, content):
    bad = tmp_path / "notes.h5"
    bad.write_bytes(content)
    with pytest.raises(ResultFileError) as info:
        read_result(bad)
    assert_one_line(info.value, bad, "not a marketeq result file")


def test_a_directory_is_not_a_result(tmp_path):
    with pytest.raises(ResultFileError) as info:
        read_result(tmp_path)
    assert_one_line(info.value, tmp_path, "directory")


def test_truncated_file(valid_file, tmp_path):
    data = valid_file.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ResultFileError) as info:
        read_result(cut)
    assert_one_line(info.value, cut, "truncated")


def test_hdf5_file_without_the_format_attribute(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("x", data=np.arange(3))
    with pytest.raises(ResultFileError) as info:
        read_result(other)
    assert_one_line(info.value, other, "not a marketeq result file", "format")


def test_hdf5_file_with_another_format(valid_file):
    with h5py.File(valid_file, "r+") as f:
        f.attrs["format"] = "something-else"
    with pytest.raises(ResultFileError) as info:
        read_result(valid_file)
    assert_one_line(info.value, valid_file, "not a marketeq result file", "something-else")


@pytest.mark.parametrize("version", [SCHEMA_VERSION + 1, "one", None], ids=["newer", "text", "missing"])
def test_unsupported_schema_version(valid_file, version):
    with h5py.File(valid_file, "r+") as f:
        if version is None:
            del f.attrs["schema_version"]
        else:
            f.attrs["schema_version"] = version
    with pytest.raises(ResultFileError) as info:
        read_result(valid_file)
    assert_one_line(info.value, valid_file, "schema_version", f"reads schema_version {SCHEMA_VERSION}")


def test_incomplete_file(valid_file):
    with h5py.File(valid_file, "r+") as f:
        del f["paths/oracle/phi"]
    with pytest.raises(ResultFileError) as info:
        read_result(valid_file)
    assert_one_line(info.value, valid_file, "incomplete", "/paths/oracle", "phi")


def test_invalid_stored_scenario(valid_file):
    with h5py.File(valid_file, "r+") as f:
        del f["scenario/toml"]
        f["scenario"].create_dataset("toml", data="[market]\nalpha = -1\n", dtype=h5py.string_dtype())
    with pytest.raises(ResultFileError) as info:
        read_result(valid_file)
    assert_one_line(info.value, valid_file, "stored scenario")


def test_numpy_scalars_and_str_subclasses_in_provenance_become_plain_values(tmp_path, scenario):
    result = make_result(scenario, oracle=False)
    result.provenance = {"dtype": np.str_("float32"), "torch": torch.__version__, "seed": np.int64(3),
                         "lr": np.float32(0.5), "cuda": np.bool_(False), "sizes": [64, 64], "none": None}
    got = read_result(write_result(result, tmp_path / "run.h5")).provenance
    assert got == {"dtype": "float32", "torch": str(torch.__version__), "seed": 3, "lr": 0.5, "cuda": False,
                   "sizes": [64, 64], "none": "None"}
    assert [type(v) for v in got.values()] == [str, str, int, float, bool, list, str]
