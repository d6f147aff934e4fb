import pytest

from sem3r.reasoning.qa import Query
from sem3r.reasoning.qa_parser import parse_question

LABELS = ["chair", "table", "sofa", "tv", "door", "lamp", "trash_bin", "box", "shelf", "bed"]

CASES = [
    ("How many chairs are there in the room?", Query("count", ("chair",))),
    ("how many chair(s) are in this room?", Query("count", ("chair",))),
    ("Count the trash bins.", Query("count", ("trash_bin",))),
    ("How many boxes are there?", Query("count", ("box",))),
    ("How far is the sofa from the door?", Query("abs_distance", ("sofa", "door"))),
    ("What is the distance between the sofa and the door (in meters)?", Query("abs_distance", ("sofa", "door"))),
    (("Measuring from the closest point of each object, what is the direct distance between the trash bin and the tv "
     "(in meters)?"), Query("abs_distance", ("trash_bin", "tv"))),
    ("How big is the table?", Query("object_size", ("table",))),
    ("What is the length of the longest dimension (length, width, or height) of the bed, measured in centimeters?",
     Query("object_size", ("bed",))),
    ("How big is this room?", Query("room_size")),
    ("What is the size of this room (in square meters)? If multiple rooms are shown, estimate the combined space.",
     Query("room_size")),
    ("Which of these objects is closest to the tv: chair, lamp or door?",
     Query("rel_distance", ("tv",), choices=("chair", "lamp", "door"))),
    ("Which is closest to the tv? chair, lamp or door.",
     Query("rel_distance", ("tv",), choices=("chair", "lamp", "door"))),
    (("Measuring from the closest point of each object, which of these objects (chair, lamp, trash bin) is the closest "
     "to the tv?"), Query("rel_distance", ("tv",), choices=("chair", "lamp", "trash_bin"))),
    ("If I am standing by the sofa and facing the tv, is the door to my left, right, or back?",
     Query("rel_direction", ("sofa", "tv", "door"), choices=("left", "right", "back"))),
    (("If I am standing by the bed and facing the door, is the lamp to my front-left, front-right, back-left, or "
     "back-right? The directions refer to the quadrants of a Cartesian plane."),
     Query("rel_direction", ("bed", "door", "lamp"), choices=("front-left", "front-right", "back-left", "back-right"))),
    ("I am standing at the sofa facing the tv, where is the door?", Query("rel_direction", ("sofa", "tv", "door"))),
    ("How far is the chair from camera 2?", Query("object_camera_distance", ("chair",), views=(2,))),
    ("What is the distance between the chair #3 and view 0?", Query("object_camera_distance", ("chair#3",), views=(0,))),
    ("What is the depth of the chair in view 2?", Query("object_depth", ("chair",), views=(2,))),
    ("How deep is the table in frame 5?", Query("object_depth", ("table",), views=(5,))),
    ("How far did the camera move between view 1 and view 4?", Query("camera_motion", views=(1, 4))),
    ("How far did the camera move from frame 1 to frame 4?", Query("camera_motion", views=(1, 4))),
    ("In what order do the chair, table and sofa first appear?",
     Query("appearance_order", choices=("chair", "table", "sofa"))),
    ("What will be the first-time appearance order of the following categories in the video: chairs, shelves, tv?",
     Query("appearance_order", choices=("chair", "shelf", "tv"))),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_templates(text, expected):
    assert parse_question(text, LABELS) == expected


def test_every_family_has_two_phrasings():
    counts = {}
    for _, query in CASES:
        counts[query.family] = counts.get(query.family, 0) + 1
    assert len(counts) == 10 and min(counts.values()) >= 2


def test_longest_label_wins_and_multiword_labels():
    labels = ["table", "coffee table", "trash_bin"]
    assert parse_question("how big is the coffee table?", labels) == Query("object_size", ("coffee table",))
    assert parse_question("how many trash_bins are there", labels) == Query("count", ("trash_bin",))
    assert parse_question("how many tables are there", labels) == Query("count", ("table",))


def test_unknown_names_are_passed_on_and_unrelated_text_is_none():
    assert parse_question("how many unicorns are there?", LABELS) == Query("count", ("unicorns",))
    assert parse_question("What colour is the sofa?", LABELS) is None
    assert parse_question("Tell me a joke.", LABELS) is None
    assert parse_question("which is closest to the tv?", LABELS) is None  # no choices
