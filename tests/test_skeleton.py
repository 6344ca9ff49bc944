import numpy as np

from mvhand.core import skeleton as sk


def test_parents_form_a_tree_rooted_at_wrist():
    assert sk.PARENTS[0] == -1
    for j in range(1, sk.N_JOINTS):
        # every chain reaches the wrist and parents precede children (topological order)
        assert 0 <= sk.PARENTS[j] < j


def test_names_and_fingers_consistent():
    assert len(sk.JOINT_NAMES) == sk.N_JOINTS == len(set(sk.JOINT_NAMES))
    for f, name in enumerate(sk.FINGERS):
        for j in sk.FINGER_JOINTS[f]:
            assert sk.JOINT_NAMES[j].startswith(name)
            assert sk.JOINT_FINGER[j] == f
    assert sk.BONES.shape == (20, 2)


def test_maps_are_permutations():
    for m in (sk.MEDIAPIPE, sk.MANO, sk.INTERHAND):
        assert sorted(m.tolist()) == list(range(21))


def test_coco_wholebody_maps_are_disjoint_subsets_of_133():
    both = np.concatenate([sk.COCO_WHOLEBODY_LEFT, sk.COCO_WHOLEBODY_RIGHT])
    assert len(set(both.tolist())) == 42
    assert both.min() == 91 and both.max() == 132


def test_mano_map_sends_fingers_to_fingers():
    # MANO skeleton order: wrist, index1-3, middle1-3, little1-3, ring1-3, thumb1-3, then tips
    mano_finger = ["wrist"] + ["index"] * 3 + ["middle"] * 3 + ["little"] * 3 + ["ring"] * 3
    mano_finger += ["thumb"] * 3 + ["thumb", "index", "middle", "ring", "little"]
    for j, name in enumerate(sk.JOINT_NAMES):
        assert name.split("_")[0] == mano_finger[sk.MANO[j]]


def test_bone_lengths_nan_propagates():
    pts = np.zeros((21, 3))
    pts[2] = np.nan
    lengths = sk.bone_lengths(pts)
    assert np.isnan(lengths[1]) and np.isnan(lengths[2]) and lengths[0] == 0.0
