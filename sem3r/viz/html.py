"""A standalone HTML viewer: one file that opens offline from ``file://``.

Why not viser: viser's recorded scenes need its web client served over HTTP to play back, and a
CDN-hosted viewer (three.js, ...) would need the network. :func:`export_html` instead writes a
single self-contained file: a small WebGL 1 viewer written for Sem3R in inline JavaScript, the
points embedded as base64 little-endian typed arrays in a ``<script type="application/json"
id="sem3r-data">`` block, and a Content-Security-Policy that forbids every network request.

The viewer: left drag orbits, right drag (or shift + left drag, or two fingers) pans, the wheel (or
a pinch) zooms, double click resets the view. Keys ``1`` / ``2`` / ``3`` colour by RGB / instance /
label, ``c`` toggles the camera frusta, ``+`` / ``-`` change the point size, ``Esc`` clears a
highlight. Clicking a legend entry highlights that instance or class. The orbit's up direction is
the cameras' mean up (:func:`~sem3r.viz.common.viewer_frame`).

Payload (JSON object in the data block; arrays are base64 of the raw bytes):

=================  ====================  =====================================================
key                contents              meaning
=================  ====================  =====================================================
positions          float32 (M * 3)       world coordinates of the (subsampled) points
colors.rgb         uint8 (M * 3)         image colours
colors.instance    uint8 (M * 3)         :func:`~sem3r.viz.colors.instance_colors`
colors.semantic    uint8 (M * 3)         :func:`~sem3r.viz.colors.semantic_colors`
instance_ids       int32 (M)             per-point instance id, -1 = unlabelled
semantic_ids       int32 (M)             per-point class id, -1 = unlabelled
frusta             float32 (N * 16 * 3)  8 line segments per camera (apex edges, base ring)
frustum_colors     uint8 (N * 16 * 3)    their vertex colours
legend             lists of objects      ``{id, name, color, count}`` per instance / class
view               object                ``frame`` (3x3 world -> viewer rows), ``target``, ``radius``
=================  ====================  =====================================================
"""

from __future__ import annotations

import base64
import html as html_lib
import json
from pathlib import Path
from typing import Callable

import numpy as np

from sem3r.geometry.camera import camera_centers
from sem3r.io import write_text_atomic
from sem3r.scene import PointCloud, Scene
from sem3r.viz.colors import cloud_colors, instance_colors, semantic_colors
from sem3r.viz.common import (
    FIRST_FRUSTUM_COLOR,
    FRUSTUM_COLOR,
    default_frustum_depth,
    frustum_segments,
    frustum_vertices,
    resolve_cloud,
    viewer_frame,
)

DATA_ELEMENT_ID = "sem3r-data"
"""``id`` of the ``<script type="application/json">`` element holding the payload."""


