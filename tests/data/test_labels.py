"""Tests of pneumobench/data/labels.py."""

from __future__ import annotations

import pytest

from pneumobench.data.labels import patient_id, pneumonia_subtype


@pytest.mark.parametrize(
    ("name", "patient", "subtype"),
    [
        ("person12_bacteria_45.jpeg", "person12", "bacteria"),
        ("person9_virus_3.jpeg", "person9", "virus"),
        ("person1_virus_8_2.jpeg", "person1", "virus"),
        ("person1_Virus_9.jpeg", "person1", "virus"),
        ("person7_scan.jpeg", "person7", None),
        ("IM-0011-0001-0002.jpeg", "IM-0011", None),
        ("NORMAL2-IM-1234-0001.jpeg", "NORMAL2-IM-1234", None),
        ("scan.png", None, None),
    ],
)
def test_file_names_give_patient_and_subtype(
    name: str, patient: str | None, subtype: str | None
) -> None:
    assert patient_id(name) == patient
    assert pneumonia_subtype(name) == subtype
