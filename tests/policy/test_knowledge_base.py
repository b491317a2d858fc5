from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path

import pytest
import yaml

from features.errors import InputError
from features.stages import STAGES
from pipeline.recommend import instruments_command
from policy.knowledge_base import (
    ASPECTS,
    WORKS,
    catalogue_features,
    load_knowledge_base,
    parse_knowledge_base,
    render_markdown,
)

SOURCE = "policy/instruments.yaml"


@pytest.fixture(scope="module")
def raw() -> dict:
    text = resources.files("policy").joinpath("instruments.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _edited(raw: dict, index: int, **fields: object) -> dict:
    out = copy.deepcopy(raw)
    out["instruments"][index].update(fields)
    return out


def _error(raw: dict) -> str:
    with pytest.raises(InputError) as info:
        parse_knowledge_base(raw, SOURCE)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_the_packaged_name_reads_the_packaged_file_from_any_folder(tmp_path, monkeypatch) -> None:
    # params.yaml names it so (recommend.knowledge_base); stages and tests run elsewhere too
    monkeypatch.chdir(tmp_path)
    kb = load_knowledge_base("policy/instruments.yaml")
    assert kb.source == "policy/instruments.yaml"
    assert [i.id for i in kb.instruments] == [i.id for i in load_knowledge_base().instruments]


def test_packaged_knowledge_base_covers_every_cell_twice() -> None:
    kb = load_knowledge_base()
    assert len(kb) >= 40
    assert len({i.id for i in kb.instruments}) == len(kb)
    for stage in STAGES:
        for aspect in ASPECTS:
            assert len(kb.cell(aspect, stage)) >= 2, (aspect, stage)
    assert {i.source.work for i in kb.instruments} == set(WORKS)
    known = catalogue_features()
    for inst in kb.instruments:
        assert inst.kpi.feature in known
        assert all(t.feature in known for t in inst.triggers)
        assert inst.triggers, f"{inst.id} has no trigger"


def test_catalogue_features_carry_their_good_direction() -> None:
    features = catalogue_features()
    assert features["sme_share"] == 1 and features["hhi"] == -1
    assert features["ss_national"] is None


def test_bad_aspect_names_file_instrument_and_field(raw: dict) -> None:
    first = raw["instruments"][0]["id"]
    message = _error(_edited(raw, 0, aspect="marketing"))
    assert message == (
        f"{SOURCE}: instrument '{first}', field 'aspect': expected one of "
        "'investment_guidance', 'resource_assembly', 'market_supervision' or 'public_service' "
        "(got 'marketing')"
    )


def test_bad_nested_field_and_missing_field(raw: dict) -> None:
    first = raw["instruments"][0]["id"]
    bad_trigger = _edited(raw, 0, triggers=[{"feature": "lq", "direction": "up"}])
    assert (
        f"instrument '{first}', field 'triggers.0.direction': expected one of 'high' or 'low'"
        in (_error(bad_trigger))
    )
    missing = copy.deepcopy(raw)
    del missing["instruments"][1]["kpi"]
    second = raw["instruments"][1]["id"]
    assert _error(missing) == f"{SOURCE}: instrument '{second}', field 'kpi': is required"
    extra = _edited(raw, 0, budget=5)
    assert _error(extra) == f"{SOURCE}: instrument '{first}', field 'budget': unknown field"


def test_entry_without_id_is_named_by_position(raw: dict) -> None:
    no_id = copy.deepcopy(raw)
    del no_id["instruments"][2]["id"]
    assert _error(no_id) == f"{SOURCE}: instrument #3, field 'id': is required"
    bad_id = _edited(raw, 2, id="Quality Centre")
    assert "instrument 'Quality Centre', field 'id': expected a snake_case id" in _error(bad_id)


def test_duplicate_id_is_refused(raw: dict) -> None:
    dup = _edited(raw, 3, id=raw["instruments"][0]["id"])
    assert _error(dup) == (
        f"{SOURCE}: instrument '{raw['instruments'][0]['id']}', field 'id': repeats instrument #1"
    )


def test_unknown_feature_is_refused(raw: dict) -> None:
    first = raw["instruments"][0]["id"]
    bad = _edited(raw, 0, kpi={"feature": "happiness", "direction": "increase"})
    assert _error(bad) == (
        f"{SOURCE}: instrument '{first}', field 'kpi.feature': expected a feature of the "
        "catalogue (features/catalogue.py), got 'happiness'"
    )
    bad = _edited(raw, 0, triggers=[{"feature": "lq", "direction": "high"}, {"feature": "x"}])
    assert "field 'triggers.1.direction': is required" in _error(bad)
    bad = _edited(
        raw,
        0,
        triggers=[{"feature": "lq", "direction": "high"}, {"feature": "x", "direction": "low"}],
    )
    assert "field 'triggers.1.feature': expected a feature of the catalogue" in _error(bad)


def test_kpi_direction_must_agree_with_the_catalogue(raw: dict) -> None:
    first = raw["instruments"][0]["id"]
    features = catalogue_features()
    assert features["lq"] == 1
    bad = _edited(raw, 0, kpi={"feature": "lq", "direction": "decrease"})
    with pytest.raises(InputError, match=f"instrument '{first}', field 'kpi.direction'"):
        parse_knowledge_base(bad, SOURCE, features)


def test_uncovered_cell_is_refused(raw: dict) -> None:
    kept = [
        i
        for i in raw["instruments"]
        if not (i["aspect"] == "market_supervision" and "decline" in i["stages"])
    ]
    assert _error({"instruments": kept}) == (
        f"{SOURCE}: no instrument of aspect 'market_supervision' fits stage 'decline'"
    )


def test_cell_of_only_heavy_instruments_is_refused(raw: dict) -> None:
    heavy = copy.deepcopy(raw)
    for inst in heavy["instruments"]:
        if inst["aspect"] == "resource_assembly" and "decline" in inst["stages"]:
            inst["intensity"] = "heavy"
    assert "every instrument of aspect 'resource_assembly' at stage 'decline' is heavy" in (
        _error(heavy)
    )


def test_stage_without_sme_instrument_is_refused(raw: dict) -> None:
    no_sme = copy.deepcopy(raw)
    for inst in no_sme["instruments"]:
        if "decline" in inst["stages"] and inst["targets"] == "smes":
            inst["targets"] = "all_firms"
    assert _error(no_sme) == f"{SOURCE}: no SME-targeted instrument fits stage 'decline'"


def test_user_file_errors(tmp_path: Path, raw: dict) -> None:
    missing = tmp_path / "none.yaml"
    with pytest.raises(InputError, match="none.yaml: cannot read the knowledge base"):
        load_knowledge_base(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("instruments: [\n", encoding="utf-8")
    with pytest.raises(InputError, match="broken.yaml: not valid YAML"):
        load_knowledge_base(broken)
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("instruments: []  # Förderung\n".encode("latin-1"))
    with pytest.raises(InputError) as err:
        load_knowledge_base(latin1)
    assert str(err.value) == (
        f"{latin1}: not UTF-8 text (byte 0xf6 on line 1); expected a UTF-8 encoded YAML file"
    )
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(InputError, match="expected a mapping with a list under 'instruments'"):
        load_knowledge_base(wrong)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_edited(raw, 0, intensity="huge")), encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_knowledge_base(bad)
    assert str(info.value).startswith(f"{bad}: instrument '{raw['instruments'][0]['id']}'")
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert len(load_knowledge_base(good)) == len(raw["instruments"])


def test_docs_policy_md_is_generated_from_the_knowledge_base(tmp_path: Path) -> None:
    committed = Path(__file__).resolve().parents[2] / "docs" / "policy.md"
    expected = render_markdown(load_knowledge_base())
    assert committed.read_text(encoding="utf-8") == expected, (
        "docs/policy.md is stale: run `clusterstage instruments -o docs/policy.md`"
    )
    out = tmp_path / "policy.md"
    instruments_command(out)
    assert out.read_text(encoding="utf-8") == expected


def test_a_stage_listed_twice_is_refused(raw: dict) -> None:
    first = raw["instruments"][0]["id"]
    stage = raw["instruments"][0]["stages"][0]
    twice = _edited(raw, 0, stages=[*raw["instruments"][0]["stages"], stage])
    assert _error(twice).startswith(
        f"{SOURCE}: instrument '{first}', field 'stages': a stage is listed twice"
    )
