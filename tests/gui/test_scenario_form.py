"""The scenario form: load, edit, validate with the CLI's messages, agents table, device, save."""

from __future__ import annotations

import pytest

import marketeq
from gui.field_editors import CUDA_HINT, cuda_available
from gui.scenario_form import ScenarioForm, number_agents, shipped_scenarios
from marketeq.cli import main as cli_main


@pytest.fixture
def form(qtbot, quickstart_path):
    widget = ScenarioForm()
    qtbot.addWidget(widget)
    assert widget.load_file(quickstart_path)
    return widget


def cli_message(tmp_path, capsys, form: ScenarioForm) -> str:
    """What ``marketeq validate`` prints for the form's current content, less its prefixes."""
    path = tmp_path / "edited.toml"
    path.write_text(form.toml_text(), encoding="utf-8")
    assert cli_main(["validate", str(path)]) == 2
    line = capsys.readouterr().err.strip()
    return line.removeprefix("marketeq: ").removeprefix(f"{path}: ")


def test_shipped_scenarios_are_listed_and_load(form, quickstart_path):
    names = [p.stem for p in shipped_scenarios()]
    assert "quickstart" in names
    assert [form.shipped.itemText(i) for i in range(1, form.shipped.count())] == names
    assert form.scenario == marketeq.load_scenario(quickstart_path)
    assert form.editors["market.alpha"].widget.text() == "1.0"
    assert form.editors["frictions.lambda"].widget.text() == "0.01"
    assert form.editors["solver.mu_mode"].widget.currentText() == "auto"
    assert form.agents.table.rowCount() == 3


def test_every_scenario_field_has_an_editor(form):
    expected = {"name", "description"}
    for section in ("market", "frictions", "solver", "run"):
        fields = marketeq.Scenario.model_fields[section].annotation.model_fields
        expected |= {f"{section}.{info.alias or name}" for name, info in fields.items()}
    assert set(form.editors) == expected


def test_editing_a_field_changes_the_scenario(form, qtbot):
    form.editors["market.alpha"].set_text("1.5")
    form.editors["run.seed"].set_text("7")
    form.editors["solver.agents_iterations"].set_text("100, 200")
    combo = form.editors["solver.mu_mode"].widget
    combo.setCurrentIndex(combo.findData("known"))
    qtbot.waitUntil(lambda: form.scenario is not None and form.scenario.market.alpha == 1.5)
    s = form.scenario
    assert (s.run.seed, s.solver.agents_iterations, s.solver.mu_mode) == (7, [100, 200], "known")


@pytest.mark.parametrize("field, text, good", [
    ("market.alpha", "-1", "1"), ("market.steps", "abc", "50"), ("frictions.q", "3", "2"),
    ("run.test_paths", "", "200"), ("solver.agents_lr", "0.01, -1", "0.01"),
])
def test_a_bad_value_shows_the_cli_message_beside_the_field(form, qtbot, tmp_path, capsys, field, text, good):
    form.editors[field].set_text(text)
    qtbot.waitUntil(lambda: form.scenario is None)  # validation runs shortly after typing
    message = form.error_text(field)
    assert message and message == cli_message(tmp_path, capsys, form)
    assert field.split("[")[0] in message
    assert not form.editors[field].error.isHidden()
    form.editors[field].set_text(good)
    assert form.validate() is not None and form.error_text(field) == ""


def test_agents_table_add_remove_and_cell_errors(form, tmp_path, capsys):
    form.agents.add_agent("newcomer", 2.0, 1.0)
    assert form.validate() is None  # the xi no longer sum to 0
    message = form.error_text("agents")
    assert "xi" in message and message == cli_message(tmp_path, capsys, form)
    form.agents.set_cell(3, "xi", "0")
    assert form.validate().n_agents == 4
    form.agents.set_cell(1, "gamma", "-2")
    assert form.validate() is None
    # the engine's agents[1] is the table's row 2, counted from 1 as the table counts
    assert form.error_text("agents").startswith("agent 2 (balanced) gamma = -2")
    assert form.agents.table.item(1, 1).background().color().alpha() > 0  # the cell is tinted
    form.agents.set_cell(1, "gamma", "1.5")
    form.agents.table.selectRow(3)
    form.agents.remove_selected()
    assert form.validate().n_agents == 3 and form.error_text("agents") == ""


def test_agents_own_lambda_column(form, tmp_path, capsys):
    assert form.validate().lams == [0.01, 0.01, 0.01]  # empty cells: frictions.lambda
    form.agents.set_cell(2, "lambda", "0.05")
    assert form.validate().lams == [0.01, 0.01, 0.05]
    form.agents.set_cell(0, "lambda", "-1")
    assert form.validate() is None
    message = form.error_text("agents")
    expected = number_agents(cli_message(tmp_path, capsys, form), ["cautious", "balanced", "bold"])
    assert message.startswith("agent 1 (cautious) lambda = -1") and message == expected
    assert form.agents.table.item(0, 3).background().color().alpha() > 0


def test_cuda_is_greyed_out_without_a_gpu(form):
    combo = form.editors["run.device"].widget
    item = combo.model().item(combo.findData("cuda"))
    assert item.isEnabled() == cuda_available()
    if not cuda_available():
        combo.setCurrentIndex(combo.findData("cuda"))  # e.g. a file that asks for it
        form.validate()
        assert form.error_text("run.device") == CUDA_HINT


def test_save_and_reopen_round_trip(form, tmp_path):
    form.editors["name"].set_text("edited")
    form.editors["frictions.lambda"].set_text("0.02")
    path = tmp_path / "edited.toml"
    assert form.save_file(path)
    assert marketeq.load_scenario(path) == form.validate()
    other = ScenarioForm()
    assert other.load_file(path) and other.scenario.frictions.lam == 0.02 and other.scenario.name == "edited"
    other.deleteLater()


def test_an_invalid_file_opens_with_its_error_beside_the_field(qtbot, tmp_path, quickstart_path):
    text = quickstart_path.read_text(encoding="utf-8").replace("alpha = 1.0", "alpha = -2.0")
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    form = ScenarioForm()
    qtbot.addWidget(form)
    assert form.load_file(path) and form.scenario is None
    expected = str(pytest.raises(marketeq.ScenarioError, marketeq.load_scenario, path).value)
    assert expected.endswith(form.error_text("market.alpha"))
    broken = tmp_path / "broken.toml"
    broken.write_text("[market\n", encoding="utf-8")
    assert not form.load_file(broken) and "malformed TOML" in form.general_error.text()


def test_saving_an_invalid_form_is_refused(form, tmp_path):
    form.editors["market.horizon"].set_text("0")
    assert not form.save_file(tmp_path / "nope.toml")
    assert not (tmp_path / "nope.toml").exists()
    assert "fix the error" in form.general_error.text()


def test_mu_mode_known_with_power_cost_and_many_agents_is_refused(form):
    form.editors["frictions.q"].set_text("1.5")
    combo = form.editors["solver.mu_mode"].widget
    combo.setCurrentIndex(combo.findData("known"))
    assert form.validate() is None
    assert "mu_mode" in form.error_text("solver.mu_mode")
