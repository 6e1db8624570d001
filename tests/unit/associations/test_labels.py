"""Association labels: trimmed, inner whitespace collapsed, at most 64 characters."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from functions.associations.schemas import AssociationCreate, BatchCreateInput, normalize_label
from shared.ids import new_id


@pytest.mark.parametrize(("raw", "label"), [
    ("  decision   maker ", "decision maker"), ("Billing\tContact", "Billing Contact"), ("", ""), ("   ", ""),
])
def test_labels_are_trimmed_and_collapsed(raw: str, label: str) -> None:
    # GIVEN a label as typed WHEN normalised THEN spacing does not make a different label (case is kept)
    assert normalize_label(raw) == label
    assert AssociationCreate(label=raw).label == label


def test_a_label_is_at_most_64_characters() -> None:
    # GIVEN labels of 64 and 65 characters WHEN validated THEN only the first is accepted
    assert AssociationCreate(label="x" * 64).label == "x" * 64
    with pytest.raises(ValidationError):
        AssociationCreate(label="x" * 65)


def test_batch_inputs_name_known_objects_only() -> None:
    # GIVEN a batch input linking to an unknown object type WHEN validated THEN it is refused
    a, b = new_id(), new_id()
    with pytest.raises(ValidationError):
        BatchCreateInput.model_validate({"from_object": "contacts", "from_id": a, "to_object": "widgets",
                                         "to_id": b})
    # AND an input without a label is unlabelled
    assert BatchCreateInput.model_validate({"from_object": "contacts", "from_id": a, "to_object": "deals",
                                            "to_id": b}).label == ""
