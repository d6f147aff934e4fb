import base64
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from sem3r.viz.colors import instance_colors, semantic_colors
from sem3r.viz.html import DATA_ELEMENT_ID, export_html


def _payload(path):
    text = path.read_text(encoding="utf-8")
    match = re.search(rf'<script type="application/json" id="{DATA_ELEMENT_ID}">(.*?)</script>', text, re.S)
    assert match is not None
    return json.loads(match.group(1))


def _decode(b64, dtype, width=None):
    arr = np.frombuffer(base64.b64decode(b64), dtype=dtype)
    return arr if width is None else arr.reshape(-1, width)


def test_embedded_arrays_equal_the_cloud(scene, tmp_path):
    cloud = scene.fused_point_cloud()
    path = export_html(scene, tmp_path / "scene.html")
    data = _payload(path)
    assert data["num_points"] == len(cloud) == 384
    np.testing.assert_array_equal(_decode(data["positions"], "<f4", 3), cloud.xyz)
    np.testing.assert_array_equal(_decode(data["colors"]["rgb"], "u1", 3), cloud.rgb)
    np.testing.assert_array_equal(_decode(data["colors"]["instance"], "u1", 3), instance_colors(cloud.instance_ids))
    np.testing.assert_array_equal(_decode(data["colors"]["semantic"], "u1", 3), semantic_colors(cloud.semantic_ids))
    np.testing.assert_array_equal(_decode(data["instance_ids"], "<i4"), cloud.instance_ids)
    np.testing.assert_array_equal(_decode(data["semantic_ids"], "<i4"), cloud.semantic_ids)
    frusta = _decode(data["frusta"], "<f4", 3).reshape(2, 8, 2, 3)
    np.testing.assert_allclose(frusta[0, :4, 0], 0.0, atol=1e-7)
    np.testing.assert_allclose(frusta[1, :4, 0], np.broadcast_to([0.5, 0.0, 0.0], (4, 3)), atol=1e-7)
    assert len(_decode(data["frustum_colors"], "u1", 3)) == 2 * 16
    assert [p.name for p in tmp_path.iterdir()] == ["scene.html"]


def test_subsampling_is_deterministic_and_keeps_matching_colours(scene, tmp_path):
    cloud = scene.fused_point_cloud()
    a = export_html(scene, tmp_path / "a.html", cloud=cloud, max_points=100, seed=5)
    b = export_html(scene, tmp_path / "b.html", cloud=cloud, max_points=100, seed=5)
    c = export_html(scene, tmp_path / "c.html", cloud=cloud, max_points=100, seed=6)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    data = _payload(a)
    pos = _decode(data["positions"], "<f4", 3)
    assert data["num_points"] == len(pos) == 100
    match = (pos[:, None] == cloud.xyz[None]).all(-1)
    assert (match.sum(1) == 1).all()
    rows = match.argmax(1)
    assert (np.diff(rows) > 0).all()
    np.testing.assert_array_equal(_decode(data["colors"]["instance"], "u1", 3), instance_colors(cloud.instance_ids[rows]))
    np.testing.assert_array_equal(_decode(data["colors"]["rgb"], "u1", 3), cloud.rgb[rows])


