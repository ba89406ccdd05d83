"""The one chemistry vocabulary (chem.py): element symbols, atom names, compositions, labels, pairs.

These pin the agreed answers for the inputs on which the old copies disagreed (issue 11).
"""
from __future__ import annotations

import pytest

from clusterdynamicsml import chem
from clusterdynamicsml.chem import (
    Composition,
    ElementPair,
    element_from_atom_name,
    element_from_token,
    format_label,
    normalize_element,
    pair_key,
    parse_label,
    parse_pair,
)
from clusterdynamicsml.clusters import ClusterRules

RULES = ClusterRules(node=["Pb"], linker=["I", "Br"], shell=["O"], cutoffs={("Pb", "I"): 3.36})


@pytest.mark.parametrize("symbol, expected", [("pb", "Pb"), ("PB", "Pb"), (" Pb ", "Pb"), ("i", "I"),
                                              (b"Na", "Na"), ("CA", "Ca"), ("cl", "Cl")])
def test_normalize_element_accepts_symbols_in_any_case(symbol, expected):
    assert normalize_element(symbol) == expected


@pytest.mark.parametrize("token", ["OW", "Pb1", "Nä", "N_a", "", "  ", "X", "Xx", "K+", "1", None, 82])
def test_normalize_element_is_strict(token):
    with pytest.raises(ValueError, match="element"):
        normalize_element(token)


@pytest.mark.parametrize("name, residue, expected", [
    ("OW", None, "O"), ("HW1", None, "H"), ("Pb1", None, "Pb"), ("Pb", None, "Pb"), ("CL", "CL", "Cl"),
    (" CA ", "ALA", "C"), ("CA1 ", "DMF", "C"), ("ZN", None, "Zn"),
])
def test_element_from_atom_name_is_lenient(name, residue, expected):
    assert element_from_atom_name(name, residue) == expected


@pytest.mark.parametrize("name", ["Nä", "N_a", "O-W_1", "Pbé"])
def test_non_ascii_or_underscored_names_are_errors_not_nitrogen(name):
    with pytest.raises(ValueError, match="only ASCII letters"):
        element_from_atom_name(name)
    with pytest.raises(ValueError, match="unknown element"):
        element_from_token(name)


def test_element_from_token_keeps_the_xyz_rule():
    assert [element_from_token(t) for t in ("Pb1", "PB", "C1A", "K+", "Cl-", "pb12")] == ["Pb", "Pb", "C", "K", "Cl", "Pb"]
    with pytest.raises(ValueError, match="unknown element 'OW'"):
        element_from_token("OW")  # a force-field name is not guessed in XYZ files: use element_map
    assert element_from_token("OW", {"OW": "O"}) == "O"


def test_one_label_rule_nodes_linkers_shells_each_alphabetical():
    counts = {"O": 2, "I": 1, "Pb": 2, "Br": 3, "Cs": 1}
    assert format_label(counts, RULES) == "Pb2Br3IO2Cs"  # unknown-role elements last
    assert format_label(counts, {"Pb": "node", "I": "linker", "Br": "linker", "O": "shell"}) == "Pb2Br3IO2Cs"
    assert format_label({"Zn": 1, "Cl": 4}) == "Cl4Zn"  # no roles: alphabetical
    assert format_label({"Pb": 1, "I": 2, "O": 0}, RULES) == "PbI2"  # zero counts dropped
    assert Composition({"pb": 2, "I": 5}).label(RULES) == "Pb2I5"


def test_the_old_copies_now_agree():
    from clusterdynamicsml.build.geomstats import GeometryStatistics
    from clusterdynamicsml.build.grow import format_counts_label
    from clusterdynamicsml.clusters import format_label as clusters_format_label
    from clusterdynamicsml.library.read import AtomTypes

    rules = ClusterRules(node=["Pb"], linker=["I"], shell=["O"], cutoffs={("Pb", "I"): 3.36}, shells_in_label=True)
    stats = GeometryStatistics(atom_type_by_element={"Pb": "node", "I": "linker", "O": "shell"},
                               pair_cutoffs={}, node_bond_length=3.0)
    counts = {"Pb": 1, "I": 2, "O": 3}
    assert clusters_format_label(counts, rules) == AtomTypes.from_rules(rules).format_label(counts) \
        == format_counts_label(counts, stats) == "PbI2O3"


def test_empty_composition_has_no_label():
    with pytest.raises(ValueError, match="empty composition"):
        format_label({})
    with pytest.raises(ValueError, match="empty composition"):
        format_label({"Pb": 0}, RULES)
    with pytest.raises(ValueError, match="empty composition"):
        Composition().label()
    assert len(Composition()) == 0 and not Composition()


@pytest.mark.parametrize("bad", ["PbIPb", "", "pb2", "Pb0", "Pb2 I", "2Pb", "Unassigned", "Xx3", "Pb2i"])
def test_parse_label_is_strict(bad):
    with pytest.raises(ValueError):
        parse_label(bad)
    with pytest.raises(ValueError):
        Composition.parse(bad)


def test_parse_label_round_trip_and_composition_mapping():
    assert parse_label("Pb2I5") == {"Pb": 2, "I": 5} and list(parse_label("Na25Cl28")) == ["Na", "Cl"]
    c = Composition.parse("PbI3")
    assert c == {"I": 3, "Pb": 1} and c.size == 4 and hash(c) == hash(Composition({"Pb": 1, "I": 3}))
    assert Composition(["Pb", "I", "I"]) == {"Pb": 1, "I": 2}
    assert c.restrict(["Pb"]) == {"Pb": 1}
    with pytest.raises(ValueError, match="non-negative integer"):
        Composition({"Pb": 1.5})
    with pytest.raises(ValueError, match="non-negative integer"):
        Composition({"Pb": -1})
    with pytest.raises(ValueError, match="Composition.parse"):
        Composition("PbI2")


def test_element_pairs_are_unordered():
    assert parse_pair("Pb-I") == parse_pair("I-Pb") == parse_pair(("i", "PB")) == ElementPair("I", "Pb")
    assert parse_pair("Pb : I") == parse_pair("Pb I") == parse_pair("Pb/I") == parse_pair("I_Pb")
    assert str(parse_pair("Pb-I")) == pair_key("Pb", "I") == "I-Pb"
    assert parse_pair("Pb-I", ordered=True) == ("Pb", "I")
    assert {parse_pair("Pb-I"): 1}[("I", "Pb")] == 1  # a plain tuple key finds it
    for bad in ["Pb", "Pb-I-O", "Pb-OW", ("Pb",), 3.36, "Pb-"]:
        with pytest.raises(ValueError, match="pair"):
            parse_pair(bad)


def test_atomic_numbers():
    assert chem.atomic_number("pb") == 82 and chem.is_element("Pb") and not chem.is_element("PB")