def _b64(array: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def _legend(ids: np.ndarray, names: dict[int, str], color_fn: Callable[[np.ndarray], np.ndarray]) -> list[dict]:
    """Legend entries for the distinct ``ids``, most frequent first."""
    uniq, counts = np.unique(ids, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    uniq, counts = uniq[order], counts[order]
    colors = color_fn(uniq).tolist()
    return [
        {"id": int(i), "name": "unlabelled" if i < 0 else names.get(int(i), ""), "color": rgb, "count": int(c)}
        for i, c, rgb in zip(uniq, counts, colors)
    ]


def viewer_payload(
    scene: Scene,
    cloud: PointCloud | None = None,
    max_points: int | None = 200_000,
    point_size: float = 2.0,
    seed: int = 0,
    frustum_scale: float | None = None,
    title: str | None = None,
) -> dict:
    """The JSON object :func:`export_html` embeds (see the module docstring for its keys).

    Args: as for :func:`export_html`.

    Returns:
        A JSON-serialisable dict.
    """
    cloud = resolve_cloud(scene, cloud, max_points, seed)
    depth = default_frustum_depth(scene.cam_from_world, cloud.xyz) if frustum_scale is None else float(frustum_scale)
    segments = frustum_segments(frustum_vertices(scene.intrinsics, scene.cam_from_world, scene.height, scene.width, depth))
    seg_colors = np.tile(np.array(FRUSTUM_COLOR, np.uint8), (scene.num_views, 16, 1))
    seg_colors[0] = FIRST_FRUSTUM_COLOR

    extent_pts = camera_centers(scene.cam_from_world)
    if len(cloud.xyz):
        extent_pts = np.concatenate([extent_pts, cloud.xyz.astype(np.float64)])
    lo, hi = np.percentile(extent_pts, [2.0, 98.0], axis=0)
    radius = float(np.linalg.norm(hi - lo) / 2.0)

    inst_names = {int(i): label for i, label in zip(scene.instances.ids, scene.instances.labels)}
    class_names = dict(enumerate(scene.class_names))
    default_title = str(scene.metadata.get("name", scene.metadata.get("source", "Sem3R scene")))
    return {
        "format": "sem3r.viewer",
        "version": 1,
        "title": title if title is not None else default_title,
        "num_points": len(cloud.xyz),
        "positions": _b64(cloud.xyz, "<f4"),
        "colors": {mode: _b64(cloud_colors(cloud, mode), "u1") for mode in ("rgb", "instance", "semantic")},
        "instance_ids": _b64(cloud.instance_ids, "<i4"),
        "semantic_ids": _b64(cloud.semantic_ids, "<i4"),
        "num_cameras": scene.num_views,
        "camera_names": list(scene.image_names),
        "frusta": _b64(segments, "<f4"),
        "frustum_colors": _b64(seg_colors, "u1"),
        "legend": {
            "instance": _legend(cloud.instance_ids, inst_names, instance_colors),
            "semantic": _legend(cloud.semantic_ids, class_names, semantic_colors),
        },
        "view": {
            "frame": viewer_frame(scene.cam_from_world).tolist(),
            "target": ((lo + hi) / 2.0).tolist(),
            "radius": radius if radius > 0 else 1.0,
        },
        "point_size": float(point_size),
    }


def export_html(
    scene: Scene,
    path: str | Path,
    cloud: PointCloud | None = None,
    max_points: int | None = 200_000,
    point_size: float = 2.0,
    seed: int = 0,
    frustum_scale: float | None = None,
    title: str | None = None,
) -> Path:
    """Write a self-contained, offline HTML viewer of the scene atomically.

    Args:
        scene: cameras and, when ``cloud`` is ``None``, the points (``scene.fused_point_cloud()``;
            none if the scene has no depth or world points). Instance labels come from
            ``scene.instances``, class names from ``scene.metadata['class_names']``.
        path: destination ``.html`` file.
        cloud: the ``M`` points to show.
        max_points: above this many points keep a seeded uniform random subset (original order).
        point_size: initial point diameter in CSS pixels.
        seed: seed of the subsampling.
        frustum_scale: depth of the frustum bases in world units (default 5 % of the extent).
        title: page title (default ``metadata['name']`` or ``metadata['source']``).

    Returns:
        ``path``.

    Example:
        >>> import numpy as np, tempfile, os
        >>> s = Scene(images=np.zeros((2, 4, 6, 3), np.uint8), intrinsics=np.tile(np.eye(3), (2, 1, 1)),
        ...           cam_from_world=np.tile(np.eye(3, 4), (2, 1, 1)), depth=np.ones((2, 4, 6), np.float32))
        >>> p = export_html(s, os.path.join(tempfile.mkdtemp(), "scene.html"))
        >>> p.read_text().startswith("<!DOCTYPE html>")
        True
    """
    payload = viewer_payload(scene, cloud, max_points, point_size, seed, frustum_scale, title)
    data = json.dumps(payload, separators=(",", ":")).replace("<", "\\u003c")
    page = (
        _TEMPLATE.replace("__TITLE__", html_lib.escape(payload["title"]))
        .replace("__DATA_ID__", DATA_ELEMENT_ID)
        .replace("__DATA__", data)
    )
    return write_text_atomic(path, page)


_TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
  html, body { margin: 0; height: 100%; overflow: hidden; background: #1d1f24; color: #e6e6e6;
    font: 13px/1.4 system-ui, sans-serif; }
  canvas { display: block; width: 100%; height: 100%; touch-action: none; }
  .panel { position: absolute; background: rgba(20, 22, 27, 0.85); border-radius: 6px; padding: 8px 10px; }
  #controls { top: 10px; left: 10px; max-width: 300px; }
  #controls h1 { font-size: 14px; margin: 0 0 6px; }
  #controls label { display: block; margin: 4px 0; }
  #help { color: #9aa0a8; font-size: 11px; margin-top: 6px; }
  #legend { top: 10px; right: 10px; max-height: calc(100% - 40px); overflow-y: auto; min-width: 160px; }
  #legend .entry { display: flex; align-items: center; gap: 6px; padding: 1px 4px; cursor: pointer; border-radius: 3px; }
  #legend .entry:hover { background: rgba(255, 255, 255, 0.08); }
  #legend .entry.active { background: rgba(255, 255, 255, 0.2); }
  #legend .swatch { width: 12px; height: 12px; border-radius: 2px; flex: none; }
  #legend .count { color: #9aa0a8; margin-left: auto; padding-left: 8px; }
  #message { top: 50%; left: 50%; transform: translate(-50%, -50%); display: none; }
</style>
</head>
<body>
<canvas id="view"></canvas>
<div id="controls" class="panel">
  <h1 id="title"></h1>
  <div id="stats"></div>
  <label>Colour by
    <select id="mode">
      <option value="rgb">RGB</option>
      <option value="instance">Instance</option>
      <option value="semantic">Label</option>
    </select>
  </label>
  <label>Point size <input id="size" type="range" min="1" max="12" step="0.5"></label>
  <label><input id="cameras" type="checkbox" checked> Cameras</label>
  <div id="help">drag: orbit &middot; right/shift drag: pan &middot; wheel: zoom &middot; double click: reset<br>
    keys 1/2/3: colour &middot; c: cameras &middot; +/-: point size &middot; Esc: clear highlight</div>
</div>
<div id="legend" class="panel"></div>
<div id="message" class="panel"></div>
<script type="application/json" id="__DATA_ID__">__DATA__</script>
<script>
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("__DATA_ID__").textContent);

  function decode(b64, Type) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Type(bytes.buffer);
  }

  const n = data.num_points;
  const positions = decode(data.positions, Float32Array);
  const colors = {
    rgb: decode(data.colors.rgb, Uint8Array),
    instance: decode(data.colors.instance, Uint8Array),
    semantic: decode(data.colors.semantic, Uint8Array),
  };
  const ids = {
    instance: Float32Array.from(decode(data.instance_ids, Int32Array)),
    semantic: Float32Array.from(decode(data.semantic_ids, Int32Array)),
  };
  const frusta = decode(data.frusta, Float32Array);
  const frustumColors = decode(data.frustum_colors, Uint8Array);

  document.title = data.title;
  document.getElementById("title").textContent = data.title;
  document.getElementById("stats").textContent =
    n.toLocaleString() + " points \u00b7 " + data.num_cameras + " cameras";

  const canvas = document.getElementById("view");
  const gl = canvas.getContext("webgl", { antialias: true });
  if (!gl) {
    const msg = document.getElementById("message");
    msg.textContent = "This viewer needs WebGL, which this browser does not provide.";
    msg.style.display = "block";
    return;
  }

  function compile(type, source) {
    const shader = gl.createShader(type);
    gl.shaderSource(shader, source);
    gl.compileShader(shader);
    if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader));
    return shader;
  }
  const program = gl.createProgram();
  gl.attachShader(program, compile(gl.VERTEX_SHADER, [
    "attribute vec3 aPos;",
    "attribute vec3 aCol;",
    "attribute float aId;",
    "uniform mat4 uMvp;",
    "uniform float uSize;",
    "uniform float uHighlight;",
    "varying vec3 vCol;",
    "void main() {",
    "  gl_Position = uMvp * vec4(aPos, 1.0);",
    "  gl_PointSize = uSize;",
    "  bool dim = uHighlight > -1.5 && abs(aId - uHighlight) > 0.5;",
    "  vCol = dim ? mix(aCol, vec3(0.2), 0.85) : aCol;",
    "}",
  ].join("\n")));
  gl.attachShader(program, compile(gl.FRAGMENT_SHADER, [
    "precision mediump float;",
    "uniform float uRound;",
    "varying vec3 vCol;",
    "void main() {",
    "  vec2 d = gl_PointCoord - vec2(0.5);",
    "  if (uRound > 0.5 && dot(d, d) > 0.25) discard;",
    "  gl_FragColor = vec4(vCol, 1.0);",
    "}",
  ].join("\n")));
  gl.linkProgram(program);
  if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program));
  gl.useProgram(program);
  const loc = {
    pos: gl.getAttribLocation(program, "aPos"),
    col: gl.getAttribLocation(program, "aCol"),
    id: gl.getAttribLocation(program, "aId"),
    mvp: gl.getUniformLocation(program, "uMvp"),
    size: gl.getUniformLocation(program, "uSize"),
    highlight: gl.getUniformLocation(program, "uHighlight"),
    round: gl.getUniformLocation(program, "uRound"),
  };

  function buffer(array) {
    const b = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, b);
    gl.bufferData(gl.ARRAY_BUFFER, array, gl.STATIC_DRAW);
    return b;
  }
  const buf = {
    pos: buffer(positions),
    col: { rgb: buffer(colors.rgb), instance: buffer(colors.instance), semantic: buffer(colors.semantic) },
    id: { instance: buffer(ids.instance), semantic: buffer(ids.semantic) },
    framePos: buffer(frusta),
    frameCol: buffer(frustumColors),
  };

  // ---- small column-major 4x4 matrix helpers
  function multiply(a, b) {
    const out = new Float32Array(16);
    for (let c = 0; c < 4; c++)
      for (let r = 0; r < 4; r++) {
        let s = 0;
        for (let k = 0; k < 4; k++) s += a[k * 4 + r] * b[c * 4 + k];
        out[c * 4 + r] = s;
      }
    return out;
  }
  function perspective(fovy, aspect, near, far) {
    const f = 1 / Math.tan(fovy / 2);
    return new Float32Array([f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) / (near - far), -1,
      0, 0, (2 * far * near) / (near - far), 0]);
  }
  const sub = (a, b) => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
  const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
  const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
  const normalize = (a) => { const l = Math.hypot(a[0], a[1], a[2]) || 1; return [a[0] / l, a[1] / l, a[2] / l]; };

  // The orbit lives in the viewer frame (y up); the model matrix rotates world -> viewer.
  const R = data.view.frame;
  const model = new Float32Array([R[0][0], R[1][0], R[2][0], 0, R[0][1], R[1][1], R[2][1], 0,
    R[0][2], R[1][2], R[2][2], 0, 0, 0, 0, 1]);
  const toViewer = (p) => [dot(R[0], p), dot(R[1], p), dot(R[2], p)];
  const fov = (50 * Math.PI) / 180;
  const radius = data.view.radius;
  const home = { target: toViewer(data.view.target), azimuth: 0, elevation: 0.3, distance: (radius / Math.sin(fov / 2)) * 1.05 };
  const orbit = { target: home.target.slice(), azimuth: home.azimuth, elevation: home.elevation, distance: home.distance };
  let basis = { x: [1, 0, 0], y: [0, 1, 0] };

  const state = { mode: "rgb", size: data.point_size, cameras: true, highlight: null };
  const modeSelect = document.getElementById("mode");
  const sizeInput = document.getElementById("size");
  const camerasInput = document.getElementById("cameras");
  sizeInput.value = String(state.size);

  function viewMatrix() {
    const ce = Math.cos(orbit.elevation);
    const dir = [ce * Math.sin(orbit.azimuth), Math.sin(orbit.elevation), ce * Math.cos(orbit.azimuth)];
    const eye = [0, 1, 2].map((i) => orbit.target[i] + orbit.distance * dir[i]);
    const z = normalize(sub(eye, orbit.target));
    const x = normalize(cross([0, 1, 0], z));
    const y = cross(z, x);
    basis = { x: x, y: y };
    return new Float32Array([x[0], y[0], z[0], 0, x[1], y[1], z[1], 0, x[2], y[2], z[2], 0,
      -dot(x, eye), -dot(y, eye), -dot(z, eye), 1]);
  }

  let pending = false;
  function requestDraw() {
    if (!pending) { pending = true; requestAnimationFrame(draw); }
  }

  function attribute(location, buffer, size, type, normalized) {
    gl.bindBuffer(gl.ARRAY_BUFFER, buffer);
    gl.enableVertexAttribArray(location);
    gl.vertexAttribPointer(location, size, type, normalized, 0, 0);
  }

  function draw() {
    pending = false;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
    const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    gl.viewport(0, 0, w, h);
    gl.clearColor(0.114, 0.122, 0.141, 1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    gl.enable(gl.DEPTH_TEST);
    const near = Math.max(orbit.distance * 0.01, radius * 1e-5);
    const far = orbit.distance + radius * 10;
    const mvp = multiply(perspective(fov, w / h, near, far), multiply(viewMatrix(), model));
    gl.uniformMatrix4fv(loc.mvp, false, mvp);

    const idKind = state.mode === "semantic" ? "semantic" : "instance";
    if (n > 0) {
      attribute(loc.pos, buf.pos, 3, gl.FLOAT, false);
      attribute(loc.col, buf.col[state.mode], 3, gl.UNSIGNED_BYTE, true);
      attribute(loc.id, buf.id[idKind], 1, gl.FLOAT, false);
      gl.uniform1f(loc.size, state.size * dpr);
      gl.uniform1f(loc.highlight, state.highlight === null ? -2 : state.highlight);
      gl.uniform1f(loc.round, 1);
      gl.drawArrays(gl.POINTS, 0, n);
    }
    if (state.cameras && data.num_cameras > 0) {
      attribute(loc.pos, buf.framePos, 3, gl.FLOAT, false);
      attribute(loc.col, buf.frameCol, 3, gl.UNSIGNED_BYTE, true);
      gl.disableVertexAttribArray(loc.id);
      gl.vertexAttrib1f(loc.id, -2);
      gl.uniform1f(loc.highlight, -2);
      gl.uniform1f(loc.round, 0);
      gl.drawArrays(gl.LINES, 0, frusta.length / 3);
    }
  }

  // ---- legend
  const legend = document.getElementById("legend");
  function buildLegend() {
    legend.replaceChildren();
    const kind = state.mode === "semantic" ? "semantic" : "instance";
    const entries = data.legend[kind];
    const heading = document.createElement("div");
    heading.textContent = kind === "semantic" ? "Labels" : "Instances";
    heading.style.fontWeight = "bold";
    legend.appendChild(heading);
    for (const e of entries) {
      const row = document.createElement("div");
      row.className = "entry" + (state.highlight === e.id ? " active" : "");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = "rgb(" + e.color.join(",") + ")";
      const name = document.createElement("span");
      name.textContent = kind === "instance" && e.id >= 0 ? "#" + e.id + (e.name ? " " + e.name : "") : (e.name || "class " + e.id);
      const count = document.createElement("span");
      count.className = "count";
      count.textContent = e.count.toLocaleString();
      row.append(swatch, name, count);
      row.addEventListener("click", () => {
        state.highlight = state.highlight === e.id ? null : e.id;
        buildLegend();
        requestDraw();
      });
      legend.appendChild(row);
    }
    legend.style.display = entries.length ? "block" : "none";
  }

  function setMode(mode) {
    const kindChanged = (mode === "semantic") !== (state.mode === "semantic");
    state.mode = mode;
    modeSelect.value = mode;
    if (kindChanged) state.highlight = null;
    buildLegend();
    requestDraw();
  }
  function setSize(size) {
    state.size = Math.min(12, Math.max(1, size));
    sizeInput.value = String(state.size);
    requestDraw();
  }
  function setCameras(on) {
    state.cameras = on;
    camerasInput.checked = on;
    requestDraw();
  }
  function resetView() {
    orbit.target = home.target.slice();
    orbit.azimuth = home.azimuth;
    orbit.elevation = home.elevation;
    orbit.distance = home.distance;
    requestDraw();
  }
  modeSelect.addEventListener("change", () => setMode(modeSelect.value));
  sizeInput.addEventListener("input", () => setSize(parseFloat(sizeInput.value)));
  camerasInput.addEventListener("change", () => setCameras(camerasInput.checked));

  // ---- mouse, touch and keyboard
  const pointers = new Map();
  function panBy(dx, dy) {
    const k = (2 * orbit.distance * Math.tan(fov / 2)) / Math.max(1, canvas.clientHeight);
    for (let i = 0; i < 3; i++) orbit.target[i] += (-basis.x[i] * dx + basis.y[i] * dy) * k;
  }
  function zoomBy(factor) {
    orbit.distance = Math.min(radius * 1e3, Math.max(radius * 1e-4, orbit.distance * factor));
  }
  function pinchState() {
    const [a, b] = Array.from(pointers.values());
    return { mid: [(a.x + b.x) / 2, (a.y + b.y) / 2], span: Math.hypot(a.x - b.x, a.y - b.y) };
  }
  let pinch = null;
  canvas.addEventListener("pointerdown", (ev) => {
    canvas.setPointerCapture(ev.pointerId);
    pointers.set(ev.pointerId, { x: ev.clientX, y: ev.clientY, pan: ev.button === 2 || ev.button === 1 || ev.shiftKey });
    pinch = pointers.size === 2 ? pinchState() : null;
  });
  canvas.addEventListener("pointermove", (ev) => {
    const p = pointers.get(ev.pointerId);
    if (!p) return;
    const dx = ev.clientX - p.x;
    const dy = ev.clientY - p.y;
    p.x = ev.clientX;
    p.y = ev.clientY;
    if (pointers.size === 2 && pinch) {
      const now = pinchState();
      panBy(now.mid[0] - pinch.mid[0], now.mid[1] - pinch.mid[1]);
      if (now.span > 0 && pinch.span > 0) zoomBy(pinch.span / now.span);
      pinch = now;
    } else if (p.pan) {
      panBy(dx, dy);
    } else {
      orbit.azimuth -= dx * 0.006;
      orbit.elevation = Math.min(1.55, Math.max(-1.55, orbit.elevation + dy * 0.006));
    }
    requestDraw();
  });
  function release(ev) {
    pointers.delete(ev.pointerId);
    pinch = pointers.size === 2 ? pinchState() : null;
  }
  canvas.addEventListener("pointerup", release);
  canvas.addEventListener("pointercancel", release);
  canvas.addEventListener("contextmenu", (ev) => ev.preventDefault());
  canvas.addEventListener("dblclick", resetView);
  canvas.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const scale = ev.deltaMode === 1 ? 16 : ev.deltaMode === 2 ? 400 : 1;
    zoomBy(Math.exp(ev.deltaY * scale * 0.0015));
    requestDraw();
  }, { passive: false });
  window.addEventListener("keydown", (ev) => {
    if (ev.target instanceof HTMLInputElement || ev.target instanceof HTMLSelectElement) return;
    const modes = { "1": "rgb", "2": "instance", "3": "semantic" };
    if (modes[ev.key]) setMode(modes[ev.key]);
    else if (ev.key === "c" || ev.key === "C") setCameras(!state.cameras);
    else if (ev.key === "+" || ev.key === "=") setSize(state.size + 0.5);
    else if (ev.key === "-" || ev.key === "_") setSize(state.size - 0.5);
    else if (ev.key === "Escape") { state.highlight = null; buildLegend(); requestDraw(); }
    else if (ev.key === "0" || ev.key === "Home") resetView();
  });
  window.addEventListener("resize", requestDraw);

  buildLegend();
  requestDraw();
})();
</script>
</body>
</html>
"""
