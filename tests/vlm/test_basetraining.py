"""What the two base trainings share (benchmark/vlm/basetraining.py)."""

from __future__ import annotations

import pytest

from benchmark.samples import Sample
from benchmark.sim.scenes import object_names
from benchmark.vlm.basetraining import object_targets


def test_localisation_targets_are_the_metadata_projections(train_samples: list[Sample]) -> None:
    from benchmark.sim.camera import image_objects

    names = object_names()
    centres, depths, present = object_targets(train_samples, names)
    for i, s in enumerate(train_samples):
        for obj in image_objects(s.metadata, 64):  # type: ignore[arg-type]
            c = names.index(obj.name)
            if present[i, c]:
                assert centres[i, c].tolist() == pytest.approx(
                    [obj.x / 32 - 1, obj.y / 32 - 1], abs=1e-5
                )
                assert float(depths[i, c]) == pytest.approx(obj.depth - 2.0, abs=1e-5)
        assert 1 <= present[i].sum() <= 3  # the three active objects, when in view
    absent = present == 0
    assert (centres[absent] == 0).all() and (depths[absent] == 0).all()
