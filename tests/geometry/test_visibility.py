import numpy as np

from sem3r.geometry.camera import unproject_depth
from sem3r.geometry.visibility import observed_by_views


def test_occluded_and_outside_points_are_not_observed():
    K = np.array([[[50.0, 0, 15.5], [0, 50.0, 11.5], [0, 0, 1]]])
    pose = np.eye(3, 4)[None]
    depth = np.full((1, 24, 32), 3.0, np.float32)  # a wall at z = 3
    depth[0, :, :16] = 2.0  # a box in front of the left half
    surface = unproject_depth(depth, K, pose)[0].reshape(-1, 3)
    assert observed_by_views(surface, depth, K, pose).all()
    hidden = np.array([[-0.3, 0.0, 3.0]])  # on the wall, behind the box
    behind_camera = np.array([[0.0, 0.0, -3.0]])
    outside = np.array([[10.0, 0.0, 3.0]])
    assert not observed_by_views(np.concatenate([hidden, behind_camera, outside]), depth, K, pose).any()


def test_labels_separate_a_thin_poster_from_the_wall_behind_it():
    K = np.array([[[50.0, 0, 15.5], [0, 50.0, 11.5], [0, 0, 1]]])
    pose = np.eye(3, 4)[None]
    depth = np.full((1, 24, 32), 2.997, np.float32)  # a 3 mm poster in front of a wall at z = 3
    ids = np.full((1, 24, 32), 7)
    wall_behind = np.array([[0.0, 0.0, 3.0]])
    assert observed_by_views(wall_behind, depth, K, pose).all()  # thinner than any depth tolerance
    assert not observed_by_views(wall_behind, depth, K, pose, labels=[(np.array([-1]), ids)]).any()
    poster = np.array([[0.0, 0.0, 2.997]])
    assert observed_by_views(poster, depth, K, pose, labels=[(np.array([7]), ids)]).all()


def test_a_second_view_adds_what_the_first_misses():
    K = np.tile(np.array([[50.0, 0, 15.5], [0, 50.0, 11.5], [0, 0, 1]]), (2, 1, 1))
    poses = np.tile(np.eye(3, 4), (2, 1, 1))
    poses[1, 0, 3] = -5.0  # second camera 5 m to the right
    depth = np.full((2, 24, 32), 3.0, np.float32)
    right = np.array([[5.0, 0.0, 3.0]])
    assert not observed_by_views(right, depth[:1], K[:1], poses[:1]).any()
    assert observed_by_views(right, depth, K, poses).all()
