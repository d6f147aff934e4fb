"""The room as one labelled triangle mesh, its paint (materials, texture frames, lights) and
area-weighted surface sampling.

The mesh holds the *visible* surfaces: the room's inner faces (floor, four walls, ceiling) and the
objects' primitives without the faces nobody can see (bottoms resting on the floor or a support,
backs flush against a wall). Faces are wound counter-clockwise seen from the visible side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sem3r.data.synthetic.categories import semantic_id
from sem3r.data.synthetic.layout import RoomLayout
from sem3r.data.synthetic.shapes import face_normals
from sem3r.data.synthetic.textures import Lighting, MaterialTable, albedo, to_uint8


@dataclass
class SceneMesh:
    """Labelled triangle mesh of a room (world frame, metres, z up).

    Attributes:
        vertices: ``(V, 3) float64``.
        faces: ``(F, 3) int32`` vertex indices, counter-clockwise seen from the visible side.
        face_instance_ids: ``(F,) int32`` instance id, -1 for floor, walls and ceiling.
        face_semantic_ids: ``(F,) int32`` index into ``CLASS_NAMES``.
    """

    vertices: np.ndarray
    faces: np.ndarray
    face_instance_ids: np.ndarray
    face_semantic_ids: np.ndarray

    @property
    def triangles(self) -> np.ndarray:
        """``(F, 3, 3)`` vertex coordinates per face."""
        return self.vertices[self.faces]

    def face_normals(self) -> np.ndarray:
        """``(F, 3)`` unit normals pointing to the visible side."""
        n = face_normals(self.vertices, self.faces)
        return n / np.linalg.norm(n, axis=1, keepdims=True)

    def face_areas(self) -> np.ndarray:
        """``(F,)`` triangle areas in square metres."""
        return 0.5 * np.linalg.norm(face_normals(self.vertices, self.faces), axis=1)


@dataclass
class Paint:
    """What colours the mesh: per-face material and texture frame, plus the room's lights.

    Attributes:
        face_material: ``(F,)`` row of ``materials`` per face.
        face_frame: ``(F,)`` texture frame per face (0 = world, for the structure; ``k + 1`` =
            object ``k``'s local frame).
        local_from_world: ``(Fr, 3, 4)`` world -> texture-frame transforms.
        materials: the material table.
        lighting: the fixed lights.
        normals: ``(F, 3)`` unit face normals (world).
    """

    face_material: np.ndarray
    face_frame: np.ndarray
    local_from_world: np.ndarray
    materials: MaterialTable
    lighting: Lighting
    normals: np.ndarray

    def shade(self, points: np.ndarray, face_ids: np.ndarray) -> np.ndarray:
        """Colour of surface points: solid-texture albedo times Lambertian irradiance.

        Args:
            points: ``(P, 3)`` world points on the faces.
            face_ids: ``(P,)`` the face each point lies on.

        Returns:
            ``(P, 3) uint8`` RGB, identical for the same point whatever view it is seen from.
        """
        pose = self.local_from_world[self.face_frame[face_ids]]
        rot = pose[:, :, :3]
        normals = self.normals[face_ids]
        local = np.einsum("pij,pj->pi", rot, points) + pose[:, :, 3]
        local_n = np.einsum("pij,pj->pi", rot, normals)
        base = albedo(local, local_n, self.face_material[face_ids], self.materials)
        return to_uint8(base * self.lighting.irradiance(points, normals)[:, None])


def _room_quads(size: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Floor, four walls and ceiling as quads ``(4, 3)`` wound to face the room's inside."""
    lx, ly, lz = size
    c = np.array([[0, 0, 0], [lx, 0, 0], [lx, ly, 0], [0, ly, 0], [0, 0, lz], [lx, 0, lz], [lx, ly, lz], [0, ly, lz]], np.float64)
    quads = {
        "floor": [0, 1, 2, 3],
        "ceiling": [4, 7, 6, 5],
        "wall0": [0, 4, 5, 1],
        "wall1": [1, 5, 6, 2],
        "wall2": [2, 6, 7, 3],
        "wall3": [3, 7, 4, 0],
    }
    return [("wall" if name.startswith("wall") else name, c[idx]) for name, idx in quads.items()]


def build_mesh(layout: RoomLayout) -> tuple[SceneMesh, Paint]:
    """Assemble the room and its objects into one mesh and its paint.

    Args:
        layout: a sampled room.

    Returns:
        ``(mesh, paint)``; degenerate (zero-area) faces are dropped.
    """
    verts, faces, inst, sem, mat, frame = [], [], [], [], [], []
    materials = [layout.structure["floor"], layout.structure["wall"], layout.structure["ceiling"]]
    struct_material = {"floor": 0, "wall": 1, "ceiling": 2}
    frames = [np.eye(3, 4)]
    count = 0

    def add(v, f, instance, semantic, material, frame_id):
        nonlocal count
        verts.append(v)
        faces.append(f + count)
        count += len(v)
        for lst, value in ((inst, instance), (sem, semantic), (mat, material), (frame, frame_id)):
            lst.append(np.full(len(f), value, np.int64))

    for name, quad in _room_quads(layout.size):
        add(quad, np.array([[0, 1, 2], [0, 2, 3]]), -1, semantic_id(name), struct_material[name], 0)
    for obj in layout.objects:
        rot = obj.rotation
        frames.append(np.concatenate([rot.T, (-rot.T @ obj.position)[:, None]], axis=1))
        base = len(materials)
        materials.extend(obj.materials)
        for part in obj.model.visible_parts(obj.against_wall):
            world = part.vertices @ rot.T + obj.position
            add(world, part.faces, obj.instance_id, semantic_id(obj.category), base + part.slot, len(frames) - 1)

    vertices = np.concatenate(verts)
    all_faces = np.concatenate(faces)
    keep = 0.5 * np.linalg.norm(face_normals(vertices, all_faces), axis=1) > 1e-10
    mesh = SceneMesh(
        vertices=vertices,
        faces=all_faces[keep].astype(np.int32),
        face_instance_ids=np.concatenate(inst)[keep].astype(np.int32),
        face_semantic_ids=np.concatenate(sem)[keep].astype(np.int32),
    )
    paint = Paint(
        face_material=np.concatenate(mat)[keep],
        face_frame=np.concatenate(frame)[keep],
        local_from_world=np.stack(frames),
        materials=MaterialTable.stack(materials),
        lighting=layout.lighting,
        normals=mesh.face_normals(),
    )
    return mesh, paint


def sample_surface(mesh: SceneMesh, num_points: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sample points uniformly by area on the mesh surface.

    Args:
        mesh: the mesh.
        num_points: ``M``.
        rng: random generator.

    Returns:
        ``points (M, 3) float64`` and ``face_ids (M,) int64``.
    """
    areas = mesh.face_areas()
    cdf = np.cumsum(areas)
    face_ids = np.minimum(np.searchsorted(cdf, rng.uniform(0, cdf[-1], num_points), side="right"), len(areas) - 1)
    r1, r2 = rng.uniform(size=(2, num_points))
    s = np.sqrt(r1)
    tri = mesh.triangles[face_ids]
    points = (1 - s)[:, None] * tri[:, 0] + (s * (1 - r2))[:, None] * tri[:, 1] + (s * r2)[:, None] * tri[:, 2]
    return points, face_ids