def test_file_works_offline(scene, tmp_path):
    text = export_html(scene, tmp_path / "scene.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert "http://" not in text and "https://" not in text
    assert "@import" not in text and "url(" not in text
    assert "default-src 'none'" in text
    assert text.count("<script") == 2 and text.count("</script>") == 2


def test_legend_names_and_escaping(scene, tmp_path):
    path = export_html(scene, tmp_path / "scene.html", title="<room & co>")
    text = path.read_text(encoding="utf-8")
    assert "<title>&lt;room &amp; co&gt;</title>" in text
    data = _payload(path)
    assert data["title"] == "<room & co>"
    inst = {e["id"]: e for e in data["legend"]["instance"]}
    assert set(inst) == {-1, 4, 7, 11}
    assert inst[4]["name"] == "chair" and inst[7]["name"] == "</script><b>lamp" and inst[-1]["name"] == "unlabelled"
    assert inst[11]["color"] == instance_colors(np.array([11]))[0].tolist()
    assert inst[4]["count"] == 2 * 6 * 8
    counts = [e["count"] for e in data["legend"]["instance"]]
    assert counts == sorted(counts, reverse=True)
    sem = {e["id"]: e["name"] for e in data["legend"]["semantic"]}
    assert sem == {-1: "unlabelled", 0: "chair", 2: "lamp"}


def test_scene_without_points_still_shows_cameras(scene, tmp_path):
    scene.depth = None
    data = _payload(export_html(scene, tmp_path / "cams.html"))
    assert data["num_points"] == 0 and data["positions"] == ""
    assert data["num_cameras"] == 2 and data["view"]["radius"] > 0


_HARNESS = r"""
const fs = require("fs");
const vm = require("vm");
const [script, json] = [fs.readFileSync(process.argv[2], "utf8"), fs.readFileSync(process.argv[3], "utf8")];
const draws = [], uniforms = {}, frames = [];
function element(id) {
  return { id, textContent: "", style: {}, value: "", checked: true, className: "", children: [], listeners: {},
    clientWidth: 800, clientHeight: 600, width: 0, height: 0,
    addEventListener(t, f) { (this.listeners[t] = this.listeners[t] || []).push(f); },
    appendChild(c) { this.children.push(c); return c; },
    append(...cs) { this.children.push(...cs); },
    replaceChildren() { this.children = []; },
    setPointerCapture() {},
    getContext() { return gl; },
    fire(t, ev) { for (const f of this.listeners[t] || []) f(Object.assign({ preventDefault() {} }, ev)); } };
}
let nextLoc = 0;
const gl = new Proxy({
  getShaderParameter: () => true, getProgramParameter: () => true,
  getAttribLocation: () => nextLoc++, getUniformLocation: (p, name) => name,
  uniform1f: (loc, v) => { uniforms[loc] = v; },
  uniformMatrix4fv: (loc, transpose, m) => { uniforms[loc] = Array.from(m); },
  drawArrays: (mode, first, count) => { draws.push([mode, first, count, uniforms.uHighlight]); },
}, { get: (t, k) => (k in t ? t[k] : /^[A-Z0-9_]+$/.test(k) ? k : () => ({})) });
const elements = {};
const document = {
  getElementById: (id) => elements[id] || (elements[id] = element(id)),
  createElement: (tag) => element(tag),
  title: "",
};
document.getElementById(process.argv[4]).textContent = json;
const window = element("window");
window.devicePixelRatio = 2;
const ctx = { document, window, atob, console, requestAnimationFrame: (f) => frames.push(f),
  HTMLInputElement: class {}, HTMLSelectElement: class {} };
vm.createContext(ctx);
vm.runInContext(script, ctx);
const flush = () => { while (frames.length) frames.shift()(); };
const report = {};
flush();
report.first = draws.splice(0);
report.mvp = uniforms.uMvp;
window.fire("keydown", { key: "2" });
flush();
report.mode = elements.mode.value;
report.modeDraws = draws.splice(0);
const legend = elements.legend.children;
report.legend = legend.slice(1).map((row) => row.children.map((c) => c.textContent));
legend.slice(1).find((row) => row.children[1].textContent.startsWith("#7")).fire("click", {});
flush();
report.highlight = draws.splice(0);
window.fire("keydown", { key: "c" });
const canvas = elements.view;
canvas.fire("pointerdown", { pointerId: 1, clientX: 10, clientY: 10, button: 0 });
canvas.fire("pointermove", { pointerId: 1, clientX: 40, clientY: 25 });
canvas.fire("pointerup", { pointerId: 1 });
canvas.fire("wheel", { deltaY: 120, deltaMode: 0 });
window.fire("keydown", { key: "3" });
flush();
report.last = draws.splice(0);
report.canvas = [canvas.width, canvas.height];
report.title = document.title;
console.log(JSON.stringify(report));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_viewer_script_runs_against_a_stub_webgl_context(scene, tmp_path):
    path = export_html(scene, tmp_path / "scene.html")
    text = path.read_text(encoding="utf-8")
    data_text = re.search(rf'id="{DATA_ELEMENT_ID}">(.*?)</script>', text, re.S).group(1)
    script = re.search(r"<script>(.*?)</script>", text, re.S).group(1)
    (tmp_path / "viewer.js").write_text(script)
    (tmp_path / "data.json").write_text(data_text)
    (tmp_path / "harness.js").write_text(_HARNESS)
    out = subprocess.run(
        ["node", str(tmp_path / "harness.js"), str(tmp_path / "viewer.js"), str(tmp_path / "data.json"), DATA_ELEMENT_ID],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["first"] == [["POINTS", 0, 384, -2], ["LINES", 0, 32, -2]]
    # The initial view sees every point, centres the scene and keeps the cameras' up (-y) on top.
    mvp = np.array(report["mvp"]).reshape(4, 4).T
    data = json.loads(data_text)

    def ndc(p):
        clip = mvp @ np.append(p, 1.0)
        assert clip[3] > 0
        return clip[:3] / clip[3]

    np.testing.assert_allclose(ndc(data["view"]["target"])[:2], 0.0, atol=1e-5)
    assert ndc(np.array(data["view"]["target"]) + [0, -0.1, 0])[1] > 0
    assert ndc(np.array(data["view"]["target"]) + [0.1, 0, 0])[0] > 0
    cloud = scene.fused_point_cloud()
    clip = np.c_[cloud.xyz, np.ones(len(cloud))] @ mvp.T
    assert (clip[:, 3] > 0).all() and (np.abs(clip[:, :3] / clip[:, 3:]) < 1).all()
    assert report["mode"] == "instance"
    assert report["modeDraws"] == report["first"]
    assert ["", "#4 chair", "96"] in report["legend"]
    assert ["", "#7 </script><b>lamp", "96"] in report["legend"]
    assert report["highlight"] == [["POINTS", 0, 384, 7], ["LINES", 0, 32, -2]]
    assert report["last"] == [["POINTS", 0, 384, -2]]
    assert report["canvas"] == [1600, 1200]
    assert report["title"] == "test room"
